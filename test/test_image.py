"""Test sensor_msgs Image and CompressedImage <-> numpy conversions (no ROS graph needed)."""
import array

import cv2
from emorec_ros import image as image_module
from emorec_ros.image import (
    bgr_to_image, COMPRESSED_BYTES_PER_PIXEL, COMPRESSED_EXTRA_BYTES, compressed_to_bgr,
    CvBridge, image_to_bgr, ImageError, MAX_SIDE)
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

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
    """Build an Image of ``pixels`` with ``padding`` extra bytes at the end of each row."""
    height, width = pixels.shape[:2]
    rows = np.ascontiguousarray(pixels).reshape(height, -1)
    rows = np.concatenate([rows, np.full((height, padding), 99, np.uint8)], axis=1)
    values = {'height': height, 'width': width, 'encoding': encoding, 'step': rows.shape[1],
              'data': array.array('B', rows.tobytes())}
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
    fields = (msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian)
    assert fields == ('bgr8', 5, 7, 21, 0)
    assert msg.header == header
    assert isinstance(msg.data, array.array) and msg.data.typecode == 'B'
    np.testing.assert_array_equal(image_to_bgr(msg), BGR)


def test_round_trip_of_a_non_contiguous_array():
    view = np.zeros((20, 30, 3), np.uint8)[::2, ::3]
    view[...] = BGR[0, 0]
    np.testing.assert_array_equal(image_to_bgr(bgr_to_image(view, Header())), view)


@pytest.mark.parametrize('array_in', [np.zeros((5, 7), np.uint8),
                                      np.zeros((5, 7, 3), np.uint16)])
def test_bgr_to_image_refuses_other_arrays(array_in):
    with pytest.raises(ImageError, match='uint8 \\(H, W, 3\\)'):
        bgr_to_image(array_in, Header())


@pytest.mark.parametrize('fields, message', [
    ({'width': 0}, 'size 0x5 is out of range'),
    ({'height': 0, 'data': array.array('B')}, 'size 7x0 is out of range'),
    ({'width': MAX_SIDE + 1}, f'size {MAX_SIDE + 1}x5 is out of range'),
    ({'data': array.array('B', bytes(104))},
     'data has 104 bytes, step \\* height = 21 \\* 5 = 105'),
    ({'step': 22}, 'data has 105 bytes, step \\* height = 22 \\* 5 = 110'),
    ({'step': 20, 'data': array.array('B', bytes(100))},
     'step 20 is less than width \\* channels = 21'),
])
def test_malformed_messages_say_what_is_wrong(fields, message):
    with pytest.raises(ImageError, match=message):
        image_to_bgr(_message('bgr8', BGR, **fields))


@pytest.mark.skipif(CvBridge is not None, reason='cv_bridge converts other encodings')
@pytest.mark.parametrize('encoding',
                         ['16UC1', 'mono16', 'yuv422', 'bayer_rggb8', '32FC1', 'jpeg', ''])
def test_unsupported_encodings_are_named(encoding):
    expected = f"unsupported image encoding '{encoding}': supported are bgr8, "
    with pytest.raises(ImageError, match=expected):
        image_to_bgr(_message(encoding, GREY))


# --- CompressedImage ------------------------------------------------------------------------

#: A smooth colour picture (JPEG keeps it within a few grey levels) with distinct channels.
_ROWS, _COLUMNS = np.mgrid[0:48, 0:64]
PICTURE = np.stack([_ROWS * 5, _COLUMNS * 4, 255 - _ROWS * 2 - _COLUMNS], axis=-1).astype(np.uint8)
PICTURE_GREY = cv2.cvtColor(PICTURE, cv2.COLOR_BGR2GRAY)
MAX_PIXELS = 640 * 480


def _encode(pixels, extension):
    ok, encoded = cv2.imencode(extension, pixels)
    assert ok
    return encoded.tobytes()


def _compressed(image_format, data):
    return CompressedImage(format=image_format, data=array.array('B', data))


def _assert_close(actual, expected, tolerance):
    assert actual.dtype == np.uint8 and actual.shape == expected.shape
    difference = cv2.absdiff(actual, expected).mean()
    assert difference < tolerance, difference


