"""
Run emorec_ros on two cameras side by side: emorec.launch.py twice, in namespaces cam1 and cam2.

    ros2 launch emorec_ros two_cameras.launch.py cam1_image:=/front/image cam2_image:=/rear/image
    ros2 launch emorec_ros two_cameras.launch.py video:=true    # both fed the bundled clip

An example of running several graphs in one system. Each camera gets its own namespace, so
nothing collides: the nodes are /cam1/face_emotion and /cam2/face_emotion (and the same for
gesture_emotion and video_source), results go to /cam1/face_emotions and /cam2/face_emotions,
services are /cam1/gesture_emotion/record_template, /cam2/gesture_emotion/list_templates, ...,
and both publish to the one /diagnostics with their own status names ('emorec_ros:
/cam1/face_emotion', 'emorec_ros: /cam2/face_emotion').

Image topics: ``cam1_image`` and ``cam2_image`` default to the relative camera/image_raw, which
each graph resolves in its own namespace (/cam1/camera/image_raw, /cam2/camera/image_raw), as a
camera driver started in that namespace publishes; give an absolute topic for a driver
elsewhere. With ``video:=true`` each camera gets a video_source that publishes
``cam1_video_file`` / ``cam2_video_file`` ('' = the bundled demo clip) on that topic, so the
example runs without cameras.

Gesture templates: each camera's gesture node has its own template folder
(``cam1_template_dir``, default $ROS_HOME/emorec/cam1/templates; cam2 alike). A node reads its
folder when it is configured and refits only on the recordings and deletions made through its
own services, so two nodes on one folder would each use a stale set and report templates the
other recorded as in use. To share one set of templates on purpose, give both arguments the
same folder and reconfigure a node to pick up the other's changes
(``ros2 lifecycle set /cam2/gesture_emotion deactivate``, then ``cleanup``, ``configure``,
``activate``); writes to the folder are safe from two processes at once.

Everything else comes from the same arguments for both cameras: ``params_file`` (its keys,
/**/face_emotion etc., match in any namespace), ``use_sim_time``, ``autostart``, ``rviz`` (one
rviz2 per camera, each in its namespace). Each camera is included in its own scoped group, so
the arguments of one never leak into the other.
"""
import os
from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, GroupAction, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration

#: The cameras' namespaces, in the order they are started.
CAMERAS = ('cam1', 'cam2')
#: Arguments given to both cameras alike: name -> (default, description); None = filled in below.
SHARED = {
    'video': ('false', 'true: feed each camera from its own video_source (no camera needed)'),
    'loop': ('true', 'loop the videos'),
    'params_file': (None, 'node parameters of both cameras'),
    'use_sim_time': ('false', 'every node takes its time from /clock'),
    'autostart': ('true', 'the nodes configure and activate themselves; false: they wait for '
                  '`ros2 lifecycle set`'),
    'face': ('true', 'start the face-emotion nodes'),
    'gesture': ('true', 'start the gesture-emotion nodes'),
    'rviz': ('false', 'start one rviz2 per camera, in its namespace'),
}


def camera_arguments(camera: str) -> list[DeclareLaunchArgument]:
    """Return the launch arguments of one camera: its image topic, video and template folder."""
    ros_home = os.environ.get('ROS_HOME') or os.path.join(os.path.expanduser('~'), '.ros')
    return [
        DeclareLaunchArgument(f'{camera}_image', default_value='camera/image_raw',
                              description=f'image topic of {camera}, relative to namespace '
                                          f'{camera} unless it starts with /'),
        DeclareLaunchArgument(f'{camera}_video_file', default_value='',
                              description=f"video for {camera}'s video_source (video:=true); "
                                          "'' = the bundled demo clip"),
        DeclareLaunchArgument(f'{camera}_template_dir',
                              default_value=os.path.join(ros_home, 'emorec', camera, 'templates'),
                              description=f"gesture template folder of {camera}'s "
                                          'gesture_emotion'),
    ]


def generate_launch_description() -> LaunchDescription:
    share = Path(get_package_share_directory('emorec_ros'))
    defaults = {'params_file': str(share / 'config' / 'emorec.yaml')}
    entities = [
        DeclareLaunchArgument(name, default_value=defaults.get(name, default),
                              description=description)
        for name, (default, description) in SHARED.items()]
    for camera in CAMERAS:
        entities += camera_arguments(camera)
    for camera in CAMERAS:
        arguments = {name: LaunchConfiguration(name) for name in SHARED}
        arguments.update({
            'namespace': camera,
            'image': LaunchConfiguration(f'{camera}_image'),
            'camera_info': 'camera/camera_info',
            'video_file': LaunchConfiguration(f'{camera}_video_file'),
            'template_dir': LaunchConfiguration(f'{camera}_template_dir'),
        })
        entities.append(GroupAction([IncludeLaunchDescription(
            PythonLaunchDescriptionSource(str(share / 'launch' / 'emorec.launch.py')),
            launch_arguments=arguments.items())]))
    return LaunchDescription(entities)
