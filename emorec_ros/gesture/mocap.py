"""
Motion-capture clips from BVH files, folders of them and tar archives of them.

A source is a ``.bvh`` file, a folder (searched recursively for ``*.bvh``) or a tar archive
(``.tar``, ``.tar.xz``, ``.tar.gz``, ``.tgz``, ``.tar.bz2``). Finding the clips of a source only
lists names; reading them parses only the clips asked for, each archive in one pass. A clip is
named after its file without ``.bvh``; clips named as the Bandai-Namco Research Motion dataset
names its takes (``dataset-1_<movement>_<style>_<take>``) also get their movement and style.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
import fnmatch
import lzma
from pathlib import Path, PurePosixPath
import re
import tarfile
import zlib

from emorec_ros.gesture.bvh import (BANDAI_JOINTS, BANDAI_METRES_PER_UNIT, BvhError,
                                    parse_bvh)
from emorec_ros.gesture.camera import front_view
import numpy as np

BVH_SUFFIX = '.bvh'
#: Names of the tar archives read (any compression tarfile reads).
ARCHIVE_SUFFIXES = ('.tar', '.tar.xz', '.txz', '.tar.gz', '.tgz', '.tar.bz2')
_BANDAI_NAME = re.compile(r'dataset-1_(?P<movement>[a-z-]+)_(?P<style>[a-z-]+)_(?P<take>\d+)')
# What reading a damaged or truncated archive can raise.
_ARCHIVE_ERRORS = (OSError, EOFError, tarfile.TarError, lzma.LZMAError, zlib.error)


class MocapError(BvhError):
    """Clips cannot be found or read; ``problems`` holds one line per file that failed."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__('; '.join(problems))
        self.problems = problems


@dataclass(frozen=True, eq=False)
class MocapClip:
    """
    One take of motion capture.

    ``world``: joint positions (frames, len(JOINTS), 3) in metres, +Y up, at ``fps``.
    ``movement`` and ``style`` come from a Bandai-Namco take's name ('' for other names).
    """

    name: str
    movement: str
    style: str
    world: np.ndarray
    fps: float


@dataclass(frozen=True)
class ClipFile:
    """A BVH file found in a source: a file of its own (``member`` None) or a tar member."""

    name: str
    path: Path
    member: str | None = None

    @property
    def movement_and_style(self) -> tuple[str, str]:
        """Return the movement and style of a Bandai-Namco take's name, else ('', '')."""
        match = _BANDAI_NAME.fullmatch(self.name)
        return (match['movement'], match['style']) if match else ('', '')

    def __str__(self) -> str:
        return f'{self.path}:{self.member}' if self.member is not None else str(self.path)


def find_clips(sources: Iterable[str | Path], pattern: str = '*') -> list[ClipFile]:
    """
    Return the BVH files of ``sources`` whose clip name matches ``pattern`` (fnmatch).

    Sorted by name (then file). Raises MocapError naming every source that is missing, is not a
    BVH file, a folder or a tar archive, cannot be read, or holds no BVH file.
    """
    files, problems = _find(sources, pattern)
    if problems:
        raise MocapError(problems)
    return files


def read_sources(sources: list[str | Path], pattern: str = '*',
                 joint_map: dict[str, str] = BANDAI_JOINTS,
                 metres_per_unit: float = BANDAI_METRES_PER_UNIT) -> list[MocapClip]:
    """
    Return the clips of ``sources`` whose name matches ``pattern``: find_clips, then load_clips.

    Raises MocapError naming every problem of both at once, and when no clip matches.
    """
    files, problems = _find(sources, pattern)
    clips, load_problems = _load(files, joint_map, metres_per_unit)
    problems += load_problems
    if not files and not problems:
        problems.append(f"no clip's name matches '{pattern}' in "
                        f'{", ".join(str(s) for s in sources)}')
    if problems:
        raise MocapError(problems)
    return clips


def _find(sources: Iterable[str | Path], pattern: str) -> tuple[list[ClipFile], list[str]]:
    found: list[ClipFile] = []
    problems: list[str] = []
    for source in sources:
        try:
            found += _source_files(Path(source))
        except MocapError as e:
            problems += e.problems
    files = sorted((f for f in found if fnmatch.fnmatchcase(f.name, pattern)),
                   key=lambda f: (f.name, str(f)))
    return files, problems