#: (format, what cv2.imencode is given, image expected back, codec extension, mean tolerance).
#: compressed_image_transport encodes colour as bgr8 ('... compressed bgr8'); an older plugin
#: encoded rgb8 images as they were ('rgb8; ... compressed rgb8'), and '<colour>; ...' without
#: 'compressed bgr' means the decoded pixels are RGB.
_GREY_BGR = cv2.cvtColor(PICTURE_GREY, cv2.COLOR_GRAY2BGR)
ROUND_TRIPS = [
    ('jpeg', PICTURE, PICTURE, '.jpg', 3),
    ('jpg', PICTURE, PICTURE, '.jpg', 3),
    ('bgr8; jpeg compressed bgr8', PICTURE, PICTURE, '.jpg', 3),
    ('rgb8; jpeg compressed bgr8', PICTURE, PICTURE, '.jpg', 3),
    ('bgra8; jpeg compressed bgr8', PICTURE, PICTURE, '.jpg', 3),
    ('rgb8; jpeg compressed rgb8', PICTURE[..., ::-1], PICTURE, '.jpg', 3),
    ('mono8; jpeg compressed mono8', PICTURE_GREY, _GREY_BGR, '.jpg', 3),
    ('mono16; jpeg compressed mono8', PICTURE_GREY, _GREY_BGR, '.jpg', 3),
    ('jpeg', PICTURE_GREY, _GREY_BGR, '.jpg', 3),
    ('png', PICTURE, PICTURE, '.png', 0),
    ('bgr8; png compressed bgr8', PICTURE, PICTURE, '.png', 0),
    ('rgb8; png compressed bgr8', PICTURE, PICTURE, '.png', 0),
    ('rgb8; png compressed rgb8', PICTURE[..., ::-1], PICTURE, '.png', 0),
    ('mono8; png compressed ', PICTURE_GREY, _GREY_BGR, '.png', 0),
    ('png', PICTURE_GREY, _GREY_BGR, '.png', 0),
]


@pytest.mark.parametrize('image_format, pixels, expected, extension, tolerance', ROUND_TRIPS)
def test_compressed_round_trips(image_format, pixels, expected, extension, tolerance):
    msg = _compressed(image_format, _encode(pixels, extension))
    _assert_close(compressed_to_bgr(msg, MAX_PIXELS), expected, tolerance + 1e-9)


def test_compressed_data_as_bytes_or_list():
    data = _encode(PICTURE, '.png')
    for value in (data, list(data)):
        msg = CompressedImage(format='png')
        msg.data = value
        np.testing.assert_array_equal(compressed_to_bgr(msg, MAX_PIXELS), PICTURE)


def _jpeg_with_segments_before_the_frame():
    """Return a JPEG whose frame header follows a comment that looks like a frame header."""
    jpeg = _encode(PICTURE, '.jpg')
    decoy = b'\xff\xc0\x00\x11\x08\x7f\xff\x7f\xff\x03'  # a 'frame header' of 32767x32767
    comment = b'\xff\xfe' + (2 + len(decoy)).to_bytes(2, 'big') + decoy
    return jpeg[:2] + comment + b'\xff\xff' + jpeg[2:]  # plus a fill byte before the next one


def test_jpeg_size_comes_from_the_frame_header_not_other_segments():
    msg = _compressed('jpeg', _jpeg_with_segments_before_the_frame())
    _assert_close(compressed_to_bgr(msg, MAX_PIXELS), PICTURE, 3)


@pytest.fixture(scope='module')
def jpeg_4k():
    rows = np.arange(2160, dtype=np.uint8)[:, None]  # uint8 arithmetic wraps around at 256
    columns = np.arange(3840, dtype=np.uint8)[None, :]
    bgr = np.empty((2160, 3840, 3), np.uint8)
    bgr[..., 0], bgr[..., 1], bgr[..., 2] = rows, columns, rows + columns
    return bgr, _encode(bgr, '.jpg')


def test_4k_jpeg_decodes(jpeg_4k):
    bgr, data = jpeg_4k
    decoded = compressed_to_bgr(_compressed('bgr8; jpeg compressed bgr8', data), 3840 * 2160)
    _assert_close(decoded, bgr, 3)


def test_4k_jpeg_over_max_pixels_is_refused(jpeg_4k):
    msg = _compressed('jpeg', jpeg_4k[1])
    with pytest.raises(ImageError, match='3840x2160 has 8294400 pixels, more than max_pixels'):
        compressed_to_bgr(msg, 1920 * 1080)


