"""Start emorec_ros: the face- and gesture-emotion nodes on a camera topic, or on a video
through video_source.

    ros2 launch emorec_ros emorec.launch.py image:=/camera/image_raw
    ros2 launch emorec_ros emorec.launch.py video:=true               # the bundled demo clip
    ros2 launch emorec_ros emorec.launch.py video:=true video_file:=/path/clip.mp4 rviz:=true
"""
from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue


def generate_launch_description() -> LaunchDescription:
    share = Path(get_package_share_directory('emorec_ros'))
    image = LaunchConfiguration('image')
    params = LaunchConfiguration('params_file')
    return LaunchDescription([
        DeclareLaunchArgument('image', default_value='/camera/image_raw',
                              description='image topic the nodes read (video_source publishes on it)'),
        DeclareLaunchArgument('camera_info', default_value='/camera/camera_info',
                              description='camera_info topic of video_source (size only, uncalibrated)'),
        DeclareLaunchArgument('video', default_value='false',
                              description='true: start video_source to publish video_file on the image topic'),
        DeclareLaunchArgument('video_file', default_value='',
                              description="video file, image folder or camera index for video_source; "
                                          "'' = the bundled demo clip"),
        DeclareLaunchArgument('loop', default_value='true', description='loop the video'),
        DeclareLaunchArgument('params_file', default_value=str(share / 'config' / 'emorec.yaml'),
                              description='node parameters'),
        DeclareLaunchArgument('rviz', default_value='false', description='start rviz2 with config/emorec.rviz'),
        DeclareLaunchArgument('face', default_value='true', description='start the face-emotion node'),
        DeclareLaunchArgument('gesture', default_value='true', description='start the gesture-emotion node'),
        DeclareLaunchArgument('fastdds_transports', default_value='LARGE_DATA',
                              description="FASTDDS_BUILTIN_TRANSPORTS for these nodes: FastDDS's DEFAULT set "
                                          'loses most camera-size images between processes; LARGE_DATA does not'),
        SetEnvironmentVariable('FASTDDS_BUILTIN_TRANSPORTS', LaunchConfiguration('fastdds_transports')),
        # rviz2 first: launch resolves a package when it starts its node, and if rviz2 is not
        # installed it stops with an error at once; after our nodes, they would be left running.
        Node(package='rviz2', executable='rviz2', name='rviz2',
             condition=IfCondition(LaunchConfiguration('rviz')),
             arguments=['-d', str(share / 'config' / 'emorec.rviz')]),
        Node(package='emorec_ros', executable='video_source', name='video_source',
             condition=IfCondition(LaunchConfiguration('video')),
             parameters=[params, {'source': ParameterValue(LaunchConfiguration('video_file'), value_type=str),
                                  'loop': ParameterValue(LaunchConfiguration('loop'), value_type=bool)}],
             remappings=[('image', image), ('camera_info', LaunchConfiguration('camera_info'))]),
        Node(package='emorec_ros', executable='face_emotion_node', name='face_emotion',
             condition=IfCondition(LaunchConfiguration('face')),
             parameters=[params], remappings=[('image', image)]),
        Node(package='emorec_ros', executable='gesture_emotion_node', name='gesture_emotion',
             condition=IfCondition(LaunchConfiguration('gesture')),
             parameters=[params], remappings=[('image', image)]),
    ])
