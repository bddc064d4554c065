"""TemplateStore: round trip, atomic writes, bad files and their reasons, recovery, usability."""
from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import textwrap
import zipfile

from emorec_ros.gesture import store as store_module
from emorec_ros.gesture.skeleton import JOINTS
from emorec_ros.gesture.store import (
    default_directory, read_template, SkippedFile, TemplateFileError,
    TemplateStore, TemplateStoreError)
from emorec_ros.gesture.template import Template, validate_label
import numpy as np
import pytest

J = len(JOINTS)
CREATED = '2026-01-01T00:00:00+00:00'
DROP = object()  # a metadata change that removes the field


def make_template(label: str = 'happy', frames: int = 40) -> Template:
    """Return a template of random skeletons in pixels at 30 fps."""
    rng = np.random.default_rng(frames)
    return Template.new(label, rng.normal(size=(frames, J, 2)) * 100, rng.random((frames, J)),
                        30.0, 'camera')


def metadata_of(template: Template, **changes) -> dict:
    """Return the metadata the store writes for ``template``, with ``changes``."""
    metadata = {
        'format': 'emorec_gesture_template', 'version': 1, 'id': template.id,
        'label': template.label, 'created': template.created, 'frames': template.frames,
        'fps': template.fps, 'joints': list(template.joints), 'source': template.source,
    }
    metadata.update(changes)
    return {key: value for key, value in metadata.items() if value is not DROP}


def write_file(path: Path, metadata: dict, positions: np.ndarray,
               visibility: np.ndarray) -> Path:
    """Write a template file by hand, as a foreign or hostile writer could."""
    np.savez(path, positions=positions, visibility=visibility,
             metadata=np.array(json.dumps(metadata)))
    return path


def test_round_trip_keeps_arrays_and_metadata(tmp_path):
    store = TemplateStore(tmp_path / 'templates')
    assert store.load() == ([], [])  # no directory yet
    template = make_template()
    path = store.save(template)
    assert path == tmp_path / 'templates' / f'{template.id}.npz'
    templates, skipped = store.load()
    assert skipped == [] and len(templates) == 1
    loaded = templates[0]
    for field in ('id', 'label', 'fps', 'source', 'created', 'joints', 'frames'):
        assert getattr(loaded, field) == getattr(template, field)
    np.testing.assert_array_equal(loaded.positions, template.positions)
    np.testing.assert_array_equal(loaded.visibility, template.visibility)
    with np.load(path) as data:  # the metadata is plain JSON, no pickle
        metadata = json.loads(str(data['metadata']))
    assert metadata['format'] == 'emorec_gesture_template' and metadata['frames'] == 40
    assert metadata['joints'] == list(JOINTS)


def test_an_existing_id_is_not_overwritten(tmp_path):
    store = TemplateStore(tmp_path)
    template = make_template()
    store.save(template)
    with pytest.raises(FileExistsError):
        store.save(template)


def test_a_failed_write_leaves_no_template_and_no_temporary_file(tmp_path, monkeypatch):
    store = TemplateStore(tmp_path)
    kept = make_template('sad')
    store.save(kept)

    def crash(*args, **kwargs):
        raise OSError('disk full')

    monkeypatch.setattr(store_module.os, 'replace', crash)
    doomed = make_template('happy', frames=50)
    with pytest.raises(OSError, match='disk full'):
        store.save(doomed)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f'{kept.id}.npz']
    templates, skipped = store.load()
    assert [t.id for t in templates] == [kept.id] and skipped == []


def test_save_refuses_what_load_would_refuse(tmp_path, monkeypatch):
    store = TemplateStore(tmp_path)
    positions, visibility = np.zeros((5, 3, 2)), np.ones((5, 3))
    foreign = Template('abc', 'calm', positions, visibility, 30.0, 'test', CREATED,
                       joints=('nose', 'left_eye', 'right_eye'))
    with pytest.raises(ValueError, match="unknown joint 'nose'"):
        store.save(foreign)
    monkeypatch.setattr(store_module, 'MAX_TEMPLATE_BYTES', 10_000)
    with pytest.raises(ValueError, match='MB is over'):
        store.save(make_template(frames=100))
    assert list(tmp_path.iterdir()) == []


