"""
Convert sensor_msgs/Image and CompressedImage messages to numpy BGR arrays, without rclpy.

The 8-bit encodings that cameras publish (bgr8, rgb8, bgra8, rgba8, mono8, 8UC3, 8UC1) are
converted here with numpy and OpenCV. Only other encodings (16-bit, YUV, Bayer, ...) go to ROS 2's
``cv_bridge`` where it is installed (on a robot); it is not installable in our CI, so that branch
is a thin, untested hand-over.

CompressedImage messages as image_transport's ``compressed`` plugin publishes them (8-bit JPEG
and PNG) are decoded with OpenCV, after their width and height have been read from the JPEG or
PNG header and checked, so that a small message claiming a huge image is refused before any
pixel memory is allocated.
"""
from __future__ import annotations

import array
import re

import cv2
import numpy as np
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

try:
    from cv_bridge import CvBridge
except ImportError:
    CvBridge = None

#: Largest width and height accepted, in pixels (guards against corrupt size fields).
MAX_SIDE = 8192

#: Encoding -> (channels, OpenCV conversion to BGR or None when it already is BGR).
_NUMPY_ENCODINGS: dict[str, tuple[int, int | None]] = {
    'bgr8': (3, None),
    '8UC3': (3, None),
    'rgb8': (3, cv2.COLOR_RGB2BGR),
    'bgra8': (4, cv2.COLOR_BGRA2BGR),
    'rgba8': (4, cv2.COLOR_RGBA2BGR),
    'mono8': (1, cv2.COLOR_GRAY2BGR),
    '8UC1': (1, cv2.COLOR_GRAY2BGR),
}

#: Compressed data may hold at most this many bytes per pixel of max_pixels (an incompressible
#: 8-bit RGBA PNG needs a little over 4), plus COMPRESSED_EXTRA_BYTES for headers and metadata.
COMPRESSED_BYTES_PER_PIXEL = 4
COMPRESSED_EXTRA_BYTES = 1 << 20

#: Encodings that sensor_msgs/image_encodings calls colour: compressed_image_transport swaps
#: their channels back unless the format says the pixels were compressed as bgr.
_COLOUR_ENCODINGS = frozenset(
    f'{order}{bits}' for order in ('rgb', 'bgr', 'rgba', 'bgra') for bits in (8, 16))

#: compressed_image_transport's format: '<encoding>; <codec> compressed <encoding compressed>'.
#: The part after 'compressed' is empty for grey PNG images.
_PLUGIN_FORMAT = re.compile(
    r'(?P<encoding>[^;]*);\s*(?P<codec>\S+)\s+compressed\s*(?P<pixels>\S*)')

#: Format names of the older plugin (and of many drivers), which say only the codec.
_CODEC_NAMES = {'jpeg': 'jpeg', 'jpg': 'jpeg', 'png': 'png'}

_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
_JPEG_SOI = b'\xff\xd8'
#: JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic): they hold the size.
_JPEG_SOF = frozenset(
    {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
#: JPEG markers without a length field: TEM, RST0-7, SOI.
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD9)})
_JPEG_SOS, _JPEG_EOI = 0xDA, 0xD9


class ImageError(ValueError):
    """An Image message that is malformed or in an encoding we cannot convert."""


def image_to_bgr(msg: Image) -> np.ndarray:
    """
    Return the image as a uint8 (height, width, 3) BGR array that the caller owns (a copy).

    Checks the size fields against the data (``step`` >= width * channels,
    ``len(data) == step * height``, 0 < width, height <= MAX_SIDE) and raises ImageError, saying
    what is wrong, for a malformed message or an encoding that can not be converted.
    ``is_bigendian`` is ignored: it does not matter for 8-bit encodings.
    """
    height, width, step, encoding = msg.height, msg.width, msg.step, msg.encoding
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise ImageError(f'image size {width}x{height} is out of range '
                         f'(1 to {MAX_SIDE} pixels a side)')
    # A received message's data is an array.array('B'): frombuffer shares its memory, no copy.
    data = np.frombuffer(msg.data, dtype=np.uint8)
    if data.size != step * height:
        raise ImageError(f'{encoding} image {width}x{height}: data has {data.size} bytes, '
                         f'step * height = {step} * {height} = {step * height}')
    if encoding not in _NUMPY_ENCODINGS:
        return _bridge_to_bgr(msg)
    channels, conversion = _NUMPY_ENCODINGS[encoding]
    if step < width * channels:
        raise ImageError(f'{encoding} image {width}x{height}: step {step} is less than '
                         f'width * channels = {width * channels} bytes')
    pixels = data.reshape(height, step)[:, :width * channels].reshape(height, width, channels)
    return pixels.copy() if conversion is None else cv2.cvtColor(pixels, conversion)


