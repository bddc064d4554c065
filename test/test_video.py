"""FrameSource over the committed clip and over a folder of images."""
from __future__ import annotations

import cv2
from emorec_ros.video import FrameSource, SourceError
import numpy as np
import pytest


def test_clip_part_in_order_then_end(media):
    source = FrameSource(str(media / 'WolfgangLanger_Pexels.mp4'), start_frame=100, end_frame=103)
    assert source.fps == pytest.approx(23.98, abs=0.05)
    frames = [source.read() for _ in range(4)]
    assert [f[0] for f in frames[:3]] == [100, 101, 102] and frames[3] is None
    assert frames[0][1].shape == (360, 640, 3) and frames[0][1].dtype == np.uint8
    source.close()


def test_loop_starts_the_part_again(media):
    source = FrameSource(
        str(media / 'WolfgangLanger_Pexels.mp4'), start_frame=5, end_frame=7, loop=True
    )
    first = [source.read() for _ in range(5)]
    assert [f[0] for f in first] == [5, 6, 5, 6, 5]
    assert np.array_equal(first[0][1], first[2][1])
    source.close()


def test_image_folder_in_name_order(tmp_path):
    for i, value in enumerate((30, 10, 20)):
        cv2.imwrite(str(tmp_path / f'img_{i}.png'), np.full((8, 12, 3), value, np.uint8))
    (tmp_path / 'notes.txt').write_text('not an image')
    source = FrameSource(str(tmp_path))
    values = [int(source.read()[1][0, 0, 0]) for _ in range(3)]
    assert values == [30, 10, 20] and source.read() is None


def test_bad_sources_are_reported(tmp_path):
    (tmp_path / 'clip.mp4').write_bytes(b'not a video')
    with pytest.raises(SourceError, match='could not be opened'):
        FrameSource(str(tmp_path / 'clip.mp4'))
    with pytest.raises(SourceError, match='neither a file'):
        FrameSource(str(tmp_path / 'missing.mp4'))
    with pytest.raises(SourceError, match='bad frame range'):
        FrameSource(str(tmp_path), start_frame=5, end_frame=2)
    with pytest.raises(SourceError, match='none from frame'):
        FrameSource(str(tmp_path))  # a folder without images
