"""``python -m emorec_ros.cli.explain_face``: class activation maps of an image file's faces."""
from __future__ import annotations

from pathlib import Path

import cv2
from emorec_ros.cli import explain_face
import numpy as np


def test_faces_of_a_photo_are_boxed_and_painted(media: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / 'explained.png'
    assert explain_face.main([str(media / 'astronaut.png'), '--out', str(out)]) == 0
    printed = capsys.readouterr().out
    assert 'face1 at (' in printed and f'wrote {out}' in printed
    source, painted = cv2.imread(str(media / 'astronaut.png')), cv2.imread(str(out))
    assert painted.shape == source.shape
    # Her face (box about x 178-273, y 83-178) is painted over; the top-left corner is not.
    face = (slice(100, 170), slice(190, 260))
    assert np.abs(painted[face].astype(int) - source[face]).mean() > 10
    np.testing.assert_array_equal(painted[:60, :60], source[:60, :60])


def test_a_face_crop_given_whole(fixtures: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / 'crop.png'
    face = sorted((fixtures / 'faces').glob('happy_*.png'))[0]
    assert explain_face.main([str(face), '--out', str(out), '--whole-image']) == 0
    assert 'face at (0, 0)' in capsys.readouterr().out
    assert cv2.imread(str(out)).shape[0] >= explain_face.WHOLE_IMAGE_SIDE


def test_no_face_and_bad_files_are_told(tmp_path: Path, capsys) -> None:
    black = tmp_path / 'black.png'
    cv2.imwrite(str(black), np.zeros((120, 160, 3), np.uint8))
    assert explain_face.main([str(black), '--out', str(tmp_path / 'o.png')]) == 0
    assert 'no face found' in capsys.readouterr().out
    broken = tmp_path / 'broken.jpg'
    broken.write_bytes(b'not a jpeg')
    assert explain_face.main([str(broken), '--out', str(tmp_path / 'o.png')]) == 1
    assert 'not an image' in capsys.readouterr().err
    assert explain_face.main([str(black), '--out', str(tmp_path / 'o.png'),
                              '--model', str(tmp_path / 'none.tflite')]) == 1
    assert 'not found' in capsys.readouterr().err