def test_the_temporary_file_of_a_crashed_write_is_reported_and_kept_by_load(tmp_path):
    store = TemplateStore(tmp_path)
    store.save(make_template())
    leftover = tmp_path / '.tmp-abc123.npz'
    leftover.write_bytes(b'PK\x03\x04 half a zip')
    templates, skipped = store.load()
    assert len(templates) == 1
    assert [(s.path, 'interrupted' in s.reason) for s in skipped] == [(leftover, True)]
    assert leftover.exists()


def test_corrupt_and_foreign_files_are_reported_with_their_cause_and_kept(tmp_path):
    store = TemplateStore(tmp_path / 'store')
    good = make_template()
    good_path = store.save(good)
    folder = store.directory
    (folder / 'truncated.npz').write_bytes(good_path.read_bytes()[:300])
    (folder / 'garbage.npz').write_bytes(bytes(range(256)) * 2)
    (folder / 'empty.npz').write_bytes(b'')
    np.savez(folder / 'someone_elses.npz', weights=np.zeros(3))
    np.savez(folder / 'pickled.npz', metadata=np.array(json.dumps(metadata_of(good))),
             positions=np.array([{'evil': 1}], dtype=object), visibility=good.visibility)
    np.savez(folder / 'other_format.npz',
             metadata=np.array(json.dumps({'format': 'other', 'version': 1})))
    (folder / 'renamed.npz').write_bytes(good_path.read_bytes())  # name no longer its id
    (folder / 'notes.txt').write_text('hello')
    (folder / 'subdir').mkdir()
    (folder / 'folder.npz').mkdir()
    os.mkfifo(folder / 'fifo.npz')  # opening it would block a careless reader
    secret = tmp_path / 'passwd'
    secret.write_text('root:x:0:0:root:/root:/bin/bash\n')
    (folder / 'passwd.npz').symlink_to(secret)
    (folder / 'link.npz').symlink_to(good_path)  # even a link to a good template
    with open(folder / 'huge.npz', 'wb') as file:  # sparse: 200 MB long, nothing written
        file.truncate(200 * 1_000_000)
    files_before = sorted(p.name for p in folder.iterdir())

    templates, skipped = store.load()

    assert [t.id for t in templates] == [good.id]
    reasons = {s.path.name: s.reason for s in skipped}
    assert set(reasons) == set(files_before) - {good_path.name}
    assert reasons['truncated.npz'].startswith('damaged .npz archive')
    assert reasons['garbage.npz'] == 'not an .npz archive (zip)'
    assert reasons['empty.npz'] == 'empty file, not an .npz archive (zip)'
    assert reasons['someone_elses.npz'].startswith(
        'missing arrays: metadata, positions, visibility')
    assert reasons['pickled.npz'] == 'array positions contains pickled objects, refused'
    assert 'not an emorec_gesture_template file' in reasons['other_format.npz']
    assert 'does not match its id' in reasons['renamed.npz']
    assert 'not a template file' in reasons['notes.txt']
    assert 'not a template file' in reasons['subdir']
    assert reasons['folder.npz'] == reasons['fifo.npz'] == 'not a regular file'
    assert reasons['passwd.npz'] == reasons['link.npz'] == 'symbolic link, not loaded'
    assert reasons['huge.npz'] == 'too large: 200.0 MB > 64 MB'
    assert sorted(p.name for p in folder.iterdir()) == files_before  # nothing deleted
    assert secret.read_text().startswith('root:')
    for entry in skipped:  # what list_templates can show: a name and one line
        assert entry.reason and '\n' not in entry.reason and str(entry).startswith(entry.name)


def test_a_symbolic_link_is_refused_before_it_is_opened(tmp_path, monkeypatch):
    (tmp_path / 'link.npz').symlink_to('/etc/passwd')
    opened = []
    real_open = os.open
    monkeypatch.setattr(store_module.os, 'open',
                        lambda *args, **kwargs: opened.append(args) or real_open(*args, **kwargs))
    with pytest.raises(TemplateFileError, match='^symbolic link, not loaded$'):
        read_template(tmp_path / 'link.npz')
    assert opened == []


