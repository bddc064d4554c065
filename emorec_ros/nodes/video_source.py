"""Node ``video_source``: publishes a video file, an image folder or a camera as ROS images.

Publishes ``image`` (sensor_msgs/Image, bgr8) and ``camera_info`` (size only: the source is
uncalibrated, so K/P stay zero as REP-104 allows) with sensor-data QoS. This feeds the graph in
the demo, the tests and on machines without a camera driver.
"""
from __future__ import annotations

import sys
import threading

from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from emorec_ros.image import bgr_to_image
from emorec_ros.nodes.common import StartupError, declare, package_file, spin_node
from emorec_ros.video import FrameSource, SourceError

DEMO_CLIP = 'media/WolfgangLanger_Pexels.mp4'


class VideoSourceNode(Node):
    """Publishes frames at the source's frame rate or at ``rate``."""

    def __init__(self, **kwargs) -> None:
        super().__init__('video_source', **kwargs)
        source = declare(self, 'source', '', "video file, image folder or camera index ('0'); "
                         f"'' = the packaged demo clip {DEMO_CLIP}")
        rate = declare(self, 'rate', 0.0, 'frames per second to publish; 0 = the source\'s own rate', 0.0, 1000.0)
        loop = declare(self, 'loop', False, 'start again at the end of a file or folder')
        start = declare(self, 'start_frame', 0, 'first frame of a file or folder to publish', 0, 1 << 30)
        end = declare(self, 'end_frame', -1, 'frame to stop before; -1 = the end', -1, 1 << 30)
        self.frame_id = declare(self, 'frame_id', 'camera', 'frame_id of the published images')
        source = source or str(package_file(DEMO_CLIP))
        try:
            self.source = FrameSource(source, start_frame=start, end_frame=end, loop=loop)
        except SourceError as e:
            self.get_logger().fatal(str(e))
            raise StartupError(str(e)) from e
        self.finished = False
        self.published = 0
        self._lock = threading.RLock()  # a frame being published vs stop() from another thread
        self.image_publisher = self.create_publisher(Image, 'image', qos_profile_sensor_data)
        self.info_publisher = self.create_publisher(CameraInfo, 'camera_info', qos_profile_sensor_data)
        self.rate = rate or self.source.fps
        self.timer = self.create_timer(1.0 / self.rate, self.publish_next)
        self.get_logger().info(f'publishing {source} at {self.rate:.2f} fps'
                               f'{" in a loop" if loop else ""} from frame {start}')

    def publish_next(self) -> None:
        with self._lock:
            if self.finished:
                return
            try:
                frame = self.source.read()
            except SourceError as e:
                self.get_logger().error(f'{e}; skipping it', throttle_duration_sec=5.0)
                return
            if frame is None:
                self.stop()
                self.get_logger().info(f'end of {self.source.source} after {self.published} frames')
                return
            _, bgr = frame
            header = Header(stamp=self.get_clock().now().to_msg(), frame_id=self.frame_id)
            self.image_publisher.publish(bgr_to_image(bgr, header))
            self.info_publisher.publish(CameraInfo(header=header, height=bgr.shape[0], width=bgr.shape[1]))
            self.published += 1

    def stop(self) -> None:
        """Publish no more frames; returns once none is being published, so the node can be
        destroyed while a multi-threaded executor may still call its timer."""
        with self._lock:
            self.timer.cancel()
            self.finished = True

    def destroy_node(self) -> None:
        self.stop()
        self.source.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    sys.exit(spin_node(VideoSourceNode, args))


if __name__ == '__main__':
    main()
