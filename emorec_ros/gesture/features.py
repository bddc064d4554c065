"""
From a window of skeletons to what the classifier compares.

A feature sequence for DTW, a kinematics vector (how much and how jerkily the body moves) and a
posture vector (where the hands, elbows and head are relative to the shoulders).

A window is positions (T, J, D) with visibilities (T, J), in any units (pixels, metres), at a
known frame rate. Everything is computed on the window resampled to FEATURE_RATE_HZ, so windows
recorded at different frame rates compare, and in normalised units (``skeleton.normalise``: origin
at the shoulder midpoint of each frame, one unit = the window's torso length), so the distance to
the camera and the person's size drop out.
"""
from __future__ import annotations

from dataclasses import dataclass

from emorec_ros.gesture.skeleton import (body_scale, drop_non_finite, JOINT_INDEX, normalise,
                                         present_joints)
import numpy as np

#: Rate of the feature sequences. Emotional body motion is slow (gait cycles ~1-2 Hz); 15 Hz
#: keeps it and makes DTW four times cheaper than 30 Hz.
FEATURE_RATE_HZ = 15.0
#: Velocities enter the DTW sequence as the displacement over this many seconds (torso lengths),
#: so that a wrist swinging at 2-3 torso lengths per second weighs about as much as a posture
#: difference of a quarter torso.
VELOCITY_SPAN_S = 0.1
#: Weight of the per-joint log speeds in the DTW sequence.
LOG_SPEED_WEIGHT = 0.3
#: Offset inside those logarithms, torso lengths per second. MediaPipe's landmarks jitter: on the
#: demo clip (a woman filmed from the chest up) the head and shoulders move 0.05 torso lengths per
#: second (median) and 0.3 (p90) relative to the shoulders, so with a small offset the log of that
#: noise was the largest term of the sequence. With this one, speeds up to a walk's wrists (median
#: 1.2-1.6 torso lengths per second in the Bandai-Namco takes) count nearly linearly, and running
#: or dashing (2.4-3.7) are compressed. Chosen with the node's camera test and the
#: leave-one-movement-out evaluation (4 classes: 75.0% with SPEED_FLOOR here, 81.8% with this, at a
#: template stride of 0.5 s).
SEQUENCE_SPEED_FLOOR = 2.0
#: Offsets inside the logarithms, in torso lengths per second (speed), per second squared
#: (acceleration) and torso lengths (bounce): about the noise level of each.
SPEED_FLOOR, ACCELERATION_FLOOR, BOUNCE_FLOOR = 0.05, 1.0, 0.01
#: Percentile of the per-frame torso lengths that scales a window: a high one, because bending
#: forward shortens the torso in a 2-D view.
SCALE_PERCENTILE = 90

#: Visibility from which a joint's estimated position counts for the posture statistics. Pose
#: estimators place every joint and lower its visibility where it is occluded or outside the
#: image, and that estimate still says where a hand is: on the demo clip MediaPipe puts the
#: wrists at the face while she cries with visibilities 0.1-0.3, below skeleton.VISIBLE, so
#: the DTW sequence sees them at rest. 0 (a joint that was not estimated at all) stays missing.
POSTURE_VISIBLE = 0.005
#: Offset inside the log of the hand-to-head distances, torso lengths.
HAND_HEAD_FLOOR = 0.05

_LS, _RS = JOINT_INDEX['left_shoulder'], JOINT_INDEX['right_shoulder']
_HEAD = JOINT_INDEX['head']
_ELBOWS = [JOINT_INDEX['left_elbow'], JOINT_INDEX['right_elbow']]
_WRISTS = [JOINT_INDEX['left_wrist'], JOINT_INDEX['right_wrist']]


@dataclass(frozen=True)
class WindowFeatures:
    """``sequence`` (n, F) at FEATURE_RATE_HZ for DTW; ``kinematics`` (K,); ``posture`` (P,)."""

    sequence: np.ndarray
    kinematics: np.ndarray
    posture: np.ndarray