def test_a_zip_bomb_is_refused_before_it_is_unpacked(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, 'MAX_TEMPLATE_BYTES', 1_000_000)
    template = make_template()
    path = tmp_path / f'{template.id}.npz'
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as archive:
        archive.writestr('metadata.npy', b'')
        with archive.open('positions.npy', 'w') as member:
            for _ in range(2):
                member.write(bytes(1_000_000))
        archive.writestr('visibility.npy', b'')
    assert path.stat().st_size < 10_000
    with pytest.raises(TemplateFileError, match=r'^too large unpacked: 2\.0 MB > 1 MB$'):
        read_template(path)


def test_an_array_header_larger_than_its_data_is_refused_before_allocating(tmp_path):
    template = make_template()
    path = write_file(tmp_path / f'{template.id}.npz', metadata_of(template),
                      template.positions, template.visibility)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    header = np.lib.format.header_data_from_array_1_0(template.positions)
    header['shape'] = (10 ** 9, J, 2)  # 100 GB of float32, if believed
    lying = bytearray()

    class Sink:
        def write(self, data: bytes) -> None:
            lying.extend(data)

    np.lib.format.write_array_header_1_0(Sink(), header)
    members['positions.npy'] = bytes(lying) + template.positions.tobytes()
    with zipfile.ZipFile(path, 'w') as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(TemplateFileError, match='is larger than its .* bytes'):
        read_template(path)


def bad_file_cases() -> list[tuple[str, dict, str]]:
    """Return (case, metadata changes, text the reason must hold)."""
    return [
        ('fps_1e9', {'fps': 1e9}, 'fps 1e+09 is outside [1, 1000]'),
        ('fps_low', {'fps': 0.5}, 'fps 0.5 is outside [1, 1000]'),
        ('fps_nan', {'fps': float('nan')}, 'fps nan is outside'),
        ('fps_inf', {'fps': float('inf')}, 'fps inf is outside'),
        ('fps_text', {'fps': '30'}, "fps '30' is not a number"),
        ('fps_bool', {'fps': True}, 'fps True is not a number'),
        ('frames_zero', {'frames': 0}, 'frames 0 is below 1'),
        ('frames_float', {'frames': 40.0}, 'frames 40.0 is not an integer'),
        ('frames_mismatch', {'frames': 41}, 'array positions: shape (40, 13, 2), metadata says'),
        ('no_joints', {'joints': []}, 'joints: 0 names, expected 1-64'),
        ('joints_text', {'joints': 'head'}, 'joints is not a list'),
        ('joint_twice', {'joints': ['head'] * J}, 'head named more than once'),
        ('unknown_joint', {'joints': ['nose'] + list(JOINTS[1:])}, "unknown joint 'nose'"),
        ('few_joints', {'joints': list(JOINTS[:3])}, 'metadata says (40, 3, 2 or 3)'),
        ('bad_label', {'label': 'Not A Label'}, "bad label 'Not A Label'"),
        ('bad_id', {'id': '../../etc/passwd'}, "bad template id '../../etc/passwd'"),
        ('label_number', {'label': 7}, 'label 7 is not a string'),
        ('bad_created', {'created': 'yesterday'}, "created 'yesterday' is not an ISO 8601 time"),
        ('version', {'version': 2}, 'format version 2, this code reads 1'),
        ('no_fps', {'fps': DROP, 'frames': DROP}, 'metadata: missing frames, fps'),
    ]


@pytest.mark.parametrize('case, changes, expected', bad_file_cases(),
                         ids=[case[0] for case in bad_file_cases()])
def test_metadata_out_of_bounds_is_refused_with_field_and_bound(tmp_path, case, changes,
                                                                expected):
    store = TemplateStore(tmp_path)
    template = make_template()
    write_file(store.path_of(template.id), metadata_of(template, **changes), template.positions,
               template.visibility)
    templates, skipped = store.load()
    assert templates == [] and len(skipped) == 1
    assert expected in skipped[0].reason
    assert skipped[0].template_id == template.id


