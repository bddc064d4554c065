"""
Node ``motion_player``: motion-capture clips published as skeletons, filmed by a virtual camera.

Plays BVH clips (files, folders of them, tar archives of them) in name order, one
``skeletons`` message (emorec_ros/SkeletonArray, reliable) per motion frame at the clip's own
rate times ``speed``, stamped with the node's clock. Each play of a clip is a new person
('person1', 'person2', ...), announced on ``~/clip`` (std_msgs/String '<clip> <person id>',
reliable, transient local) and in the log. ``~/debug_image`` shows the figure while someone
subscribes. So full-body motion reaches the gesture nodes without a camera: for demos, tests
and evaluations. A lifecycle node: configure reads and checks the clips, activate plays,
deactivate pauses, cleanup frees them.
"""
from __future__ import annotations

import itertools
import sys
import threading
import time
from typing import Any

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from emorec_ros.gesture.bvh import BvhError, joint_map_with
from emorec_ros.gesture.camera import front_view, PinholeCamera
from emorec_ros.gesture.draw import draw_skeleton
from emorec_ros.gesture.mocap import MocapClip, MocapError, read_sources
from emorec_ros.gesture.skeleton import Skeleton
from emorec_ros.image import bgr_to_image
from emorec_ros.msg import SkeletonArray
from emorec_ros.nodes.common import DEBUG_IMAGE_QOS, PACKAGE
from emorec_ros.nodes.managed import ManagedNode, run_node, StartupError
from emorec_ros.nodes.skeleton_msgs import skeleton_array
from emorec_ros.stats import ProcessingStats
import numpy as np
from rclpy.qos import DurabilityPolicy, QoSProfile
from sensor_msgs.msg import Image
from std_msgs.msg import Header, String

#: The Bandai-Namco motion dataset, where the Makefile's DATA keeps it (not shipped).
DEFAULT_CLIPS = ['../shared/data/bandai_motion/bandai_ds1_bvh.tar.xz']
#: ``~/clip``: a late subscriber still gets every clip announced so far (up to 100).
CLIP_QOS = QoSProfile(depth=100, durability=DurabilityPolicy.TRANSIENT_LOCAL)
#: The debug image's background (BGR grey).
BACKGROUND = 48
#: Share of the clip's rate below which diagnostics warn that ticks are being missed.
SLOW_SHARE = 0.8
#: Parameters that change what the virtual camera sees (the playing clip is filmed again).
CAMERA_PARAMETERS = ('yaw_deg', 'distance_m', 'camera_height_m', 'image_width', 'image_height',
                     'horizontal_fov_deg')


def joint_map_entries(text: str) -> list[str]:
    """Return the entries of a ``joint_map`` parameter ('<joint>=<BVH joint>, ...')."""
    return [entry for entry in (part.strip() for part in text.split(',')) if entry]


def check_joint_map(text: str) -> str | None:
    """Return why ``text`` is not a joint map, or None."""
    try:
        joint_map_with(joint_map_entries(text))
    except BvhError as e:
        return str(e)
    return None


