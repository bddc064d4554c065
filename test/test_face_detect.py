"""Face detectors on real images, and the face crop the classifier gets."""
from pathlib import Path
import shutil
import subprocess
import sys

import cv2
from emorec_ros.face import detect
from emorec_ros.face.detect import (clipped_box, DETECTOR_NAMES, face_crop, FaceBox,
                                    find_haar_cascade, HAAR_CASCADE, HaarFaceDetector, iou,
                                    make_detector)
import numpy as np
import pytest

#: Where the woman's face is (checked by eye on the short-range MediaPipe boxes).
PEXELS_FACES = {300: FaceBox(329, 75, 240, 240, 1.0), 400: FaceBox(326, 118, 208, 208, 1.0)}
ASTRONAUT_FACE = FaceBox(178, 83, 95, 95, 1.0)


@pytest.fixture(scope='module', params=['blazeface', 'mediapipe', 'mediapipe_full'])
def mediapipe_detector(request):
    detector = make_detector(request.param, 0.5)
    yield detector
    detector.close()


@pytest.mark.parametrize('index', sorted(PEXELS_FACES))
def test_mediapipe_finds_the_one_face_in_the_clip(mediapipe_detector, pexels_frame, index):
    boxes = mediapipe_detector.detect(pexels_frame(index))
    assert len(boxes) == 1
    assert iou(boxes[0], PEXELS_FACES[index]) > 0.6, boxes[0]
    assert 0.5 <= boxes[0].score <= 1.0


def test_mediapipe_finds_the_astronaut(mediapipe_detector, astronaut_bgr):
    boxes = mediapipe_detector.detect(astronaut_bgr)
    assert len(boxes) == 1
    assert iou(boxes[0], ASTRONAUT_FACE) > 0.6, boxes[0]


def test_blazeface_decodes_the_model_as_mediapipes_graph_does(pexels_frame, astronaut_bgr):
    """The same faces, scores, boxes and eye line as MediaPipe's graph for the same model."""
    ours, theirs = make_detector('blazeface'), make_detector('mediapipe')
    images = [pexels_frame(i) for i in range(0, 472, 30)] + [astronaut_bgr]
    for image in images:
        found, expected = ours.detect(image), theirs.detect(image)
        assert len(found) == len(expected) == 1, (found, expected)
        a, b = found[0], expected[0]
        assert iou(a, b) > 0.95 and abs(a.score - b.score) < 0.01, (a, b)
        assert abs(a.roll - b.roll) < 1.0, (a, b)
    ours.close()
    theirs.close()


def _assert_haar_finds_the_astronaut(detector, astronaut_bgr):
    boxes = detector.detect(astronaut_bgr)
    detector.close()
    assert any(iou(box, ASTRONAUT_FACE) > 0.3 for box in boxes), boxes
    assert all(0.5 <= box.score < 1.0 for box in boxes)
    assert [box.score for box in boxes] == sorted((box.score for box in boxes), reverse=True)


@pytest.mark.parametrize('name', ['blazeface', 'mediapipe'])
def test_mediapipe_drops_faces_below_min_confidence(astronaut_bgr, name):
    strict = make_detector(name, min_confidence=0.999)  # the face scores about 0.9
    try:
        assert strict.detect(astronaut_bgr) == []
        strict.min_confidence = 0.5
        assert len(strict.detect(astronaut_bgr)) == 1
    finally:
        strict.close()


def test_haar_finds_the_astronaut_where_mediapipe_does(astronaut_bgr):
    detector = HaarFaceDetector()
    if hasattr(cv2, 'data'):  # the pip wheels; a distribution's OpenCV has it in /usr/share
        assert detector.cascade_path == Path(cv2.data.haarcascades) / HAAR_CASCADE
    _assert_haar_finds_the_astronaut(detector, astronaut_bgr)


def test_haar_without_cv2_data_uses_the_system_cascades(monkeypatch, tmp_path, astronaut_bgr):
    """A distribution's OpenCV (Debian's python3-opencv) has no cv2.data; opencv-data has them."""
    system_dir = tmp_path / 'usr/share/opencv4/haarcascades'
    system_dir.mkdir(parents=True)
    shutil.copy(find_haar_cascade(), system_dir)
    monkeypatch.delattr(cv2, 'data', raising=False)
    monkeypatch.setattr(detect, 'HAAR_CASCADE_DIRS', (str(tmp_path / 'empty'), str(system_dir)))
    assert find_haar_cascade() == system_dir / HAAR_CASCADE
    detector = make_detector('haar', 0.0)
    assert detector.cascade_path == system_dir / HAAR_CASCADE
    _assert_haar_finds_the_astronaut(detector, astronaut_bgr)


def test_haar_without_any_cascade_says_where_it_looked_and_what_to_fix(monkeypatch, tmp_path):
    monkeypatch.delattr(cv2, 'data', raising=False)
    folders = (str(tmp_path / 'opencv4'), str(tmp_path / 'opencv'))
    monkeypatch.setattr(detect, 'HAAR_CASCADE_DIRS', folders)
    with pytest.raises(ValueError) as error:
        make_detector('haar', 0.5)
    message = str(error.value)
    for text in ("detector 'haar'", HAAR_CASCADE, 'cv2.data (not in this OpenCV)', *folders,
                 'apt-get install opencv-data', 'pip install opencv-contrib-python'):
        assert text in message, message


