"""TemplateStore: round trip, atomic writes, corrupt and foreign files, labels, deletion."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from emorec_ros.gesture import store as store_module
from emorec_ros.gesture.skeleton import JOINTS
from emorec_ros.gesture.store import TemplateStore, default_directory
from emorec_ros.gesture.template import Template, validate_label

J = len(JOINTS)


def make_template(label: str = 'happy', frames: int = 40) -> Template:
    rng = np.random.default_rng(frames)
    return Template.new(label, rng.normal(size=(frames, J, 2)) * 100, rng.random((frames, J)), 30.0, 'camera')


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


def test_the_temporary_file_of_a_crashed_write_is_reported_and_kept(tmp_path):
    store = TemplateStore(tmp_path)
    store.save(make_template())
    leftover = tmp_path / '.tmp-abc123.npz'
    leftover.write_bytes(b'PK\x03\x04 half a zip')
    templates, skipped = store.load()
    assert len(templates) == 1
    assert [(s.path, 'interrupted' in s.reason) for s in skipped] == [(leftover, True)]
    assert leftover.exists()


def test_corrupt_and_foreign_files_are_reported_skipped_and_kept(tmp_path):
    store = TemplateStore(tmp_path)
    good = make_template()
    store.save(good)
    truncated = tmp_path / 'truncated.npz'
    truncated.write_bytes(store.path_of(good.id).read_bytes()[:300])
    (tmp_path / 'garbage.npz').write_bytes(os.urandom(200))
    np.savez(tmp_path / 'someone_elses.npz', weights=np.zeros(3))
    np.savez(tmp_path / 'pickled.npz', metadata=np.array([{'format': 'emorec_gesture_template'}], dtype=object))
    np.savez(tmp_path / 'other_format.npz', metadata=np.array(json.dumps({'format': 'other', 'version': 1})))
    renamed = tmp_path / 'renamed.npz'
    renamed.write_bytes(store.path_of(good.id).read_bytes())  # file name no longer its id
    (tmp_path / 'notes.txt').write_text('hello')
    (tmp_path / 'subdir').mkdir()
    files_before = sorted(p.name for p in tmp_path.iterdir())

    templates, skipped = store.load()

    assert [t.id for t in templates] == [good.id]
    reasons = {s.path.name: s.reason for s in skipped}
    assert set(reasons) == set(files_before) - {f'{good.id}.npz'}
    assert 'unreadable' in reasons['truncated.npz'] and 'unreadable' in reasons['garbage.npz']
    assert 'no metadata' in reasons['someone_elses.npz']
    assert 'unreadable' in reasons['pickled.npz']  # object arrays are never unpickled
    assert 'not an emorec_gesture_template' in reasons['other_format.npz']
    assert 'does not match' in reasons['renamed.npz']
    assert 'not a template file' in reasons['notes.txt'] and 'not a template file' in reasons['subdir']
    assert sorted(p.name for p in tmp_path.iterdir()) == files_before  # nothing deleted


def test_inconsistent_metadata_is_reported(tmp_path):
    store = TemplateStore(tmp_path)
    template = make_template()
    metadata = {'format': 'emorec_gesture_template', 'version': 1, 'id': template.id, 'label': 'Not A Label',
                'created': template.created, 'frames': template.frames, 'fps': 30.0, 'joints': list(JOINTS),
                'source': 'camera'}
    np.savez(store.path_of(template.id), positions=template.positions, visibility=template.visibility,
             metadata=np.array(json.dumps(metadata)))
    templates, skipped = store.load()
    assert templates == [] and 'inconsistent' in skipped[0].reason and 'label' in skipped[0].reason


@pytest.mark.parametrize('label', ['happy', 'not_confident', 'a', 'x' * 32, 'wave2'])
def test_good_labels(label):
    assert validate_label(label) == label


@pytest.mark.parametrize('label', ['', 'Happy', '2fast', 'x' * 33, '../evil', 'a/b', 'a b', 'not-confident',
                                   'héhé', None])
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
        return Template(template_id, 'sad', np.zeros((5, J, 2)), np.ones((5, J)), 30.0, 'camera', created)

    older, newer = at('b_older', '2026-01-01T10:00:00+00:00'), at('a_newer', '2026-01-02T10:00:00+00:00')
    store.save(newer)
    store.save(older)
    assert [t.id for t in store.load()[0]] == ['b_older', 'a_newer']


def test_default_directory_follows_ros_home(monkeypatch, tmp_path):
    monkeypatch.setenv('ROS_HOME', str(tmp_path))
    assert default_directory() == tmp_path / 'emorec' / 'templates'
    monkeypatch.delenv('ROS_HOME')
    assert default_directory() == Path.home() / '.ros' / 'emorec' / 'templates'