def _bridge_to_bgr(msg: Image) -> np.ndarray:
    """Convert encodings that the numpy path does not know with cv_bridge, where installed."""
    supported = ', '.join(_NUMPY_ENCODINGS)
    if CvBridge is None:
        raise ImageError(f'unsupported image encoding {msg.encoding!r}: supported are '
                         f'{supported}; others (16UC1, mono16, yuv422, bayer_rggb8, ...) need '
                         'ROS 2 cv_bridge, not installed')
    try:
        return np.array(CvBridge().imgmsg_to_cv2(msg, desired_encoding='bgr8'), dtype=np.uint8)
    except Exception as e:  # cv_bridge raises CvBridgeError, cv2.error, TypeError, ...
        raise ImageError(f'cv_bridge could not convert {msg.encoding!r} to bgr8: {e}') from e


def bgr_to_image(bgr: np.ndarray, header: Header) -> Image:
    """Return a bgr8 Image message (step = width * 3, no padding) of a uint8 (H, W, 3) array."""
    if bgr.dtype != np.uint8 or bgr.ndim != 3 or bgr.shape[2] != 3:
        raise ImageError(f'expected a uint8 (H, W, 3) BGR array, got {bgr.dtype} {bgr.shape}')
    height, width = bgr.shape[:2]
    msg = Image(header=header, height=height, width=width, encoding='bgr8', is_bigendian=0,
                step=width * 3)
    data = array.array('B')
    data.frombytes(np.ascontiguousarray(bgr).data)
    # Set after construction: the constructor copies data element by element (1-2 ms for
    # 640x480), the setter takes an array.array('B') as it is, without checking each byte.
    msg.data = data
    return msg


def compressed_to_bgr(msg: CompressedImage, max_pixels: int) -> np.ndarray:
    """
    Decode a JPEG or PNG CompressedImage to a uint8 (height, width, 3) BGR array.

    ``msg.format`` is read as image_transport's ``compressed`` plugin writes it: 'jpeg' or 'png'
    alone (older plugins and many drivers: the decoded pixels are BGR or grey), or
    '<encoding>; <jpeg|png> compressed <pixels>' such as 'rgb8; jpeg compressed bgr8' or
    'mono8; png compressed ' (for a colour encoding the decoded pixels are RGB unless <pixels>
    says bgr, as the plugin's subscriber assumes). Grey images come back as BGR.

    Raises ImageError, saying what is wrong, for empty data or data larger than
    ``COMPRESSED_BYTES_PER_PIXEL * max_pixels + COMPRESSED_EXTRA_BYTES``, a format other than 8-bit
    JPEG or PNG (compressedDepth, 16-bit PNG, tiff, theora, ...), data whose header does not match
    the format or give a size, an image larger than ``max_pixels`` pixels or MAX_SIDE pixels a
    side (read from the header, before decoding), and data that OpenCV cannot decode.
    """
    if max_pixels < 1:
        raise ValueError(f'max_pixels must be positive, got {max_pixels}')
    codec, swap_rb = _parse_format(msg.format)
    try:
        data = np.frombuffer(msg.data, dtype=np.uint8)
    except TypeError:  # a list of ints, as a message built by hand may hold
        data = np.asarray(msg.data, dtype=np.uint8)
    max_bytes = COMPRESSED_BYTES_PER_PIXEL * max_pixels + COMPRESSED_EXTRA_BYTES
    if data.size == 0:
        raise ImageError(f'compressed image ({msg.format!r}) has no data')
    if data.size > max_bytes:
        raise ImageError(f'compressed image ({msg.format!r}) has {data.size} bytes, more than '
                         f'the {max_bytes} allowed for {max_pixels} pixels')
    width, height = (_png_size if codec == 'png' else _jpeg_size)(memoryview(data))
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise ImageError(f'{codec} image size {width}x{height} is out of range '
                         f'(1 to {MAX_SIDE} pixels a side)')
    if width * height > max_pixels:
        raise ImageError(f'{codec} image {width}x{height} has {width * height} pixels, more '
                         f'than max_pixels = {max_pixels}')
    try:
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    except cv2.error as e:
        raise ImageError(f'{codec} image {width}x{height} does not decode: {e}') from e
    if bgr is None or bgr.shape != (height, width, 3):
        raise ImageError(f'{codec} image {width}x{height} ({data.size} bytes) does not decode')
    return cv2.cvtColor(bgr, cv2.COLOR_RGB2BGR) if swap_rb else bgr


