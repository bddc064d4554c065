"""
The starter-template importer on the Bandai-Namco dataset, and its one-line errors.

The import itself needs ../shared/data/bandai_motion and is skipped without it.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
import subprocess
import sys

from emorec_ros.cli.import_templates import main
from emorec_ros.gesture.bandai import ARCHIVE
from emorec_ros.gesture.camera import front_view
from emorec_ros.gesture.mocap import find_clips, load_clips
from emorec_ros.gesture.store import TemplateStore
import numpy as np
import pytest

BANDAI = Path(__file__).parents[2] / 'shared' / 'data' / 'bandai_motion'


@pytest.mark.skipif(not (BANDAI / ARCHIVE).exists(), reason=f'{BANDAI} not reachable')
def test_imports_labelled_templates_of_different_movements_and_states_the_licence(tmp_path,
                                                                                  capsys):
    out = tmp_path / 'templates'
    argv = ['--data', str(BANDAI), '--out', str(out), '--styles', 'angry', 'normal',
            '--per-style', '2', '--seconds', '2', '--movements', 'bow', 'walk', 'run']
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert 'CC BY-NC 4.0' in printed and 'Bandai Namco Research Inc.' in printed
    assert 'non-commercial' in printed
    templates, skipped = TemplateStore(out).load()
    assert skipped == []
    assert sorted(t.source for t in templates) == [
        'bandai_ds1/dataset-1_bow_angry_001', 'bandai_ds1/dataset-1_bow_normal_001',
        'bandai_ds1/dataset-1_walk_angry_001', 'bandai_ds1/dataset-1_walk_normal_001']
    assert Counter(t.label for t in templates) == {'angry': 2, 'neutral': 2}
    assert all(t.frames == 60 and t.fps == pytest.approx(30.0, rel=1e-4) for t in templates)  # 2 s
    for template in templates:
        assert f'wrote {template.id}.npz: "{template.label}", 60 frames' in printed
    # The middle two seconds of the take as the virtual camera films it.
    walk = next(t for t in templates if t.source.endswith('walk_angry_001'))
    [clip] = load_clips(find_clips([BANDAI / ARCHIVE], 'dataset-1_walk_angry_001'))
    pixels, _ = front_view(clip.world)
    start = (len(clip.world) - 60) // 2
    np.testing.assert_allclose(walk.positions, pixels[start:start + 60], atol=1e-3)
    assert walk.visibility.all()
    # Importing again keeps what is there.
    assert main(argv) == 0
    assert capsys.readouterr().out.count('kept ') == 4
    assert len(TemplateStore(out).load()[0]) == 4


@pytest.mark.parametrize('arguments, message', [
    (['--styles', 'angry', 'joyful'], 'error: unknown style joyful: use angry, happy, sad, '),
    (['--movements', 'jump'], 'error: unknown movement jump: use walk, '),
    (['--seconds', '0'], 'error: --seconds 0 is outside (0, 600]'),
    (['--per-style', '3', '--movements', 'walk'], 'error: --per-style 3 is outside 1..1'),
])
def test_bad_arguments_are_one_line_with_status_2(arguments, message, tmp_path, capsys):
    assert main(['--data', str(tmp_path), '--out', str(tmp_path / 't'), *arguments]) == 2
    error = capsys.readouterr().err
    assert error.startswith(message) and error.count('\n') == 1, error
    assert not (tmp_path / 't').exists()


@pytest.mark.skipif(not (BANDAI / ARCHIVE).exists(), reason=f'{BANDAI} not reachable')
def test_a_folder_that_cannot_be_written_is_one_line_with_status_2(tmp_path, capsys):
    (tmp_path / 'file').write_text('not a folder')
    assert main(['--data', str(BANDAI), '--out', str(tmp_path / 'file' / 'templates')]) == 2
    error = capsys.readouterr().err
    assert error.startswith('error: template folder ') and error.count('\n') == 1, error


def test_a_missing_archive_exits_with_status_2_and_no_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, '-m', 'emorec_ros.cli.import_templates', '--data', str(tmp_path),
         '--out', str(tmp_path / 't')], capture_output=True, text=True, timeout=120,
        cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr == f'error: no {ARCHIVE} in {tmp_path} (--data: the folder holding it)\n'
    assert result.stdout == '' and not (tmp_path / 't').exists()
