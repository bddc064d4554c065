"""
Import a starter set of gesture templates from the Bandai-Namco motion-capture dataset.

So that the gesture node gives verdicts before anyone has recorded a template. For each style
(default: angry, happy, sad and normal, whose label is 'neutral'), the takes of ``--per-style``
different movements are filmed by a virtual camera from in front (``gesture.camera.front_view``,
turned by ``--yaw``), and the middle ``--seconds`` of each is saved as a template (atomically,
``TemplateStore.save``) with the source ``bandai_ds1/<clip>``. Example::

    python -m emorec_ros.cli.import_templates --data ../shared/data/bandai_motion

The dataset, and so the templates, are CC BY-NC 4.0 (Bandai Namco Research Inc.): attribution,
non-commercial use only. A template already in the folder (same id) is left as it is. Errors
(no archive, an unknown style or movement, a folder that cannot be written) are one line and
exit status 2.
"""
from __future__ import annotations

import argparse
from datetime import datetime, timezone
from pathlib import Path
import sys

from emorec_ros.gesture.bandai import ARCHIVE, LICENCE, MAIN_MOVEMENTS
from emorec_ros.gesture.camera import front_view
from emorec_ros.gesture.evaluate import STYLE_LABELS
from emorec_ros.gesture.mocap import find_clips, load_clips, MocapClip, MocapError
from emorec_ros.gesture.store import default_directory, TemplateStore, TemplateStoreError
from emorec_ros.gesture.template import MAX_DURATION_S, Template

DEFAULT_DATA = Path('../shared/data/bandai_motion')
DEFAULT_STYLES = ('angry', 'happy', 'sad', 'normal')
#: The take imported of each movement and style.
TAKE = '001'
#: Prefix of the imported templates' ids and sources.
DATASET = 'bandai_ds1'


class TemplateImportError(ValueError):
    """The import cannot be done as asked; the message says why, on one line."""


def segment(frames: int, fps: float, seconds: float) -> slice:
    """Return the middle ``seconds`` of a clip of ``frames`` (all of it when it is shorter)."""
    length = min(frames, max(1, round(seconds * fps)))
    start = (frames - length) // 2
    return slice(start, start + length)


def template_of(clip: MocapClip, seconds: float, yaw_deg: float) -> Template:
    """Return the middle ``seconds`` of a clip filmed from in front, labelled by its style."""
    pixels, visible = front_view(clip.world, yaw_deg=yaw_deg)
    part = segment(len(clip.world), clip.fps, seconds)
    return Template(f'{DATASET}-{clip.name}', STYLE_LABELS[clip.style], pixels[part],
                    visible[part], clip.fps, f'{DATASET}/{clip.name}',
                    datetime.now(timezone.utc).isoformat(timespec='seconds'))


def chosen_names(styles: list[str], movements: list[str], per_style: int) -> list[str]:
    """Return the clip names to import: each style's take of its first ``per_style`` movements."""
    return [f'dataset-1_{movement}_{style}_{TAKE}' for style in styles
            for movement in movements[:per_style]]


def check_arguments(args: argparse.Namespace) -> None:
    """Raise TemplateImportError saying what is wrong with the arguments."""
    unknown = [s for s in args.styles if s not in STYLE_LABELS]
    if unknown:
        raise TemplateImportError(
            f'unknown style {", ".join(unknown)}: use {", ".join(STYLE_LABELS)}')
    unknown = [m for m in args.movements if m not in MAIN_MOVEMENTS]
    if unknown:
        raise TemplateImportError(
            f'unknown movement {", ".join(unknown)}: use {", ".join(MAIN_MOVEMENTS)}')
    if not 0 < args.seconds <= MAX_DURATION_S:
        raise TemplateImportError(
            f'--seconds {args.seconds:g} is outside (0, {MAX_DURATION_S:g}]')
    if not 1 <= args.per_style <= len(args.movements):
        raise TemplateImportError(f'--per-style {args.per_style} is outside '
                                  f'1..{len(args.movements)} (the movements given)')


def import_templates(args: argparse.Namespace) -> list[str]:
    """Write the templates; return a line per template written or left as it was."""
    check_arguments(args)
    archive = args.data / ARCHIVE
    if not archive.is_file():
        raise TemplateImportError(f'no {ARCHIVE} in {args.data} (--data: the folder holding it)')
    store = TemplateStore(args.out)
    try:
        store.check_usable()
    except TemplateStoreError as e:
        raise TemplateImportError(str(e)) from e
    names = chosen_names(args.styles, args.movements, args.per_style)
    try:  # only the takes imported are parsed
        files = [f for f in find_clips([archive]) if f.name in names]
        clips = {c.name: c for c in load_clips(files)}
    except MocapError as e:
        raise TemplateImportError(str(e)) from e
    lines = []
    for name in names:
        clip = clips.get(name)
        if clip is None:
            lines.append(f'no take {name} in {archive}: skipped')
            continue
        template = template_of(clip, args.seconds, args.yaw)
        try:
            path = store.save(template)
        except FileExistsError:
            lines.append(f'kept {template.id} ("{template.label}"): already in {store.directory}')
            continue
        except OSError as e:
            raise TemplateImportError(
                f'cannot write {template.id} in {store.directory}: {e}') from e
        lines.append(f'wrote {path.name}: "{template.label}", {template.frames} frames '
                     f'({template.duration_s:.1f} s) of {name}')
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data', type=Path, default=DEFAULT_DATA,
                        help=f'folder with {ARCHIVE} (default: %(default)s)')
    parser.add_argument('--out', type=Path, default=default_directory(),
                        help="template folder (default: the gesture node's, %(default)s)")
    parser.add_argument('--styles', nargs='+', default=list(DEFAULT_STYLES),
                        help=f'styles to import, of {", ".join(STYLE_LABELS)} (default: '
                        '%(default)s); normal is labelled neutral')
    parser.add_argument('--seconds', type=float, default=4.0,
                        help='seconds per template, from the middle of each take (default: '
                        '%(default)s)')
    parser.add_argument('--per-style', type=int, default=3,
                        help='templates per style, each of another movement (default: '
                        '%(default)s)')
    parser.add_argument('--movements', nargs='+', default=list(MAIN_MOVEMENTS),
                        help='movements to take them from, in order of preference (default: '
                        '%(default)s)')
    parser.add_argument('--yaw', type=float, default=0.0,
                        help="virtual camera's turn from in front of the person, degrees "
                        "(positive: towards the person's left; default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        lines = import_templates(args)
    except TemplateImportError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    print('\n'.join(lines))
    print(f'Templates in {args.out}. Licence: {LICENCE}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
