"""Frames from a video file, a folder of images or a camera (no ROS)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')


class SourceError(RuntimeError):
    """The source cannot be opened or read."""


class FrameSource:
    """
    Reads BGR frames in order from ``source``.

    ``source`` is a video file, a folder of images (read in name order) or a camera index
    ("0", "1", ...; V4L2 on Linux). ``start_frame``/``end_frame`` select a part of a file or
    folder (``end_frame`` exclusive, -1 = to the end); ``loop`` starts that part again when it
    ends.
    """

    def __init__(
        self, source: str, start_frame: int = 0, end_frame: int = -1, loop: bool = False
    ) -> None:
        if start_frame < 0 or (end_frame != -1 and end_frame <= start_frame):
            raise SourceError(f'bad frame range [{start_frame}, {end_frame})')
        self.source, self.start_frame = source, start_frame
        self.end_frame, self.loop = end_frame, loop
        self.is_camera = source.isdigit()
        self._files: list[Path] = []
        self._capture: cv2.VideoCapture | None = None
        if self.is_camera:
            self._capture = cv2.VideoCapture(int(source))
            if not self._capture.isOpened():
                raise SourceError(f'camera {source} could not be opened')
            self.fps = self._capture.get(cv2.CAP_PROP_FPS) or 30.0
        elif Path(source).is_dir():
            self._files = sorted(
                p for p in Path(source).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
            )
            if len(self._files) <= start_frame:
                raise SourceError(
                    f'folder {source} has {len(self._files)} images, none from frame {start_frame}'
                )
            self.fps = 30.0
        elif Path(source).is_file():
            self._capture = cv2.VideoCapture(source)
            if not self._capture.isOpened():
                raise SourceError(
                    f'video file {source} could not be opened (not a video OpenCV can decode?)'
                )
            self.fps = self._capture.get(cv2.CAP_PROP_FPS) or 30.0
        else:
            raise SourceError(f'source {source!r} is neither a file, a folder nor a camera index')
        self.index = start_frame  # index of the next frame to read
        self._rewind()

    def _rewind(self) -> None:
        self.index = self.start_frame
        if self._capture is not None and not self.is_camera:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, self.start_frame)

    def _read_one(self) -> np.ndarray | None:
        if self.end_frame != -1 and self.index >= self.end_frame:
            return None
        if self._files:
            if self.index >= len(self._files):
                return None
            frame = cv2.imread(str(self._files[self.index]), cv2.IMREAD_COLOR)
            if frame is None:
                raise SourceError(f'{self._files[self.index]} is not a readable image')
            return frame
        ok, frame = self._capture.read()
        return frame if ok else None

    def read(self) -> tuple[int, np.ndarray] | None:
        """Return the next (frame index, BGR image), or None at the end (never when looping)."""
        frame = self._read_one()
        if frame is None and self.loop and not self.is_camera:
            self._rewind()
            frame = self._read_one()
        if frame is None:
            return None
        index = self.index
        self.index += 1
        return index, frame

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