def _parse_format(image_format: str) -> tuple[str, bool]:
    """Return the codec ('jpeg' or 'png') and whether red and blue need to be swapped."""
    name = image_format.strip()
    if name.lower() in _CODEC_NAMES:
        return _CODEC_NAMES[name.lower()], False
    if 'compresseddepth' in name.lower():
        raise ImageError(f'compressed image format {image_format!r}: depth images '
                         '(compressedDepth) are not supported')
    match = _PLUGIN_FORMAT.fullmatch(name)
    if match is None or match['codec'].lower() not in _CODEC_NAMES:
        raise ImageError(f'unknown compressed image format {image_format!r}: supported are '
                         "'jpeg', 'png' and '<encoding>; <jpeg|png> compressed <encoding>'")
    codec = _CODEC_NAMES[match['codec'].lower()]
    encoding, pixels = match['encoding'].strip(), match['pixels']
    if pixels.endswith('16') or codec == 'png' and '16' in encoding:
        raise ImageError(f'compressed image format {image_format!r}: 16-bit images are not '
                         'supported')
    return codec, encoding in _COLOUR_ENCODINGS and not pixels.startswith('bgr')


def _png_size(data: memoryview) -> tuple[int, int]:
    """Return (width, height) from a PNG's IHDR chunk; 8-bit samples only."""
    if len(data) < 33 or data[:8] != _PNG_SIGNATURE or data[12:16] != b'IHDR':
        raise ImageError(f'data ({len(data)} bytes) is not a PNG image: no PNG signature and '
                         'IHDR chunk')
    width, height = int.from_bytes(data[16:20], 'big'), int.from_bytes(data[20:24], 'big')
    bit_depth = data[24]
    if bit_depth == 16:
        raise ImageError(f'png image {width}x{height} has 16-bit samples, not supported')
    return width, height


def _jpeg_size(data: memoryview) -> tuple[int, int]:
    """Return (width, height) from a JPEG's start-of-frame segment; 8-bit samples only."""
    if data[:2] != _JPEG_SOI:
        raise ImageError(f'data ({len(data)} bytes) is not a JPEG image: no start-of-image '
                         'marker')
    position, end = 2, len(data)
    while position < end:
        if data[position] != 0xFF:  # stray bytes between segments: libjpeg skips them too
            position += 1
            continue
        while position < end and data[position] == 0xFF:  # fill bytes
            position += 1
        if position >= end:
            break
        marker = data[position]
        position += 1
        if marker in _JPEG_STANDALONE:
            continue
        if marker in (_JPEG_SOS, _JPEG_EOI):
            break  # image data (or its end) before any frame header
        if position + 2 > end:
            break
        length = int.from_bytes(data[position:position + 2], 'big')
        if length < 2:
            raise ImageError(f'jpeg data is corrupt: segment length {length} at byte {position}')
        if marker in _JPEG_SOF:
            if length < 8 or position + 7 > end:
                break
            precision = data[position + 2]
            height = int.from_bytes(data[position + 3:position + 5], 'big')
            width = int.from_bytes(data[position + 5:position + 7], 'big')
            if precision != 8:
                raise ImageError(f'jpeg image {width}x{height} has {precision}-bit samples, '
                                 'only 8-bit is supported')
            return width, height
        position += length
    raise ImageError(f'jpeg data ({len(data)} bytes) has no frame header giving the image size')
