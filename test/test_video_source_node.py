"""
The video_source node in this process, as the demo runs it.

On a multi-threaded executor, replaced by another one while the executor keeps spinning.
"""
from __future__ import annotations

import threading
import time


def test_destroyed_while_the_executor_runs_its_timer(ros_context, media, wait):
    from emorec_ros.nodes.video_source import VideoSourceNode
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter

    executor = MultiThreadedExecutor(num_threads=4)
    errors: list[BaseException] = []

    def spin() -> None:
        try:
            executor.spin()
        except (
            BaseException
        ) as e:  # what killed the demo's spin thread: a publish on a destroyed node
            errors.append(e)

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    published = []
    try:
        for _ in range(10):
            source = VideoSourceNode(parameter_overrides=[
                Parameter('source', value=str(media / 'WolfgangLanger_Pexels.mp4')),
                Parameter('rate', value=500.0), Parameter('loop', value=True)])
            executor.add_node(source)
            assert source.start()
            assert wait(lambda: source.published > 0, 10.0)  # its timer is running
            assert source.stop()
            executor.remove_node(source)
            source.destroy_node()
            published.append(source.published)
        time.sleep(0.2)
        assert spinner.is_alive() and not errors, errors
        assert all(n > 0 for n in published), published
    finally:
        executor.shutdown()
        spinner.join(timeout=5)
