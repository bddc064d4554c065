"""
Gesture templates on disk: one ``<id>.npz`` per template in a directory.

Each file holds the arrays ``positions`` and ``visibility`` and a JSON string ``metadata`` (format,
version, id, label, created, frames, fps, joints, source). One file per template, rather than an
array file with a JSON file beside it, because one file can be replaced atomically: a template is
written to a hidden temporary file in the same directory, flushed to disk, and renamed over its
final name (os.replace), so a reader sees the whole template or none of it, even after a crash.

Loading never raises for a bad file and never deletes one: corrupt, foreign, oversized or
unreadable files, symbolic links (never followed) and temporary files left by an interrupted
write are reported, each with a one-line reason, and skipped. Files are checked against the
bounds of emorec_ros.gesture.template and MAX_TEMPLATE_BYTES before their arrays are read, so a
hostile file cannot make the reader allocate more than its own (bounded) size.

``recover()``, called once at start, finishes or removes the temporary files of writes that were
killed; it touches nothing but those files.
"""
from __future__ import annotations

from dataclasses import dataclass
import errno
import fcntl
import json
import math
import os
from pathlib import Path
import re
import stat
import tempfile
from typing import BinaryIO
import zipfile
import zlib

from emorec_ros.gesture.template import (
    Template, validate_duration, validate_fps, validate_id, validate_joints)
import numpy as np

FORMAT = 'emorec_gesture_template'
VERSION = 1
SUFFIX = '.npz'
MB = 1_000_000
#: Largest template file, and largest array in one. A 30 s recording at 30 fps is about 60 kB
#: and the longest template allowed (template.MAX_DURATION_S) at camera rates a few MB; the bound
#: keeps a hostile or damaged file (or a zip bomb) from exhausting memory.
MAX_TEMPLATE_BYTES = 64 * MB
#: Largest metadata JSON string, in characters: it holds a dozen short fields.
MAX_METADATA_CHARS = 64 * 1024
#: Longest reason in a SkippedFile, so one bad file cannot flood the log.
MAX_REASON_CHARS = 300
#: The arrays of a template file, as zip members.
ARRAYS = ('metadata', 'positions', 'visibility')

_TEMPORARY_PREFIX = '.tmp-'
#: Names tempfile.mkstemp gives our temporary files; nothing else is touched by recover().
_TEMPORARY_NAME = re.compile(re.escape(_TEMPORARY_PREFIX) + r'[A-Za-z0-9_]{1,64}'
                             + re.escape(SUFFIX))
_SYMBOLIC_LINK = 'symbolic link, not loaded'
_ZIP_SIGNATURES = (b'PK\x03\x04', b'PK\x05\x06')  # a local file header; an empty archive
# What reading a damaged zip or .npy can raise (zlib.error: bad deflate data; RuntimeError:
# an encrypted member; NotImplementedError: an unknown compression method).
_READ_ERRORS = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error,
                RuntimeError, NotImplementedError)


def default_directory() -> Path:
    """Return ``$ROS_HOME/emorec/templates`` (ROS_HOME defaults to ~/.ros, as in ROS 2)."""
    ros_home = os.environ.get('ROS_HOME') or os.path.join(os.path.expanduser('~'), '.ros')
    return Path(ros_home) / 'emorec' / 'templates'


