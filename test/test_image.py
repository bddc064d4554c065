"""sensor_msgs/Image <-> numpy conversions, built from real messages (no ROS graph needed)."""
import array

import numpy as np
import pytest
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from emorec_ros.image import MAX_SIDE, CvBridge, ImageError, bgr_to_image, image_to_bgr

BGR = np.random.default_rng(7).integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
GREY = BGR[..., 1].copy()
ALPHA = np.full((5, 7, 1), 200, np.uint8)

#: Encoding -> (pixels as that encoding lays them out, the BGR image expected back).
ENCODED = {
    'bgr8': (BGR, BGR),
    '8UC3': (BGR, BGR),
    'rgb8': (BGR[..., ::-1], BGR),
    'bgra8': (np.concatenate([BGR, ALPHA], axis=-1), BGR),
    'rgba8': (np.concatenate([BGR[..., ::-1], ALPHA], axis=-1), BGR),
    'mono8': (GREY, np.repeat(GREY[..., None], 3, axis=-1)),
    '8UC1': (GREY, np.repeat(GREY[..., None], 3, axis=-1)),
}


def _message(encoding, pixels, padding=0, **fields):
    """An Image of ``pixels`` with ``padding`` extra bytes at the end of each row."""
    height, width = pixels.shape[:2]
    rows = np.ascontiguousarray(pixels).reshape(height, -1)
    rows = np.concatenate([rows, np.full((height, padding), 99, np.uint8)], axis=1)
    values = dict(height=height, width=width, encoding=encoding, step=rows.shape[1],
                  data=array.array('B', rows.tobytes()))
    values.update(fields)
    return Image(**values)


@pytest.mark.parametrize('encoding', ENCODED)
@pytest.mark.parametrize('padding', [0, 5])
def test_supported_encodings_convert_to_bgr(encoding, padding):
    pixels, expected = ENCODED[encoding]
    bgr = image_to_bgr(_message(encoding, pixels, padding))
    assert bgr.dtype == np.uint8 and bgr.shape == (5, 7, 3)
    np.testing.assert_array_equal(bgr, expected)


def test_big_endian_flag_does_not_matter_for_8_bit_images():
    np.testing.assert_array_equal(image_to_bgr(_message('bgr8', BGR, is_bigendian=1)), BGR)


def test_result_is_a_copy_the_caller_may_keep():
    msg = _message('bgr8', BGR)
    bgr = image_to_bgr(msg)
    bgr[:] = 0
    np.testing.assert_array_equal(image_to_bgr(msg), BGR)


def test_round_trip_keeps_pixels_and_header():
    header = Header(frame_id='camera_optical')
    header.stamp.sec, header.stamp.nanosec = 12, 345
    msg = bgr_to_image(BGR, header)
    assert (msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian) == ('bgr8', 5, 7, 21, 0)
    assert msg.header == header
    assert isinstance(msg.data, array.array) and msg.data.typecode == 'B'
    np.testing.assert_array_equal(image_to_bgr(msg), BGR)


def test_round_trip_of_a_non_contiguous_array():
    view = np.zeros((20, 30, 3), np.uint8)[::2, ::3]
    view[...] = BGR[0, 0]
    np.testing.assert_array_equal(image_to_bgr(bgr_to_image(view, Header())), view)


@pytest.mark.parametrize('array_in', [np.zeros((5, 7), np.uint8), np.zeros((5, 7, 3), np.uint16)])
def test_bgr_to_image_refuses_other_arrays(array_in):
    with pytest.raises(ImageError, match='uint8 \\(H, W, 3\\)'):
        bgr_to_image(array_in, Header())


@pytest.mark.parametrize('fields, message', [
    ({'width': 0}, 'size 0x5 is out of range'),
    ({'height': 0, 'data': array.array('B')}, 'size 7x0 is out of range'),
    ({'width': MAX_SIDE + 1}, f'size {MAX_SIDE + 1}x5 is out of range'),
    ({'data': array.array('B', bytes(104))}, 'data has 104 bytes, step \\* height = 21 \\* 5 = 105'),
    ({'step': 22}, 'data has 105 bytes, step \\* height = 22 \\* 5 = 110'),
    ({'step': 20, 'data': array.array('B', bytes(100))}, 'step 20 is less than width \\* channels = 21'),
])
def test_malformed_messages_say_what_is_wrong(fields, message):
    with pytest.raises(ImageError, match=message):
        image_to_bgr(_message('bgr8', BGR, **fields))


@pytest.mark.skipif(CvBridge is not None, reason='cv_bridge converts other encodings')
@pytest.mark.parametrize('encoding', ['16UC1', 'mono16', 'yuv422', 'bayer_rggb8', '32FC1', 'jpeg', ''])
def test_unsupported_encodings_are_named(encoding):
    with pytest.raises(ImageError, match=f"unsupported image encoding '{encoding}': supported are bgr8, "):
        image_to_bgr(_message(encoding, GREY))