def test_a_template_longer_than_the_bound_is_refused(tmp_path):
    store = TemplateStore(tmp_path)
    template = make_template(frames=601)
    write_file(store.path_of(template.id), metadata_of(template, fps=1.0), template.positions,
               template.visibility)
    (skipped,) = store.load()[1]
    assert 'duration 601 s (601 frames at 1 fps) is over 600 s' in skipped.reason


@pytest.mark.parametrize('coordinate, visible, expected', [
    (2e7, 1.0, 'coordinate magnitude 2e+07 is over 1e+06'),
    (np.nan, 1.0, 'positions: non-finite coordinates of visible joints'),
    (np.inf, 0.5, 'positions: non-finite coordinates of visible joints'),
])
def test_implausible_positions_are_refused(tmp_path, coordinate, visible, expected):
    store = TemplateStore(tmp_path)
    template = make_template()
    positions, visibility = template.positions.copy(), template.visibility.copy()
    positions[3, 5, 0], visibility[3, 5] = coordinate, visible
    write_file(store.path_of(template.id), metadata_of(template), positions, visibility)
    (skipped,) = store.load()[1]
    assert expected in skipped.reason


def test_non_finite_positions_of_missing_joints_are_loaded_as_missing(tmp_path):
    store = TemplateStore(tmp_path)
    template = make_template()
    positions, visibility = template.positions.copy(), template.visibility.copy()
    positions[3, 5], visibility[3, 5] = np.nan, 0.0
    write_file(store.path_of(template.id), metadata_of(template), positions, visibility)
    (loaded,), skipped = store.load()
    assert skipped == [] and np.isfinite(loaded.positions).all()


def test_a_non_numeric_array_or_visibility_is_refused(tmp_path):
    store = TemplateStore(tmp_path)
    template = make_template()
    text = np.full(template.positions.shape, 'x')
    write_file(store.path_of(template.id), metadata_of(template), text, template.visibility)
    assert 'array positions: <U1 is not numbers' in store.load()[1][0].reason
    visibility = template.visibility.copy()
    visibility[0, 0] = np.nan
    write_file(store.path_of(template.id), metadata_of(template), template.positions, visibility)
    assert store.load()[1][0].reason == 'visibility: non-finite values'


def test_deeply_nested_metadata_is_refused(tmp_path):
    store = TemplateStore(tmp_path)
    template = make_template()
    np.savez(store.path_of(template.id), positions=template.positions,
             visibility=template.visibility, metadata=np.array('[' * 20_000 + ']' * 20_000))
    reason = store.load()[1][0].reason
    assert reason == 'metadata: JSON nested too deeply'


def test_skipped_file_is_one_printable_line():
    entry = SkippedFile(Path('/x/bad\nname.npz'), 'first line\nsecond line ' + 'x' * 1000)
    assert entry.name == 'bad\\nname.npz' and entry.template_id is None
    assert '\n' not in entry.reason and len(entry.reason) <= store_module.MAX_REASON_CHARS
    assert entry.reason.startswith('first line second line')
    assert str(entry).startswith('bad\\nname.npz: first line')
    assert SkippedFile(Path('abc-1.npz'), 'r').template_id == 'abc-1'
    assert SkippedFile(Path('.tmp-abc.npz'), 'r').template_id is None


def complete_temporary(store: TemplateStore, template: Template, name: str) -> Path:
    """Leave what a write killed just before its rename leaves: a complete temporary file."""
    path = store.save(template)
    temporary = store.directory / name
    os.replace(path, temporary)
    return temporary


