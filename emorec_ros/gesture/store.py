"""Gesture templates on disk: one ``<id>.npz`` per template in a directory.

Each file holds the arrays ``positions`` and ``visibility`` and a JSON string ``metadata`` (format,
version, id, label, created, frames, fps, joints, source). One file per template, rather than an
array file with a JSON file beside it, because one file can be replaced atomically: a template is
written to a hidden temporary file in the same directory, flushed to disk, and renamed over its
final name (os.replace), so a reader sees the whole template or none of it, even after a crash.

Loading never raises for a bad file and never deletes one: corrupt, foreign or unreadable files
(and temporary files left by an interrupted write) are reported and skipped.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emorec_ros.gesture.template import Template, validate_id

FORMAT = 'emorec_gesture_template'
VERSION = 1
SUFFIX = '.npz'
_TEMPORARY_PREFIX = '.tmp-'


def default_directory() -> Path:
    """``$ROS_HOME/emorec/templates`` (ROS_HOME defaults to ~/.ros, as in ROS 2)."""
    ros_home = os.environ.get('ROS_HOME') or os.path.join(os.path.expanduser('~'), '.ros')
    return Path(ros_home) / 'emorec' / 'templates'


@dataclass(frozen=True)
class SkippedFile:
    """A file in the store directory that was not loaded, and why."""

    path: Path
    reason: str


class TemplateFileError(ValueError):
    """A file is not a readable template of this format."""


class TemplateStore:
    """Templates in ``directory`` (created on the first save)."""

    def __init__(self, directory: Path | str | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_directory()

    def path_of(self, template_id: str) -> Path:
        """Where the template with this id lives (ValueError for an id that is not one)."""
        return self.directory / f'{validate_id(template_id)}{SUFFIX}'

    def save(self, template: Template) -> Path:
        """Write a new template atomically; FileExistsError when its id is already stored."""
        path = self.path_of(template.id)
        if path.exists():
            raise FileExistsError(f'template {template.id} already exists in {self.directory}')
        self.directory.mkdir(parents=True, exist_ok=True)
        metadata = {
            'format': FORMAT, 'version': VERSION, 'id': template.id, 'label': template.label,
            'created': template.created, 'frames': template.frames, 'fps': template.fps,
            'joints': list(template.joints), 'source': template.source,
        }
        handle, temporary = tempfile.mkstemp(prefix=_TEMPORARY_PREFIX, suffix=SUFFIX, dir=self.directory)
        try:
            with os.fdopen(handle, 'wb') as file:
                np.savez(file, positions=template.positions, visibility=template.visibility,
                         metadata=np.array(json.dumps(metadata)))
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        _fsync_directory(self.directory)
        return path

    def delete(self, template_id: str) -> bool:
        """Remove a template; False when no template has this id."""
        try:
            self.path_of(template_id).unlink()
        except FileNotFoundError:
            return False
        _fsync_directory(self.directory)
        return True

    def load(self) -> tuple[list[Template], list[SkippedFile]]:
        """Every readable template (sorted by creation time, then id) and the files skipped."""
        if not self.directory.is_dir():
            return [], []
        templates: list[Template] = []
        skipped: list[SkippedFile] = []
        for path in sorted(self.directory.iterdir()):
            if path.name.startswith(_TEMPORARY_PREFIX):
                skipped.append(SkippedFile(path, 'temporary file of an interrupted write'))
            elif not path.is_file() or path.suffix != SUFFIX:
                skipped.append(SkippedFile(path, f'not a template file (*{SUFFIX})'))
            else:
                try:
                    templates.append(read_template(path))
                except TemplateFileError as e:
                    skipped.append(SkippedFile(path, str(e)))
        templates.sort(key=lambda t: (t.created, t.id))
        return templates, skipped


def read_template(path: Path) -> Template:
    """One template file; TemplateFileError when it is corrupt, foreign or inconsistent."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if 'metadata' not in data.files:
                raise TemplateFileError(f'not an {FORMAT} file (no metadata)')
            metadata = json.loads(str(data['metadata']))
            if not isinstance(metadata, dict) or metadata.get('format') != FORMAT:
                raise TemplateFileError(f'not an {FORMAT} file')
            if metadata.get('version') != VERSION:
                raise TemplateFileError(f'format version {metadata.get("version")!r}, this code reads {VERSION}')
            positions, visibility = data['positions'], data['visibility']
    except TemplateFileError:
        raise
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise TemplateFileError(f'unreadable: {type(e).__name__}: {e}') from e
    try:
        template = Template(id=metadata['id'], label=metadata['label'], positions=positions, visibility=visibility,
                            fps=float(metadata['fps']), source=str(metadata['source']),
                            created=str(metadata['created']), joints=tuple(metadata['joints']))
    except (KeyError, TypeError, ValueError) as e:
        raise TemplateFileError(f'inconsistent: {type(e).__name__}: {e}') from e
    if path.stem != template.id or metadata.get('frames') != template.frames:
        raise TemplateFileError(f'file name or frame count does not match its metadata (id {template.id})')
    return template


def _fsync_directory(directory: Path) -> None:
    """Make a rename or removal in ``directory`` durable (POSIX; a no-op where not supported)."""
    try:
        handle = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)
