"""
Write the labelled face crops that test the packaged model (test/fixtures/faces/).

Crops come from the committed demo clip (media/WolfgangLanger_Pexels.mp4), whose parts are
labelled by eye: crying (sad) in frames 0-230, laughing (happy) from frame 260 on. Each crop is
what the node hands the classifier: the MediaPipe box, squared with the default margin, grey,
resized to 48x48. Run from the repository root; it overwrites the folder.
"""
from __future__ import annotations

from pathlib import Path

import cv2
from emorec_ros.face.detect import face_crop, MediaPipeFaceDetector
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / 'media' / 'WolfgangLanger_Pexels.mp4'
OUT = ROOT / 'test' / 'fixtures' / 'faces'
#: label -> frames; evenly spread over each part, 12 a label.
FRAMES = {
    'sad': np.linspace(10, 220, 12).astype(int),
    'happy': np.linspace(270, 465, 12).astype(int),
}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob('*.png'):
        old.unlink()
    detector = MediaPipeFaceDetector()
    capture = cv2.VideoCapture(str(CLIP))
    for label, frames in FRAMES.items():
        for index in frames:
            capture.set(cv2.CAP_PROP_POS_FRAMES, int(index))
            ok, bgr = capture.read()
            boxes = detector.detect(bgr) if ok else []
            if not boxes:
                print(f'frame {index}: no face, skipped')
                continue
            grey = cv2.cvtColor(face_crop(bgr, boxes[0]), cv2.COLOR_BGR2GRAY)
            cv2.imwrite(
                str(OUT / f'{label}_{index:03d}.png'),
                cv2.resize(grey, (48, 48), interpolation=cv2.INTER_AREA),
            )
    print(f'wrote {len(list(OUT.glob("*.png")))} crops to {OUT.relative_to(ROOT)}')


if __name__ == '__main__':
    main()