def test_recover_finishes_complete_writes_and_removes_the_rest(tmp_path):
    store = TemplateStore(tmp_path / 'store')
    stored, lost = make_template('sad', 30), make_template('happy', 40)
    store.save(stored)
    complete = complete_temporary(store, lost, '.tmp-complete.npz')
    duplicate = store.directory / '.tmp-duplicate.npz'
    duplicate.write_bytes(store.path_of(stored.id).read_bytes())
    truncated = store.directory / '.tmp-truncated.npz'
    truncated.write_bytes(complete.read_bytes()[:500])
    empty = store.directory / '.tmp-empty.npz'
    empty.write_bytes(b'')
    hostile = make_template('angry', 50)
    write_file(store.directory / '.tmp-hostile.npz', metadata_of(hostile, fps=1e9),
               hostile.positions, hostile.visibility)
    with open(store.directory / '.tmp-huge.npz', 'wb') as file:
        file.truncate(100 * 1_000_000)
    outside = tmp_path / 'outside.npz'
    outside.write_bytes(b'not mine')
    others = ['notes.txt', '.tmp-nosuffix', '.tmpx.npz', 'tmp-abc.npz', '.tmp-link.npz',
              '.tmp-folder.npz']
    for name in others[:4]:
        (store.directory / name).write_bytes(b'keep me')
    (store.directory / '.tmp-link.npz').symlink_to(outside)
    (store.directory / '.tmp-folder.npz').mkdir()

    notes = store.recover()

    assert len(notes) == 8 and all('\n' not in note for note in notes)
    text = '\n'.join(notes)
    assert f'recovered template {lost.id} ("happy", 40 frames) from .tmp-complete.npz' in text
    assert f'removed .tmp-duplicate.npz: duplicate of stored template {stored.id}' in text
    assert 'removed .tmp-truncated.npz: incomplete or invalid (damaged' in text
    assert 'removed .tmp-empty.npz: incomplete or invalid (empty file' in text
    assert 'removed .tmp-hostile.npz: incomplete or invalid (metadata: fps 1e+09' in text
    assert 'removed .tmp-huge.npz: incomplete or invalid (too large: 100.0 MB > 64 MB)' in text
    assert 'left .tmp-link.npz: a symbolic link' in text
    assert 'left .tmp-folder.npz: not a regular file' in text
    names = sorted(p.name for p in store.directory.iterdir())
    assert names == sorted([f'{stored.id}.npz', f'{lost.id}.npz'] + others)
    assert outside.read_bytes() == b'not mine'
    templates, skipped = store.load()
    assert sorted(t.id for t in templates) == sorted([stored.id, lost.id])
    np.testing.assert_array_equal(templates[[t.id for t in templates].index(lost.id)].positions,
                                  lost.positions)
    assert store.recover() == [
        'left .tmp-folder.npz: not a regular file',
        'left .tmp-link.npz: a symbolic link, not a temporary file of this store']


def test_recover_leaves_a_file_that_a_running_write_holds(tmp_path):
    store = TemplateStore(tmp_path)
    temporary = complete_temporary(store, make_template(), '.tmp-busy.npz')
    with open(temporary, 'rb') as writer:
        fcntl.flock(writer.fileno(), fcntl.LOCK_EX)  # as save() holds it while it writes
        assert store.recover() == ['left .tmp-busy.npz: a running process is still writing it']
    assert temporary.exists()
    assert len(store.recover()) == 1 and not temporary.exists()
    assert len(store.load()[0]) == 1


def test_recover_after_kill_9_between_write_and_rename(tmp_path):
    folder = tmp_path / 'store'
    script = textwrap.dedent(f"""
        import os, signal
        import numpy as np
        from emorec_ros.gesture import store as store_module
        from emorec_ros.gesture.store import TemplateStore
        from emorec_ros.gesture.template import Template
        store_module.os.replace = lambda *args: os.kill(os.getpid(), signal.SIGKILL)
        template = Template('killed', 'sad', np.ones((20, {J}, 2)), np.ones((20, {J})), 25.0,
                            'camera', '{CREATED}')
        TemplateStore({str(folder)!r}).save(template)
    """)
    process = subprocess.run([sys.executable, '-c', script], capture_output=True, timeout=60)
    assert process.returncode == -signal.SIGKILL, process.stderr.decode()
    (leftover,) = folder.iterdir()
    assert leftover.name.startswith('.tmp-') and leftover.suffix == '.npz'
    store = TemplateStore(folder)
    assert store.recover() == [
        f'recovered template killed ("sad", 20 frames) from {leftover.name} of an interrupted '
        'write']
    assert [p.name for p in folder.iterdir()] == ['killed.npz']
    assert [t.id for t in store.load()[0]] == ['killed']