def _source_files(path: Path) -> list[ClipFile]:
    if path.is_dir():
        files = [ClipFile(p.stem, p) for p in sorted(path.rglob('*'))
                 if p.suffix.lower() == BVH_SUFFIX and p.is_file()]
        kind = 'folder'
    elif path.name.lower().endswith(BVH_SUFFIX):
        if not path.is_file():
            raise MocapError([f'{path}: no such file'])
        return [ClipFile(path.stem, path)]
    elif path.name.lower().endswith(ARCHIVE_SUFFIXES):
        try:
            with tarfile.open(path) as archive:
                files = [ClipFile(PurePosixPath(m.name).stem, path, m.name) for m in archive
                         if m.isfile() and m.name.lower().endswith(BVH_SUFFIX)]
        except FileNotFoundError:
            raise MocapError([f'{path}: no such file']) from None
        except _ARCHIVE_ERRORS as e:
            raise MocapError([f'{path}: not a readable tar archive ({e})']) from e
        kind = 'archive'
    elif not path.exists():
        raise MocapError([f'{path}: no such file or folder'])
    else:
        raise MocapError([f'{path}: not a BVH file ({BVH_SUFFIX}), a folder or a tar archive '
                          f'({", ".join(ARCHIVE_SUFFIXES)})'])
    if not files:
        raise MocapError([f'{path}: no {BVH_SUFFIX} files in this {kind}'])
    return files


def load_clips(files: list[ClipFile], joint_map: dict[str, str] = BANDAI_JOINTS,
               metres_per_unit: float = BANDAI_METRES_PER_UNIT) -> list[MocapClip]:
    """
    Parse the clips of ``files`` (in that order) as our skeleton's joints.

    ``joint_map`` names the BVH joint of each Skeleton joint; ``metres_per_unit`` converts the
    file's units. Raises MocapError naming every file that cannot be read or parsed, lacks a
    mapped joint, has non-finite positions, or whose facing cannot be told (shoulders and hips
    on top of each other, which the virtual camera needs).
    """
    clips, problems = _load(files, joint_map, metres_per_unit)
    if problems:
        raise MocapError(problems)
    return clips


def _load(files: list[ClipFile], joint_map: dict[str, str],
          metres_per_unit: float) -> tuple[list[MocapClip], list[str]]:
    texts, problems = _read_texts(files)
    clips = []
    for file in files:
        if file not in texts:
            continue
        try:
            motion = parse_bvh(texts[file])
            world = motion.skeleton_positions(joint_map, metres_per_unit)
            if not np.isfinite(world).all():
                raise BvhError('non-finite joint positions')
            front_view(world)
        except ValueError as e:  # BvhError, or front_view's facing
            problems.append(f'{file}: {e}')
            continue
        clips.append(MocapClip(file.name, *file.movement_and_style, world, motion.fps))
    return clips, problems


def _read_texts(files: list[ClipFile]) -> tuple[dict[ClipFile, str], list[str]]:
    """Return the text of each file that can be read, and a line per one that cannot."""
    texts: dict[ClipFile, str] = {}
    problems: list[str] = []
    members: dict[Path, dict[str, ClipFile]] = defaultdict(dict)
    for file in files:
        if file.member is not None:
            members[file.path][file.member] = file
            continue
        try:
            texts[file] = file.path.read_text(encoding='utf-8')
        except (OSError, UnicodeDecodeError) as e:
            problems.append(f'{file}: cannot be read ({e})')
    for path, wanted in members.items():
        try:
            with tarfile.open(path) as archive:
                for member in archive:  # in archive order: one pass, no seeking back
                    file = wanted.pop(member.name, None)
                    if file is None:
                        continue
                    try:
                        texts[file] = archive.extractfile(member).read().decode('utf-8')
                    except UnicodeDecodeError as e:
                        problems.append(f'{file}: cannot be read ({e})')
        except _ARCHIVE_ERRORS as e:
            problems.append(f'{path}: not a readable tar archive ({e})')
            continue
        problems += [f'{file}: not in the archive' for file in wanted.values()]
    return texts, problems