def test_haar_with_an_unreadable_cascade(tmp_path):
    broken = tmp_path / HAAR_CASCADE
    broken.write_text('<opencv_storage>not a cascade</opencv_storage>')
    with pytest.raises(ValueError, match='could not load the Haar cascade .*' + HAAR_CASCADE):
        HaarFaceDetector(cascade_path=broken)


@pytest.mark.parametrize('name', DETECTOR_NAMES)
def test_no_face_in_a_black_image(name):
    detector = make_detector(name, 0.5)
    assert detector.detect(np.zeros((480, 640, 3), np.uint8)) == []
    detector.close()


def test_unknown_detector_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="'nope'.*mediapipe, mediapipe_full, haar"):
        make_detector('nope', 0.5)


@pytest.mark.parametrize('image', [np.zeros((48, 48), np.uint8),
                                   np.zeros((48, 48, 3), np.float32),
                                   np.zeros((48, 48, 4), np.uint8)])
def test_detect_rejects_images_that_are_not_bgr8(image):
    with pytest.raises(ValueError, match='uint8 \\(H, W, 3\\)'):
        HaarFaceDetector().detect(image)


def test_mediapipe_import_leaves_tensorflow_out():
    code = ('import sys; from emorec_ros.face.detect import MediaPipeFaceDetector; '
            'MediaPipeFaceDetector().close(); '
            'assert "tensorflow" not in sys.modules, "tensorflow was imported"')
    result = subprocess.run([sys.executable, '-c', code], cwd=Path(__file__).parent.parent,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_iou():
    a = FaceBox(0, 0, 10, 10, 1.0)
    assert iou(a, a) == 1.0
    assert iou(a, FaceBox(10, 0, 10, 10, 1.0)) == 0.0
    assert iou(a, FaceBox(5, 0, 10, 10, 1.0)) == pytest.approx(50 / 150)
    assert iou(a, FaceBox(0, 0, 0, 0, 1.0)) == 0.0


def test_clipped_box_stays_inside_the_image():
    assert clipped_box(-5.4, 10.6, 30, 500, 0.9, (20, 100)) == FaceBox(0, 11, 20, 89, 0.9)
    assert clipped_box(25, 0, 40, 10, 0.9, (20, 100)) is None


def _gradient_image(height=100, width=120):
    """Each pixel holds its own coordinates: channel 0 = row, channel 1 = column."""
    rows, cols = np.mgrid[0:height, 0:width]
    return np.stack([rows, cols, np.zeros_like(rows)], axis=-1).astype(np.uint8)


def test_face_crop_inside_the_image_is_the_square_around_the_box():
    image = _gradient_image()
    crop = face_crop(image, FaceBox(40, 30, 20, 30, 1.0), margin=0.2)  # side 36, centre (50, 45)
    assert crop.shape == (36, 36, 3)
    np.testing.assert_array_equal(crop, image[27:63, 32:68])


def test_face_crop_pads_by_repeating_the_border():
    image = _gradient_image()
    # side 30, from (-5, 75) to (25, 105)
    crop = face_crop(image, FaceBox(0, 80, 20, 20, 1.0), margin=0.5)
    assert crop.shape == (30, 30, 3)
    # left of column 0
    np.testing.assert_array_equal(crop[:, :5], np.repeat(crop[:, 5:6], 5, axis=1))
    np.testing.assert_array_equal(crop[25:], np.repeat(crop[24:25], 5, axis=0))  # below row 99
    np.testing.assert_array_equal(crop[:25, 5:], image[75:, :25])


def test_face_crop_of_a_grey_image_and_bad_input():
    grey = _gradient_image()[..., 1]
    assert face_crop(grey, FaceBox(100, 0, 20, 10, 1.0), margin=0.0).shape == (20, 20)
    with pytest.raises(ValueError, match='margin'):
        face_crop(grey, FaceBox(0, 0, 10, 10, 1.0), margin=-0.1)
    with pytest.raises(ValueError, match='outside'):
        face_crop(grey, FaceBox(500, 0, 10, 10, 1.0))


@pytest.mark.parametrize('turn', [-25.0, 25.0])
def test_a_tilted_face_comes_out_level(mediapipe_detector, astronaut_bgr, turn):
    # The astronaut turned by `turn` degrees (counter-clockwise on screen) about her face: the
    # detector measures the roll, and the levelled crop matches the crop of the upright image.
    upright = mediapipe_detector.detect(astronaut_bgr)[0]
    turned = cv2.warpAffine(astronaut_bgr, cv2.getRotationMatrix2D(upright.center, turn, 1.0),
                            astronaut_bgr.shape[1::-1], borderMode=cv2.BORDER_REPLICATE)
    box = mediapipe_detector.detect(turned)[0]
    assert abs(upright.roll) < 8
    # BlazeFace's eye keypoints measure the roll to within about 10 degrees.
    assert box.roll - upright.roll == pytest.approx(-turn, abs=12)

    def grey_48(crop):
        return cv2.resize(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY), (48, 48),
                          interpolation=cv2.INTER_AREA).astype(float).ravel()

    reference = grey_48(face_crop(astronaut_bgr, upright))
    level = np.corrcoef(reference, grey_48(face_crop(turned, box)))[0, 1]
    tilted = np.corrcoef(reference, grey_48(face_crop(turned, box, level=False)))[0, 1]
    # Measured: 0.63-0.78 levelled against 0.26-0.29 left tilted.
    assert level > 0.55 and level > tilted + 0.25, (level, tilted)
