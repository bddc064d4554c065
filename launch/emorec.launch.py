"""
Start emorec_ros: face and body-language emotion on a camera topic, or on a video.

    ros2 launch emorec_ros emorec.launch.py image:=/camera/image_raw
    ros2 launch emorec_ros emorec.launch.py video:=true               # the bundled demo clip
    ros2 launch emorec_ros emorec.launch.py video:=true video_file:=/path/clip.mp4 rviz:=true
    ros2 launch emorec_ros emorec.launch.py namespace:=cam2 image:=/cam2/color/image_raw
    ros2 launch emorec_ros emorec.launch.py motion:=true motion_clips:=/data/bandai_ds1_bvh.tar.xz
    ros2 launch emorec_ros emorec.launch.py pose:=false skeletons:=/my_pose/skeletons

Body language: body_pose turns the images into skeletons (emorec_ros/SkeletonArray on
``skeletons``) and gesture_emotion classifies each person's recent motion. ``motion:=true``
replaces the camera path by motion_player, which publishes motion-capture clips (BVH) as
skeletons, and leaves out the face node (there are no images); ``pose:=false`` leaves body_pose
out, for a pose estimator of your own that publishes SkeletonArray on ``skeletons``.

Namespace: every node (and rviz2) starts under ``namespace``, and every default topic is
relative, so ``namespace:=cam2`` moves the whole graph: the nodes are /cam2/face_emotion,
/cam2/body_pose, /cam2/gesture_emotion and /cam2/video_source, they read /cam2/camera/image_raw,
publish /cam2/face_emotions, /cam2/skeletons and /cam2/gesture_emotion, their node-private
topics and services follow their names (/cam2/body_pose/pose_debug_image,
/cam2/gesture_emotion/record_template, ...)
and their diagnostics are named after them ('emorec_ros: /cam2/face_emotion'). Only
/diagnostics stays global, where diagnostic aggregators read it. An absolute ``image``
(starting with /) is used as given. The parameters file's keys are ``/**/face_emotion`` etc.,
so it applies in any namespace. two_cameras.launch.py includes this file once per camera.

Lifecycle: the nodes are managed (lifecycle) nodes. With ``autostart:=true`` (the default) each
configures and activates itself; with ``autostart:=false`` they wait unconfigured, for
``ros2 lifecycle set /face_emotion configure`` and ``... activate`` (or for a lifecycle manager).
They are started as launch_ros LifecycleNode actions, so launch files that include this one can
also drive them with ChangeState events and react to their transitions (OnStateTransition).

rviz2 (``rviz:=true``) shows the debug images: faces, the skeleton with its body-language verdict,
the motion-capture figure. A .rviz file cannot hold a namespace substitution, so
config/emorec.rviz names the topics relative to rviz2's namespace
(``face_emotion/face_debug_image``, ``body_pose/pose_debug_image``) and rviz2 starts in
the same namespace as the nodes: one config serves every namespace. Without this launch file:
``rviz2 -d emorec.rviz --ros-args -r __ns:=/cam2``.

FastDDS: FastDDS's DEFAULT transports lose most camera-size images between processes, its
LARGE_DATA set does not. The nodes get FASTDDS_BUILTIN_TRANSPORTS from ``fastdds_transports``,
whose default is the variable's value in the environment of ``ros2 launch`` (so a setting the
user already exported is kept), or LARGE_DATA when it is not set.
"""
from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, GroupAction, OpaqueFunction
from launch.actions import SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import EnvironmentVariable, LaunchConfiguration, PythonExpression
from launch_ros.actions import LifecycleNode, Node, PushRosNamespace
from launch_ros.parameter_descriptions import ParameterValue

#: Launch arguments: name -> (default, description). A default of None is filled in by
#: generate_launch_description (it depends on the installed package or the environment).
ARGUMENTS = {
    'namespace': ('', "namespace of every node, e.g. 'cam2' ('' = the root namespace)"),
    'image': ('camera/image_raw', 'image topic the nodes read, relative to the namespace unless '
              'it starts with /; video_source publishes on it'),
    'camera_info': ('camera/camera_info', 'camera_info topic of video_source (size only, '
                    'uncalibrated), relative to the namespace unless it starts with /'),
    'video': ('false', 'true: start video_source to publish video_file on the image topic'),
    'video_file': ('', "video file, image folder or camera index for video_source; '' = the "
                   'bundled demo clip'),
    'loop': ('true', 'loop the video or the motion clips'),
    'params_file': (None, 'node parameters (keys /**/<node>: they apply in any namespace)'),
    'template_dir': ('', 'gesture template folder of gesture_emotion; given, it overrides the '
                     "params_file's template_dir; '' = as params_file says (its default: "
                     '$ROS_HOME/emorec/templates)'),
    'use_sim_time': ('false', 'every node (rviz2 too) takes its time from /clock'),
    'autostart': ('true', 'the nodes configure and activate themselves; false: they wait '
                  'unconfigured for `ros2 lifecycle set <node> configure` and `... activate`'),
    'face': ('true', 'start the face-emotion node (not with motion:=true)'),
    'gesture': ('true', 'start the body-language nodes: body_pose (unless pose:=false or '
                'motion:=true) and gesture_emotion'),
    'pose': ('true', 'start body_pose, the skeletons of the people in the images; false: '
             'another node publishes SkeletonArray on the skeletons topic'),
    'skeletons': ('skeletons', 'skeleton topic (emorec_ros/SkeletonArray) between the pose '
                  'source and gesture_emotion, relative to the namespace unless it starts '
                  'with /'),
    'motion': ('false', 'true: motion_player publishes motion_clips as skeletons instead of '
               'a camera; no video_source, face_emotion or body_pose'),
    'motion_clips': ('', 'BVH files, folders or tar archives for motion_player, separated by '
                     "commas; '' = as params_file says"),
    'motion_filter': ('*', "which clips motion_player plays: a pattern on the clip's name, e.g. "
                      "'dataset-1_walk_*'"),
    'rviz': ('false', 'start rviz2 with config/emorec.rviz in the namespace'),
    'fastdds_transports': (None, 'FASTDDS_BUILTIN_TRANSPORTS for these nodes (default: the '
                           "value already in the environment, else LARGE_DATA): FastDDS's "
                           'DEFAULT set loses most camera-size images between processes'),
}