def test_recover_on_a_missing_folder_does_nothing(tmp_path):
    assert TemplateStore(tmp_path / 'none').recover() == []
    assert not (tmp_path / 'none').exists()


def test_check_usable_creates_the_folder(tmp_path):
    store = TemplateStore(tmp_path / 'a' / 'b')
    store.check_usable()
    assert store.directory.is_dir() and list(store.directory.iterdir()) == []


def test_check_usable_refuses_a_file_where_the_folder_should_be(tmp_path):
    (tmp_path / 'templates').write_text('a file')
    store = TemplateStore(tmp_path / 'templates')
    with pytest.raises(TemplateStoreError, match='exists but is not a directory'):
        store.check_usable()
    with pytest.raises(TemplateStoreError, match='cannot be listed: NotADirectoryError'):
        store.load()
    with pytest.raises(TemplateStoreError, match='cannot be listed'):
        store.recover()


def test_check_usable_refuses_a_folder_that_cannot_be_created(tmp_path):
    (tmp_path / 'parent').write_text('a file')
    store = TemplateStore(tmp_path / 'parent' / 'templates')
    with pytest.raises(TemplateStoreError, match='cannot be created: (NotADirectory|FileExists)'):
        store.check_usable()
    assert issubclass(TemplateStoreError, OSError)


def test_check_usable_refuses_a_broken_link(tmp_path):
    (tmp_path / 'templates').symlink_to(tmp_path / 'gone')
    with pytest.raises(TemplateStoreError, match='broken symbolic link'):
        TemplateStore(tmp_path / 'templates').check_usable()


def test_check_usable_refuses_a_folder_that_cannot_be_listed_or_written(tmp_path, monkeypatch):
    store = TemplateStore(tmp_path)

    def denied(*args, **kwargs):
        raise PermissionError(13, 'Permission denied')

    monkeypatch.setattr(store_module.tempfile, 'mkstemp', denied)
    with pytest.raises(TemplateStoreError, match='is not writable: PermissionError'):
        store.check_usable()
    monkeypatch.setattr(store_module.os, 'scandir', denied)
    with pytest.raises(TemplateStoreError, match='cannot be listed: PermissionError'):
        store.check_usable()
    assert list(tmp_path.iterdir()) == []  # the write probe left nothing


@pytest.mark.parametrize('label', ['happy', 'not_confident', 'a', 'x' * 32, 'wave2'])
def test_good_labels(label):
    assert validate_label(label) == label


@pytest.mark.parametrize('label', ['', 'Happy', '2fast', 'x' * 33, '../evil', 'a/b', 'a b',
                                   'not-confident', 'héhé', None])
def test_bad_labels_are_refused(label, tmp_path):
    with pytest.raises(ValueError, match='label'):
        validate_label(label)
    with pytest.raises(ValueError):
        make_template(label)


def test_delete_by_id(tmp_path):
    store = TemplateStore(tmp_path)
    template = make_template()
    store.save(template)
    assert store.delete('0123456789abcdef0123456789abcdef') is False  # unknown id
    with pytest.raises(ValueError, match='id'):
        store.delete('../../etc/passwd')
    assert store.delete(template.id) is True
    assert store.load() == ([], [])
    assert store.delete(template.id) is False


def test_templates_load_oldest_first(tmp_path):
    store = TemplateStore(tmp_path)

    def at(template_id: str, created: str) -> Template:
        return Template(template_id, 'sad', np.zeros((5, J, 2)), np.ones((5, J)), 30.0,
                        'camera', created)

    older = at('b_older', '2026-01-01T10:00:00+00:00')
    newer = at('a_newer', '2026-01-02T10:00:00+00:00')
    store.save(newer)
    store.save(older)
    assert [t.id for t in store.load()[0]] == ['b_older', 'a_newer']


def test_default_directory_follows_ros_home(monkeypatch, tmp_path):
    monkeypatch.setenv('ROS_HOME', str(tmp_path))
    assert default_directory() == tmp_path / 'emorec' / 'templates'
    monkeypatch.delenv('ROS_HOME')
    assert default_directory() == Path.home() / '.ros' / 'emorec' / 'templates'