def _one_line(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """Return ``text`` on one line (whitespace runs become one space), at most ``limit`` long."""
    text = _printable(' '.join(str(text).split()))
    return text if len(text) <= limit else text[:limit - 3] + '...'


def _printable(name: str) -> str:
    """Return a file name with its control characters escaped, as repr() escapes them."""
    return ''.join(c if c.isprintable() else repr(c)[1:-1] for c in name)


@dataclass(frozen=True)
class SkippedFile:
    """
    A file in the store directory that was not loaded, and why.

    ``reason`` is one printable line. ``str()`` gives ``'<file name>: <reason>'``.
    """

    path: Path
    reason: str

    def __post_init__(self) -> None:
        object.__setattr__(self, 'path', Path(self.path))
        object.__setattr__(self, 'reason', _one_line(self.reason))

    @property
    def name(self) -> str:
        """Return the file name, printable (control characters escaped)."""
        return _printable(self.path.name)

    @property
    def template_id(self) -> str | None:
        """Return the template id the file name stands for (``<id>.npz``), else None."""
        stem, suffix = self.path.stem, self.path.suffix
        if suffix != SUFFIX or self.path.name.startswith(_TEMPORARY_PREFIX):
            return None
        try:
            return validate_id(stem)
        except ValueError:
            return None

    def __str__(self) -> str:
        return f'{self.name}: {self.reason}'


class TemplateFileError(ValueError):
    """A file is not a readable template of this format; the message says why, on one line."""


class TemplateStoreError(OSError):
    """The store directory cannot be used (created, listed, read or written)."""


class TemplateStore:
    """Templates in ``directory`` (created on the first save or by check_usable)."""

    def __init__(self, directory: Path | str | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_directory()

    def path_of(self, template_id: str) -> Path:
        """Return where the template with this id lives (ValueError for a bad id)."""
        return self.directory / f'{validate_id(template_id)}{SUFFIX}'

    def check_usable(self) -> None:
        """
        Create the directory if needed and check that it can be listed, read and written.

        Raise TemplateStoreError (an OSError) saying why not: it exists but is not a directory,
        it cannot be created (e.g. a parent is a file), listed, or written (a probe file, removed
        at once, cannot be created).
        """
        directory = self.directory
        if directory.is_symlink() and not directory.exists():
            raise TemplateStoreError(f'template folder {directory} is a broken symbolic link')
        if os.path.lexists(directory) and not directory.is_dir():
            raise TemplateStoreError(f'template folder {directory} exists but is not a directory')
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise TemplateStoreError(
                f'template folder {directory} cannot be created: {_error_text(e)}') from e
        try:
            with os.scandir(directory) as entries:
                for _ in entries:
                    pass
        except OSError as e:
            raise TemplateStoreError(
                f'template folder {directory} cannot be listed: {_error_text(e)}') from e
        try:
            # The temporary-file name, so that a probe left by a crash is removed by recover().
            handle, probe = tempfile.mkstemp(prefix=_TEMPORARY_PREFIX, suffix=SUFFIX,
                                             dir=directory)
            os.close(handle)
            os.unlink(probe)
        except OSError as e:
            raise TemplateStoreError(
                f'template folder {directory} is not writable: {_error_text(e)}') from e

    def save(self, template: Template) -> Path:
        """
        Write a new template atomically and return its path.

        Raise FileExistsError when its id is already stored, ValueError when the store cannot
        keep it (joints not among skeleton.JOINTS, or a file over MAX_TEMPLATE_BYTES), OSError
        when writing fails (no file is left behind then).
        """
        path = self.path_of(template.id)
        validate_joints(template.joints, known_only=True)
        metadata = json.dumps({
            'format': FORMAT, 'version': VERSION, 'id': template.id, 'label': template.label,
            'created': template.created, 'frames': template.frames, 'fps': template.fps,
            'joints': list(template.joints), 'source': template.source,
        })
        if len(metadata) > MAX_METADATA_CHARS:
            raise ValueError(f'template {template.id}: metadata of {len(metadata)} characters '
                             f'is over {MAX_METADATA_CHARS} (a long source?)')
        size = template.positions.nbytes + template.visibility.nbytes + 4 * len(metadata) + 1024
        if size > MAX_TEMPLATE_BYTES:
            raise ValueError(f'template {template.id}: {_megabytes(size)} MB is over '
                             f'{MAX_TEMPLATE_BYTES / MB:g} MB')
        if os.path.lexists(path):
            raise FileExistsError(f'template {template.id} already exists in {self.directory}')
        self.directory.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=_TEMPORARY_PREFIX, suffix=SUFFIX,
                                             dir=self.directory)
        try:
            with os.fdopen(handle, 'wb') as file:
                # Held until the file is renamed: tells recover() in another process that this
                # write is alive. The kernel drops it when the process dies, even by kill -9.
                fcntl.flock(file.fileno(), fcntl.LOCK_EX)
                np.savez(file, positions=template.positions, visibility=template.visibility,
                         metadata=np.array(metadata))
                file.flush()
                os.fsync(file.fileno())
                os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        _fsync_directory(self.directory)
        return path

    def delete(self, template_id: str) -> bool:
        """Remove a template; return False when no template has this id (ValueError: bad id)."""
        try:
            self.path_of(template_id).unlink()
        except FileNotFoundError:
            return False
        _fsync_directory(self.directory)
        return True

    def load(self) -> tuple[list[Template], list[SkippedFile]]:
        """
        Return every valid template (by creation time, then id) and the files skipped, by name.

        No file is changed or removed. A missing directory holds no templates; one that exists
        but cannot be listed (or is not a directory) raises TemplateStoreError.
        """
        templates: list[Template] = []
        skipped: list[SkippedFile] = []
        for path in self._entries():
            if _TEMPORARY_NAME.fullmatch(path.name):
                skipped.append(SkippedFile(
                    path, 'temporary file of an interrupted or ongoing write (recover() at start '
                    'finishes or removes it)'))
            elif path.suffix != SUFFIX and not path.is_symlink():
                skipped.append(SkippedFile(path, f'not a template file (*{SUFFIX})'))
            else:
                try:
                    templates.append(read_template(path))
                except TemplateFileError as e:
                    skipped.append(SkippedFile(path, str(e)))
        templates.sort(key=lambda t: (t.created, t.id))
        return templates, skipped

    def recover(self) -> list[str]:
        """
        Finish or remove the temporary files of writes that were interrupted; return log notes.

        Call once at start, before load(). Only regular files named like this store's temporary
        files (``.tmp-*.npz``) are touched. One that holds a complete, valid template whose id
        is not stored yet is moved into place (fsync, os.replace, directory fsync); one that is
        incomplete, invalid or a duplicate is removed. Files that another process is still
        writing (locked) are left alone. A missing directory gives no notes; one that cannot be
        listed raises TemplateStoreError. Failures on single files become notes.
        """
        notes: list[str] = []
        for path in self._entries():
            if _TEMPORARY_NAME.fullmatch(path.name):
                notes.append(self._recover_one(path))
        return notes

    def _recover_one(self, path: Path) -> str:
        name = _printable(path.name)
        try:
            file = _open_regular_file(path)
        except TemplateFileError as e:
            if str(e) == _SYMBOLIC_LINK:
                return f'left {name}: a symbolic link, not a temporary file of this store'
            return f'left {name}: {e}'
        with file:
            try:
                fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return f'left {name}: a running process is still writing it'
            try:
                template = _read_open_template(file, path, check_name=False)
            except TemplateFileError as e:
                return self._remove(path, f'incomplete or invalid ({e})')
            target = self.path_of(template.id)
            if os.path.lexists(target):
                return self._remove(path, f'duplicate of stored template {template.id}')
            try:
                os.fsync(file.fileno())  # the data, from a process that may not have synced it
                os.replace(path, target)
            except OSError as e:
                return f'left {name}: could not move it to {target.name}: {_error_text(e)}'
        _fsync_directory(self.directory)
        return (f'recovered template {template.id} ("{template.label}", {template.frames} '
                f'frames) from {name} of an interrupted write')

    def _remove(self, path: Path, why: str) -> str:
        name = _printable(path.name)
        try:
            path.unlink()
        except OSError as e:
            return f'could not remove {name}, {why}: {_error_text(e)}'
        _fsync_directory(self.directory)
        return f'removed {name}: {why}'

    def _entries(self) -> list[Path]:
        """Return the directory's entries by name; [] if it does not exist."""
        if not os.path.lexists(self.directory):
            return []
        try:
            with os.scandir(self.directory) as entries:
                return sorted(self.directory / entry.name for entry in entries)
        except OSError as e:
            raise TemplateStoreError(
                f'template folder {self.directory} cannot be listed: {_error_text(e)}') from e


def read_template(path: Path | str, check_name: bool = True) -> Template:
    """
    Return the template in one file, without following symbolic links.

    Raise TemplateFileError, whose message names the cause, when the file is a link, not a
    regular file, over MAX_TEMPLATE_BYTES, not a zip archive, damaged, lacks arrays, holds
    pickled objects, is foreign or of another version, or breaks a bound of
    emorec_ros.gesture.template. With ``check_name`` the file name must be ``<id>.npz``.
    """
    path = Path(path)
    if path.is_symlink():  # before any open: a link is never followed
        raise TemplateFileError(_SYMBOLIC_LINK)
    try:
        info = path.lstat()
    except OSError as e:
        raise TemplateFileError(f'cannot read: {_error_text(e)}') from e
    _check_file(info)
    _check_size(info.st_size)  # before opening: a huge file is never read
    with _open_regular_file(path) as file:
        return _read_open_template(file, path, check_name)


def _open_regular_file(path: Path) -> BinaryIO:
    """Open a regular file for reading, never through a link; else TemplateFileError."""
    try:
        # O_NOFOLLOW: not even a link swapped in after a check; O_NONBLOCK: opening a FIFO does
        # not wait for a writer (fstat below refuses it).
        handle = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise TemplateFileError(_SYMBOLIC_LINK) from e
        raise TemplateFileError(f'cannot read: {_error_text(e)}') from e
    try:
        _check_file(os.fstat(handle))
    except TemplateFileError:
        os.close(handle)
        raise
    return os.fdopen(handle, 'rb')


def _check_file(info: os.stat_result) -> None:
    if stat.S_ISLNK(info.st_mode):
        raise TemplateFileError(_SYMBOLIC_LINK)
    if not stat.S_ISREG(info.st_mode):
        raise TemplateFileError('not a regular file')


def _check_size(size: int) -> None:
    if size > MAX_TEMPLATE_BYTES:
        raise TemplateFileError(f'too large: {_megabytes(size)} MB > '
                                f'{MAX_TEMPLATE_BYTES / MB:g} MB')


def _read_open_template(file: BinaryIO, path: Path, check_name: bool) -> Template:
    """Return the template in an open regular file; TemplateFileError naming the cause."""
    _check_size(os.fstat(file.fileno()).st_size)
    signature = file.read(4)
    if not signature:
        raise TemplateFileError('empty file, not an .npz archive (zip)')
    if signature not in _ZIP_SIGNATURES:
        raise TemplateFileError('not an .npz archive (zip)')
    file.seek(0)
    try:
        with zipfile.ZipFile(file) as archive:
            headers = _check_members(archive)
        file.seek(0)
        with np.load(file, allow_pickle=False) as data:
            metadata = _parse_metadata(str(data['metadata']))
            _check_metadata(metadata, headers)
            positions, visibility = data['positions'], data['visibility']
    except TemplateFileError:
        raise
    except RecursionError as e:  # before RuntimeError in _READ_ERRORS: JSON nested too deep
        raise TemplateFileError('metadata: JSON nested too deeply') from e
    except zipfile.BadZipFile as e:
        raise TemplateFileError(f'damaged .npz archive (truncated?): {_error_text(e)}') from e
    except _READ_ERRORS as e:
        raise TemplateFileError(f'damaged .npz archive: {_error_text(e)}') from e
    visible = visibility > 0
    if not np.isfinite(visibility).all():
        raise TemplateFileError('visibility: non-finite values')
    if not np.isfinite(positions[visible]).all():
        raise TemplateFileError('positions: non-finite coordinates of visible joints')
    try:
        template = Template(id=metadata['id'], label=metadata['label'], positions=positions,
                            visibility=visibility, fps=metadata['fps'],
                            source=metadata['source'], created=metadata['created'],
                            joints=tuple(metadata['joints']))
    except ValueError as e:
        raise TemplateFileError(f'invalid: {e}') from e
    if check_name and path.stem != template.id:
        raise TemplateFileError(f'file name {_printable(path.name)} does not match its id '
                                f'{template.id} (expected {template.id}{SUFFIX})')
    return template


def _check_members(archive: zipfile.ZipFile) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Return (shape, dtype) of each array in ARRAYS, from the .npy headers, before any data."""
    members = {info.filename: info for info in archive.infolist()}
    present = [name for name in ARRAYS if f'{name}.npy' in members]
    unpacked = sum(members[f'{name}.npy'].file_size for name in present)
    if unpacked > MAX_TEMPLATE_BYTES:  # a zip bomb: deflated members that unpack to gigabytes
        raise TemplateFileError(f'too large unpacked: {_megabytes(unpacked)} MB > '
                                f'{MAX_TEMPLATE_BYTES / MB:g} MB')
    headers = {}
    for name in present:  # pickled arrays first: a worse sign than missing ones
        info = members[f'{name}.npy']
        with archive.open(info) as member:
            version = np.lib.format.read_magic(member)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(member)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(member)
            else:
                raise TemplateFileError(f'array {name}: .npy format {version} not supported')
        if dtype.hasobject:
            raise TemplateFileError(f'array {name} contains pickled objects, refused')
        if math.prod(shape) * dtype.itemsize > info.file_size:
            raise TemplateFileError(f'array {name}: shape {shape} of {dtype} is larger than its '
                                    f'{info.file_size} bytes (truncated?)')
        headers[name] = (shape, dtype)
    missing = [name for name in ARRAYS if name not in headers]
    if missing:
        raise TemplateFileError(f'missing arrays: {", ".join(missing)} (not an {FORMAT} file?)')
    metadata_shape, metadata_dtype = headers['metadata']
    if (metadata_dtype.kind != 'U' or metadata_shape != ()
            or metadata_dtype.itemsize > 4 * MAX_METADATA_CHARS):
        raise TemplateFileError(f'array metadata: not a JSON string of at most '
                                f'{MAX_METADATA_CHARS} characters ({metadata_dtype}, '
                                f'shape {metadata_shape})')
    for name in ('positions', 'visibility'):
        if headers[name][1].kind not in 'fiu':
            raise TemplateFileError(f'array {name}: {headers[name][1]} is not numbers')
    return headers


def _parse_metadata(text: str) -> dict:
    """Return the metadata JSON as a dict of this format and version, else TemplateFileError."""
    try:
        metadata = json.loads(text)
    except ValueError as e:
        raise TemplateFileError(f'metadata: not JSON: {e}') from e
    if not isinstance(metadata, dict):
        raise TemplateFileError(f'not an {FORMAT} file (metadata is not a JSON object)')
    if metadata.get('format') != FORMAT:
        found = _one_line(repr(metadata.get('format')), 40)
        raise TemplateFileError(f'not an {FORMAT} file (metadata format {found})')
    if metadata.get('version') != VERSION:
        found = _one_line(repr(metadata.get('version')), 40)
        raise TemplateFileError(f'metadata: format version {found}, this code reads {VERSION}')
    return metadata


def _check_metadata(metadata: dict, headers: dict) -> None:
    """Check the metadata fields against the bounds, and the array shapes against them."""
    fields = ('id', 'label', 'created', 'frames', 'fps', 'joints', 'source')
    missing = [name for name in fields if name not in metadata]
    if missing:
        raise TemplateFileError(f'metadata: missing {", ".join(missing)}')
    for name in ('id', 'label', 'created', 'source'):
        if not isinstance(metadata[name], str):
            raise TemplateFileError(f'metadata: {name} {_one_line(repr(metadata[name]), 40)} is '
                                    'not a string')
    try:
        validate_id(metadata['id'])
        fps = validate_fps(metadata['fps'])
        validate_duration(metadata['frames'], fps)
        if not isinstance(metadata['joints'], list):
            raise ValueError('joints is not a list')
        joints = validate_joints(metadata['joints'], known_only=True)
    except ValueError as e:
        raise TemplateFileError(f'metadata: {e}') from e
    frames = metadata['frames']
    positions, visibility = headers['positions'][0], headers['visibility'][0]
    if positions not in ((frames, len(joints), 2), (frames, len(joints), 3)):
        raise TemplateFileError(f'array positions: shape {positions}, metadata says '
                                f'({frames}, {len(joints)}, 2 or 3)')
    if visibility != (frames, len(joints)):
        raise TemplateFileError(f'array visibility: shape {visibility}, metadata says '
                                f'({frames}, {len(joints)})')


def _megabytes(size: int) -> str:
    return f'{size / MB:.1f}'


def _error_text(error: BaseException) -> str:
    return _one_line(f'{type(error).__name__}: {error}')


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
