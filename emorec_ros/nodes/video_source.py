"""
Node ``video_source``: publishes a video file, an image folder or a camera as ROS images.

Publishes ``image`` (sensor_msgs/Image, bgr8) and ``camera_info`` (size only: the source is
uncalibrated, so K/P stay zero as REP-104 allows) with sensor-data QoS. This feeds the graph in
the demo, the tests and on machines without a camera driver. A lifecycle node: configure opens
the source, activate publishes, deactivate pauses, cleanup closes the source.
"""
from __future__ import annotations

import sys
import threading
from typing import Any

from emorec_ros.image import bgr_to_image
from emorec_ros.nodes.common import package_file
from emorec_ros.nodes.managed import ManagedNode, run_node, StartupError
from emorec_ros.video import FrameSource, SourceError
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

DEMO_CLIP = 'media/WolfgangLanger_Pexels.mp4'


class VideoSourceNode(ManagedNode):
    """Publish frames at the source's frame rate or at ``rate``."""

    NAME = 'video_source'

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.declare('source', '', "video file, image folder or camera index ('0'); '' = the "
                     f'packaged demo clip {DEMO_CLIP}', read_only=True)
        self.declare('rate', 0.0, "frames per second to publish; 0 = the source's own rate",
                     0.0, 1000.0)
        self.declare('loop', False, 'start again at the end of a file or folder', read_only=True)
        self.declare('start_frame', 0, 'first frame of a file or folder to publish', 0, 1 << 30,
                     read_only=True)
        self.declare('end_frame', -1, 'frame to stop before; -1 = the end', -1, 1 << 30,
                     read_only=True)
        self.declare('frame_id', 'camera', 'frame_id of the published images')
        self.source: FrameSource | None = None
        self.source_fps = 0.0  # of the last source opened
        self.finished = False
        self.published = 0
        self._lock = threading.RLock()  # a frame being published vs stop() from another thread
        self.image_publisher = self.create_lifecycle_publisher(Image, 'image',
                                                               qos_profile_sensor_data)
        self.info_publisher = self.create_lifecycle_publisher(CameraInfo, 'camera_info',
                                                              qos_profile_sensor_data)
        self.timer = None
        self.declared_all()

    def configure(self) -> None:
        """Open the source."""
        source = self.value('source') or str(package_file(DEMO_CLIP))
        try:
            self.source = FrameSource(source, start_frame=self.value('start_frame'),
                                      end_frame=self.value('end_frame'),
                                      loop=self.value('loop'))
        except SourceError as e:
            self.get_logger().fatal(str(e))
            raise StartupError(str(e)) from e
        self.finished = False
        self.source_fps = self.source.fps
        self.get_logger().info(f'publishing {source} at {self.rate:.2f} fps'
                               f'{" in a loop" if self.source.loop else ""} from frame '
                               f'{self.source.start_frame}')

    @property
    def rate(self) -> float:
        """Return the frames per second published."""
        return self.value('rate') or self.source_fps

    def activate(self) -> None:
        """Publish frames."""
        self.timer = self.create_timer(1.0 / self.rate, self.publish_next)

    def deactivate(self) -> None:
        """Pause; return once no frame is being published."""
        with self._lock:
            if self.timer is not None:
                self.destroy_timer(self.timer)
                self.timer = None

    def cleanup(self) -> None:
        """Close the source."""
        with self._lock:
            if self.source is not None:
                self.source.close()
                self.source = None

    def apply_parameters(self, values: dict[str, Any]) -> None:
        if 'rate' in values and self.timer is not None and self.source is not None:
            with self._lock:
                self.destroy_timer(self.timer)
                self.timer = self.create_timer(1.0 / self.rate, self.publish_next)

    def publish_next(self) -> None:
        """Publish the next frame, or stop at the end of the source."""
        with self._lock:
            if self.finished or self.source is None:
                return
            try:
                frame = self.source.read()
            except SourceError as e:
                self.get_logger().error(f'{e}; skipping it', throttle_duration_sec=5.0)
                return
            if frame is None:
                self.finished = True
                self.get_logger().info(
                    f'end of {self.source.source} after {self.published} frames')
                return
            _, bgr = frame
            header = Header(stamp=self.get_clock().now().to_msg(),
                            frame_id=self.value('frame_id'))
            self.image_publisher.publish(bgr_to_image(bgr, header))
            self.info_publisher.publish(
                CameraInfo(header=header, height=bgr.shape[0], width=bgr.shape[1]))
            self.published += 1


def main(args: list[str] | None = None) -> None:
    sys.exit(run_node(VideoSourceNode, args))


if __name__ == '__main__':
    main()