def fill_gaps(positions: np.ndarray, visibility: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """
    Fill each missing joint (``skeleton.present_joints``) in from the nearest frame that has it.

    The joint takes its position from the nearest frame of the window where it is present, and
    that frame's visibility; a joint missing in every frame stays missing. Returns new arrays
    (T, J, D), (T, J).
    """
    present = present_joints(visibility)
    frames = np.arange(len(positions))
    positions, visibility = positions.copy(), visibility.copy()
    for joint in np.where(~present.all(axis=0) & present.any(axis=0))[0]:
        seen = frames[present[:, joint]]
        later = np.clip(np.searchsorted(seen, frames), 0, len(seen) - 1)
        earlier = np.clip(later - 1, 0, len(seen) - 1)
        nearest = np.where(
            np.abs(seen[earlier] - frames) <= np.abs(seen[later] - frames),
            seen[earlier],
            seen[later],
        )
        positions[:, joint] = positions[nearest, joint]
        visibility[:, joint] = visibility[nearest, joint]
    return positions, visibility


def resample(values: np.ndarray, fps: float, rate: float = FEATURE_RATE_HZ) -> np.ndarray:
    """Linear resampling along axis 0 from ``fps`` to ``rate``; the first sample is kept."""
    duration = (len(values) - 1) / fps
    times = np.arange(int(np.floor(duration * rate + 1e-9)) + 1) / rate
    source = times * fps
    low = np.minimum(np.floor(source).astype(int), len(values) - 1)
    high = np.minimum(low + 1, len(values) - 1)
    weight = (source - low).reshape((-1,) + (1,) * (values.ndim - 1))
    return values[low] * (1 - weight) + values[high] * weight


def window_features(positions: np.ndarray, visibility: np.ndarray, fps: float) -> WindowFeatures:
    """
    Features of one window: positions (T, J, D), visibilities (T, J), frame rate in Hz.

    The window needs both shoulders in at least one frame and must span at least three samples
    at FEATURE_RATE_HZ (0.13 s); raises ValueError otherwise. Missing joints are filled first
    (``fill_gaps``), then take REST_POSE positions (so they stand still); non-finite positions
    count as missing, so no NaN comes out.

    sequence, per sample: normalised positions (J*D), velocities times VELOCITY_SPAN_S (J*D),
    LOG_SPEED_WEIGHT * log(speed + SEQUENCE_SPEED_FLOOR) per joint (J).
    kinematics: mean and standard deviation over the window of log(speed + SPEED_FLOOR) per
    joint (2J), mean log(acceleration + ACCELERATION_FLOOR) per joint (J), and log of the vertical
    bounce of the shoulder midpoint (standard deviation, + BOUNCE_FLOOR) and of its mean vertical
    speed (+ SPEED_FLOOR) (2).
    posture: ``posture_statistics`` of the normalised positions of the joints estimated with a
    visibility of at least POSTURE_VISIBLE (the others filled as above).
    """
    if fps <= 0:
        raise ValueError(f'fps must be > 0, got {fps}')
    positions, visibility = np.array(positions, np.float64), np.array(visibility, np.float64)
    drop_non_finite(positions, visibility)
    estimated = np.where(visibility >= POSTURE_VISIBLE, 1.0, 0.0)
    estimated[:, [_LS, _RS]] = visibility[:, [_LS, _RS]]  # they anchor the normalisation
    posture_positions, estimated = fill_gaps(positions, estimated)
    positions, visibility = fill_gaps(positions, visibility)
    scales = body_scale(positions, visibility)
    if not np.any(scales > 0):
        raise ValueError('no frame of the window has both shoulders')
    scale = np.percentile(scales[scales > 0], SCALE_PERCENTILE)
    normalised = resample(normalise(positions, visibility, scale), fps)
    if len(normalised) < 3:
        raise ValueError(f'a window of {len(positions)} frames at {fps} Hz is too short')
    origin = resample((positions[:, _LS] + positions[:, _RS]) / 2 / scale, fps)
    step = 1.0 / FEATURE_RATE_HZ
    velocity = np.gradient(normalised, step, axis=0)
    speed = np.linalg.norm(velocity, axis=-1)
    acceleration = np.linalg.norm(np.gradient(velocity, step, axis=0), axis=-1)
    log_speed = np.log(speed + SPEED_FLOOR)
    n = len(normalised)
    posed = resample(normalise(posture_positions, estimated, scale), fps)
    sequence = np.concatenate([posed.reshape(n, -1),
                               VELOCITY_SPAN_S * velocity.reshape(n, -1),
                               LOG_SPEED_WEIGHT * np.log(speed + SEQUENCE_SPEED_FLOOR)], axis=1)
    vertical = origin[:, 1]
    kinematics = np.concatenate([
        log_speed.mean(axis=0), log_speed.std(axis=0),
        np.log(acceleration + ACCELERATION_FLOOR).mean(axis=0),
        [np.log(vertical.std() + BOUNCE_FLOOR),
         np.log(np.abs(np.gradient(vertical, step)).mean() + SPEED_FLOOR)]])
    return WindowFeatures(sequence, kinematics, posture_statistics(posed))


def posture_statistics(normalised: np.ndarray) -> np.ndarray:
    """
    Return where the arms and head are over a window of normalised 2-D skeletons (n, J, 2).

    Left and right alike (which hand is at the face does not matter), x as the distance from the
    body's midline: mean |x| and mean y of the elbows and of the wrists, and their spread (the
    standard deviation over the window, both coordinates, both sides) (6); the head's mean x and
    y (2); log(distance + HAND_HEAD_FLOOR) from the head to the nearer wrist, mean and minimum
    over the window (2). Units: torso lengths from the shoulder midpoint, y down.
    """
    rows = []
    for joints in (_ELBOWS, _WRISTS):
        xy = normalised[:, joints, :2]
        rows += [np.abs(xy[..., 0]).mean(), xy[..., 1].mean(), xy.std(axis=0).mean()]
    head = normalised[:, _HEAD, :2]
    to_head = np.linalg.norm(normalised[:, _WRISTS, :2] - head[:, None], axis=-1).min(axis=1)
    log_to_head = np.log(to_head + HAND_HEAD_FLOOR)
    return np.array(rows + [np.abs(head[:, 0]).mean(), head[:, 1].mean(),
                            log_to_head.mean(), log_to_head.min()])


def window_starts(frames: int, length: int, stride: int) -> list[int]:
    """
    Return the first frames of the windows that cover a recording of ``frames`` frames.

    The windows are ``length`` frames long, every ``stride`` frames, the last one ending at the
    recording's end; [0] when the recording is shorter.
    """
    if length < 1 or stride < 1 or frames < 1:
        raise ValueError(f'need frames, length and stride >= 1, got {frames}, {length}, {stride}')
    if frames <= length:
        return [0]
    starts = list(range(0, frames - length + 1, stride))
    if starts[-1] != frames - length:
        starts.append(frames - length)
    return starts


def loop_to_length(values: np.ndarray, length: int) -> np.ndarray:
    """
    Repeat ``values`` end to start along axis 0 until it has ``length`` rows.

    It is cut to ``length`` when longer. A recording shorter than a window is one cycle of the
    motion (the short Bandai-Namco clips are single gait cycles whose last pose equals the first),
    so it loops rather than freezing on its last frame, which would read as standing still.
    """
    return values[np.arange(length) % len(values)]


def cut_windows(positions: np.ndarray, visibility: np.ndarray, fps: float, window_s: float,
                stride_s: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """
    Cut a recording (T, J, D), (T, J) at ``fps`` into windows: (positions, visibility) of each.

    The windows are ``window_s`` seconds long, every ``stride_s`` seconds, and cover the
    recording; a shorter recording is looped to one window.
    """
    length, stride = max(1, round(window_s * fps)), max(1, round(stride_s * fps))
    if len(positions) < length:
        positions = loop_to_length(positions, length)
        visibility = loop_to_length(visibility, length)
    return [(positions[s:s + length], visibility[s:s + length])
            for s in window_starts(len(positions), length, stride)]