class MotionPlayerNode(ManagedNode):
    """Publish each frame of each clip on a timer at the clip's rate; never skip a frame."""

    NAME = 'motion_player'
    DIAGNOSTICS = True

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.declare('clips', DEFAULT_CLIPS, 'BVH files, folders of them and tar archives of '
                     'them (.tar, .tar.xz, .tar.gz, .tgz, .tar.bz2), played in clip-name order',
                     read_only=True)
        self.declare('clip_filter', '*', "fnmatch pattern a clip's name (its file name without "
                     ".bvh) must match, e.g. 'dataset-1_walk_*'", read_only=True)
        self.declare('joint_map', '', "BVH joint of our joints where the file's names differ "
                     "from the Bandai-Namco ones, e.g. 'left_wrist=LeftHand, head=Neck'",
                     read_only=True, check=check_joint_map)
        self.declare('unit_m', 0.01, 'metres per BVH unit (0.01: centimetres, as the '
                     'Bandai-Namco files)', 1e-6, 1e3, read_only=True)
        self.declare('loop', False, 'start again after the last clip', read_only=True)
        self.declare('speed', 1.0, "playback speed: frames per second = the clip's rate times "
                     'this', 0.01, 100.0)
        self.declare('frame_id', 'camera', 'frame_id of the published skeletons')
        self.declare('yaw_deg', 0.0, "virtual camera's turn about the vertical from in front of "
                     "the person (degrees; positive: towards the person's left)", -180.0, 180.0)
        self.declare('distance_m', 3.0, 'horizontal distance of the virtual camera from the '
                     'person (m)', 0.1, 100.0)
        self.declare('camera_height_m', 1.2, 'height of the virtual camera above the floor (m)',
                     0.0, 100.0)
        self.declare('image_width', 640, 'virtual camera image width (pixels)', 16, 8192)
        self.declare('image_height', 480, 'virtual camera image height (pixels)', 16, 8192)
        self.declare('horizontal_fov_deg', 60.0, 'virtual camera horizontal field of view '
                     '(degrees)', 1.0, 179.0)
        self.clips: list[MocapClip] = []
        self._people = itertools.count(1)  # never reset: a person id is never reused
        self._lock = threading.RLock()  # a tick vs parameter changes and lifecycle transitions
        self._reset_playback()
        self.stats = ProcessingStats()
        self.skeleton_publisher = self.create_lifecycle_publisher(SkeletonArray, 'skeletons',
                                                                  QoSProfile(depth=10))
        self.clip_publisher = self.create_lifecycle_publisher(String, '~/clip', CLIP_QOS)
        self.debug_publisher = self.create_lifecycle_publisher(Image, '~/debug_image',
                                                               DEBUG_IMAGE_QOS)
        self.timer = None
        self.declared_all()

    def _reset_playback(self) -> None:
        self.clip_index = -1  # no clip started yet
        self.frame = 0  # the next frame of the clip to publish
        self.pixels = np.zeros((0, 0, 2))  # the clip filmed: (frames, J, 2) and (frames, J)
        self.visibility = np.zeros((0, 0))
        self.background = np.zeros((0, 0, 3), np.uint8)
        self.person_id = ''
        self.finished = False
        self.published = 0
        self.clips_started = 0

    # --- lifecycle -------------------------------------------------------------------------
    def configure(self) -> None:
        """Find, read and check the clips (every problem is logged)."""
        sources, pattern = self.value('clips'), self.value('clip_filter')
        try:
            clips = read_sources(sources, pattern,
                                 joint_map_with(joint_map_entries(self.value('joint_map'))),
                                 self.value('unit_m'))
        except MocapError as e:
            for problem in e.problems:
                self.get_logger().fatal(f'clips: {problem}')
            raise StartupError(str(e)) from e
        with self._lock:
            self.clips = clips
            self._reset_playback()
        frames = sum(len(c.world) for c in clips)
        seconds = sum(len(c.world) / c.fps for c in clips)
        self.get_logger().info(
            f"{len(clips)} clips ({frames} frames, {seconds:.1f} s) matching '{pattern}' in "
            f'{", ".join(sources)}; playing at {self.value("speed"):g}x speed'
            f'{", in a loop" if self.value("loop") else ""}')

    def activate(self) -> None:
        """Play (on from where a deactivate paused)."""
        with self._lock:
            if self.finished:
                self.get_logger().info('every clip is played: clean up and configure to play '
                                       'them again')
                return
            self.timer = self.create_timer(1.0 / self.rate, self.publish_next)

    def deactivate(self) -> None:
        """Pause; return once no frame is being published."""
        with self._lock:
            if self.timer is not None:
                self.destroy_timer(self.timer)
                self.timer = None

    def cleanup(self) -> None:
        """Free the clips."""
        with self._lock:
            self.clips = []
            self._reset_playback()

    @property
    def clip(self) -> MocapClip | None:
        """Return the clip playing (or played last), None before the first."""
        return self.clips[self.clip_index] if 0 <= self.clip_index < len(self.clips) else None

    @property
    def rate(self) -> float:
        """Return the frames per second published: the clip's frame rate times speed."""
        clip = self.clip or (self.clips[0] if self.clips else None)
        return (clip.fps if clip else 30.0) * self.value('speed')

    def apply_parameters(self, values: dict[str, Any]) -> None:
        with self._lock:
            if 'speed' in values and self.timer is not None:
                self.timer.timer_period_ns = round(1e9 / self.rate)
            if any(name in values for name in CAMERA_PARAMETERS) and self.clip is not None:
                self._film()

    # --- playing ---------------------------------------------------------------------------
    def publish_next(self) -> None:
        """Publish the next frame: a late tick publishes it late, and never skips one."""
        with self._lock:
            if self.finished or not self.clips:
                return
            if self.frame >= len(self.pixels) and not self._start_next_clip():
                return
            started = time.perf_counter()
            header = Header(stamp=self.get_clock().now().to_msg(),
                            frame_id=self.value('frame_id'))
            skeleton = Skeleton(self.pixels[self.frame], self.visibility[self.frame])
            self.skeleton_publisher.publish(skeleton_array(header, [(self.person_id, skeleton)]))
            if self.debug_publisher.get_subscription_count() > 0:
                caption = f'{self.clip.name} {self.person_id} {self.frame + 1}/{len(self.pixels)}'
                self.debug_publisher.publish(
                    bgr_to_image(draw_skeleton(self.background, skeleton, caption), header))
            self.frame += 1
            self.published += 1
            self.stats.record(time.perf_counter() - started, 0.0)

    def _start_next_clip(self) -> bool:
        """Start the next clip (the first after the last when looping); False when done."""
        index = self.clip_index + 1
        if index == len(self.clips):
            if not self.value('loop'):
                self.finished = True
                self.timer.cancel()
                self.get_logger().info(f'done: played {self.clips_started} clips, '
                                       f'{self.published} frames')
                return False
            index = 0
        rate = self.rate
        self.clip_index, self.frame = index, 0
        self.person_id = f'person{next(self._people)}'
        self.clips_started += 1
        self._film()
        if self.rate != rate:
            self.timer.timer_period_ns = round(1e9 / self.rate)
        clip = self.clip
        self.clip_publisher.publish(String(data=f'{clip.name} {self.person_id}'))
        self.get_logger().info(f'clip {clip.name}: {len(clip.world)} frames at {clip.fps:g} fps '
                               f'({len(clip.world) / clip.fps:.1f} s) as {self.person_id}')
        return True

    def _film(self) -> None:
        """Film the clip playing with the virtual camera, all frames at once."""
        width, height = self.value('image_width'), self.value('image_height')
        self.pixels, self.visibility = front_view(
            self.clip.world, self.value('distance_m'), self.value('yaw_deg'),
            self.value('camera_height_m'),
            PinholeCamera(width, height, self.value('horizontal_fov_deg')))
        if self.background.shape[:2] != (height, width):
            self.background = np.full((height, width, 3), BACKGROUND, np.uint8)

    # --- diagnostics -----------------------------------------------------------------------
    def diagnostic_status(self) -> DiagnosticStatus:
        with self._lock:
            clip, frame, frames = self.clip, self.frame, len(self.pixels)
            person, finished, started = self.person_id, self.finished, self.clips_started
            published, target = self.published, self.rate
        stats = self.stats.snapshot()
        name = self.get_fully_qualified_name()
        status = DiagnosticStatus(name=f'{PACKAGE}: {name}', hardware_id=name,
                                  level=DiagnosticStatus.OK)
        if finished:
            status.message = f'done: played {started} clips'
        elif stats.processed > target and stats.rate_hz < SLOW_SHARE * target:
            status.level = DiagnosticStatus.WARN
            status.message = f'publishing {stats.rate_hz:.1f} frames/s of {target:.1f}: late'
        else:
            status.message = 'playing'
        values = {
            'clip': clip.name if clip else '',
            'person': person,
            'frame': f'{frame}/{frames}',
            'rate (Hz)': f'{stats.rate_hz:.1f}',
            'target rate (Hz)': f'{target:.1f}',
            'clips started': str(started),
            'frames published': str(published),
            'publishing p95 (ms)': f'{stats.processing_ms_p95:.1f}',
        }
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        return status


def main(args: list[str] | None = None) -> None:
    sys.exit(run_node(MotionPlayerNode, args))


if __name__ == '__main__':
    main()
