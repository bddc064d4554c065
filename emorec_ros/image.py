"""sensor_msgs/Image <-> numpy BGR arrays, without rclpy.

The 8-bit encodings that cameras publish (bgr8, rgb8, bgra8, rgba8, mono8, 8UC3, 8UC1) are
converted here with numpy and OpenCV. Only other encodings (16-bit, YUV, Bayer, ...) go to ROS 2's
``cv_bridge`` where it is installed (on a robot); it is not installable in our CI, so that branch
is a thin, untested hand-over.
"""
from __future__ import annotations

import array

import cv2
import numpy as np
from sensor_msgs.msg import Image
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


class ImageError(ValueError):
    """An Image message that is malformed or in an encoding we cannot convert."""


def image_to_bgr(msg: Image) -> np.ndarray:
    """The image as a uint8 (height, width, 3) BGR array that the caller owns (a copy).

    Checks the size fields against the data (``step`` >= width * channels,
    ``len(data) == step * height``, 0 < width, height <= MAX_SIDE) and raises ImageError, saying
    what is wrong, for a malformed message or an encoding that can not be converted.
    ``is_bigendian`` is ignored: it does not matter for 8-bit encodings.
    """
    height, width, step, encoding = msg.height, msg.width, msg.step, msg.encoding
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise ImageError(f'image size {width}x{height} is out of range (1 to {MAX_SIDE} pixels a side)')
    # A received message's data is an array.array('B'): frombuffer shares its memory, no copy.
    data = np.frombuffer(msg.data, dtype=np.uint8)
    if data.size != step * height:
        raise ImageError(f'{encoding} image {width}x{height}: data has {data.size} bytes, '
                         f'step * height = {step} * {height} = {step * height}')
    if encoding not in _NUMPY_ENCODINGS:
        return _bridge_to_bgr(msg)
    channels, conversion = _NUMPY_ENCODINGS[encoding]
    if step < width * channels:
        raise ImageError(f'{encoding} image {width}x{height}: step {step} is less than width * channels = '
                         f'{width * channels} bytes')
    pixels = data.reshape(height, step)[:, :width * channels].reshape(height, width, channels)
    return pixels.copy() if conversion is None else cv2.cvtColor(pixels, conversion)


def _bridge_to_bgr(msg: Image) -> np.ndarray:
    """Encodings the numpy path does not know, through cv_bridge where it is installed."""
    supported = ', '.join(_NUMPY_ENCODINGS)
    if CvBridge is None:
        raise ImageError(f'unsupported image encoding {msg.encoding!r}: supported are {supported}; '
                         f'others (16UC1, mono16, yuv422, bayer_rggb8, ...) need ROS 2 cv_bridge, not installed')
    try:
        return np.array(CvBridge().imgmsg_to_cv2(msg, desired_encoding='bgr8'), dtype=np.uint8)
    except Exception as e:  # cv_bridge raises CvBridgeError, cv2.error, TypeError, ... for bad input
        raise ImageError(f'cv_bridge could not convert {msg.encoding!r} to bgr8: {e}') from e


def bgr_to_image(bgr: np.ndarray, header: Header) -> Image:
    """A bgr8 Image message (step = width * 3, no padding) from a uint8 (H, W, 3) BGR array."""
    if bgr.dtype != np.uint8 or bgr.ndim != 3 or bgr.shape[2] != 3:
        raise ImageError(f'expected a uint8 (H, W, 3) BGR array, got {bgr.dtype} {bgr.shape}')
    height, width = bgr.shape[:2]
    data = array.array('B')
    data.frombytes(np.ascontiguousarray(bgr).data)  # array.array, so the message does not re-check each byte
    return Image(header=header, height=height, width=width, encoding='bgr8', is_bigendian=0,
                 step=width * 3, data=data)