def _gesture_nodes(context, common: dict) -> list:
    """
    Return the body-language nodes: the skeleton source and gesture_emotion.

    template_dir and motion_clips override the parameters file only when given.
    """
    def value(name: str) -> str:
        return LaunchConfiguration(name).perform(context)

    params = LaunchConfiguration('params_file')
    skeletons = ('skeletons', LaunchConfiguration('skeletons'))
    template_dir = value('template_dir')
    nodes = [LifecycleNode(
        package='emorec_ros', executable='gesture_emotion_node', name='gesture_emotion',
        namespace='', parameters=[params, common,
                                  {'template_dir': template_dir} if template_dir else {}],
        remappings=[skeletons])]
    if value('motion').lower() == 'true':
        clips = [c.strip() for c in value('motion_clips').split(',') if c.strip()]
        nodes.append(LifecycleNode(
            package='emorec_ros', executable='motion_player', name='motion_player',
            namespace='', parameters=[params, common, {
                'loop': ParameterValue(LaunchConfiguration('loop'), value_type=bool),
                'clip_filter': ParameterValue(LaunchConfiguration('motion_filter'),
                                              value_type=str),
                **({'clips': clips} if clips else {})}],
            remappings=[skeletons]))
    elif value('pose').lower() == 'true':
        nodes.append(LifecycleNode(
            package='emorec_ros', executable='body_pose_node', name='body_pose', namespace='',
            parameters=[params, common],
            remappings=[('image', LaunchConfiguration('image')), skeletons]))
    return nodes


def generate_launch_description() -> LaunchDescription:
    share = Path(get_package_share_directory('emorec_ros'))
    defaults = {
        'params_file': str(share / 'config' / 'emorec.yaml'),
        'fastdds_transports': EnvironmentVariable('FASTDDS_BUILTIN_TRANSPORTS',
                                                  default_value='LARGE_DATA'),
    }
    arguments = [
        DeclareLaunchArgument(name, default_value=defaults.get(name, default),
                              description=description)
        for name, (default, description) in ARGUMENTS.items()]

    def flag(name: str) -> ParameterValue:
        return ParameterValue(LaunchConfiguration(name), value_type=bool)

    params = LaunchConfiguration('params_file')
    image = LaunchConfiguration('image')
    # After the parameters file, so that the launch arguments win.
    common = {'use_sim_time': flag('use_sim_time'), 'autostart': flag('autostart')}
    # A scoped group: the namespace and the environment variable end with it, so that a launch
    # file including this one twice (two_cameras.launch.py) gets two separate graphs.
    group = GroupAction([
        PushRosNamespace(LaunchConfiguration('namespace')),
        SetEnvironmentVariable('FASTDDS_BUILTIN_TRANSPORTS',
                               LaunchConfiguration('fastdds_transports')),
        # rviz2 first: launch resolves a package when it starts its node, and if rviz2 is not
        # installed it stops with an error at once; after our nodes, they would be left running.
        Node(package='rviz2', executable='rviz2', name='rviz2',
             condition=IfCondition(LaunchConfiguration('rviz')),
             arguments=['-d', str(share / 'config' / 'emorec.rviz')],
             parameters=[{'use_sim_time': flag('use_sim_time')}]),
        LifecycleNode(
            package='emorec_ros', executable='video_source', name='video_source', namespace='',
            condition=IfCondition(PythonExpression([
                "'", LaunchConfiguration('video'), "'.lower() == 'true' and '",
                LaunchConfiguration('motion'), "'.lower() != 'true'"])),
            parameters=[params, common, {
                'source': ParameterValue(LaunchConfiguration('video_file'), value_type=str),
                'loop': flag('loop')}],
            remappings=[('image', image), ('camera_info', LaunchConfiguration('camera_info'))]),
        LifecycleNode(
            package='emorec_ros', executable='face_emotion_node', name='face_emotion',
            namespace='', condition=IfCondition(PythonExpression([
                "'", LaunchConfiguration('face'), "'.lower() == 'true' and '",
                LaunchConfiguration('motion'), "'.lower() != 'true'"])),
            parameters=[params, common], remappings=[('image', image)]),
        OpaqueFunction(function=_gesture_nodes, args=[common],
                       condition=IfCondition(LaunchConfiguration('gesture'))),
    ])
    return LaunchDescription([*arguments, group])