def _png_claiming(width, height, bit_depth=8):
    """Return the first chunk of a PNG that claims a size, then the real image's other chunks."""
    png = _encode(PICTURE, '.png')
    ihdr = (width.to_bytes(4, 'big') + height.to_bytes(4, 'big') + bytes([bit_depth])
            + png[25:29])
    return png[:16] + ihdr + png[29:]


def _jpeg_claiming(width, height):
    jpeg = bytearray(_encode(PICTURE, '.jpg'))
    frame = jpeg.index(b'\xff\xc0')
    jpeg[frame + 5:frame + 9] = height.to_bytes(2, 'big') + width.to_bytes(2, 'big')
    return bytes(jpeg)


@pytest.mark.parametrize('image_format, data', [
    ('png', _png_claiming(8000, 8000)),
    ('jpeg', _jpeg_claiming(8000, 8000)),
])
def test_decompression_bombs_are_refused_before_decoding(monkeypatch, image_format, data):
    def imdecode(*args):
        raise AssertionError('decoded')

    monkeypatch.setattr(image_module.cv2, 'imdecode', imdecode)
    with pytest.raises(ImageError, match='8000x8000 has 64000000 pixels, more than max_pixels'):
        compressed_to_bgr(_compressed(image_format, data), MAX_PIXELS)


_TOO_MANY_BYTES = COMPRESSED_BYTES_PER_PIXEL * 100 + COMPRESSED_EXTRA_BYTES + 1
_PNG_16 = _encode(PICTURE_GREY.astype(np.uint16) * 256, '.png')


@pytest.mark.parametrize('image_format, data, max_pixels, message', [
    ('jpeg', b'', MAX_PIXELS, "compressed image \\('jpeg'\\) has no data"),
    ('png', bytes(_TOO_MANY_BYTES), 100,
     f'has {_TOO_MANY_BYTES} bytes, more than the {_TOO_MANY_BYTES - 1} allowed for 100 pixels'),
    ('theora', b'x', MAX_PIXELS, "unknown compressed image format 'theora'"),
    ('tiff', b'x', MAX_PIXELS, "unknown compressed image format 'tiff'"),
    ('bgr8; tiff compressed bgr8', b'x', MAX_PIXELS, 'unknown compressed image format'),
    ('', b'x', MAX_PIXELS, "unknown compressed image format ''"),
    ('16UC1; compressedDepth png', b'x', MAX_PIXELS, 'depth images \\(compressedDepth\\)'),
    ('32FC1; compressedDepth', b'x', MAX_PIXELS, 'depth images \\(compressedDepth\\)'),
    ('rgb16; png compressed bgr16', _PNG_16, MAX_PIXELS, '16-bit images are not supported'),
    ('mono16; png compressed ', _PNG_16, MAX_PIXELS, '16-bit images are not supported'),
    ('png', _PNG_16, MAX_PIXELS, 'png image 64x48 has 16-bit samples'),
    ('png', b'not an image', MAX_PIXELS, 'is not a PNG image'),
    ('jpeg', b'not an image', MAX_PIXELS, 'is not a JPEG image'),
    ('jpeg', _encode(PICTURE, '.png'), MAX_PIXELS, 'is not a JPEG image'),
    ('png', _encode(PICTURE, '.jpg'), MAX_PIXELS, 'is not a PNG image'),
    ('jpeg', b'\xff\xd8\xff\xe0\x00\x10JFIF', MAX_PIXELS, 'has no frame header'),
    ('png', _encode(PICTURE, '.png')[:200], MAX_PIXELS, 'png image 64x48 \\(200 bytes\\) does '
     'not decode'),
    ('png', _png_claiming(64, 0), MAX_PIXELS, 'png image size 64x0 is out of range'),
    ('jpeg', _jpeg_claiming(MAX_SIDE + 1, 1), MAX_PIXELS,
     f'jpeg image size {MAX_SIDE + 1}x1 is out of range'),
])
def test_bad_compressed_images_say_what_is_wrong(image_format, data, max_pixels, message):
    with pytest.raises(ImageError, match=message):
        compressed_to_bgr(_compressed(image_format, data), max_pixels)
