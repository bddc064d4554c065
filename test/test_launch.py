"""
The launch files, the parameters file and the rviz config, checked without running a graph.

Without ``launch`` (it does not install from the registries CI uses), the launch files are read
with ast: their arguments, the nodes they start and what two_cameras.launch.py passes on. Where
``launch`` and ``launch_ros`` import (a ROS install), both launch descriptions are also built and
walked as ``ros2 launch`` walks them, without starting a process: node names, namespaces,
remappings, parameters and the environment each node would get. The parameters file is checked
against the nodes themselves: constructed in this process, they declare their parameters and
load nothing.
"""
from __future__ import annotations

import ast
import os
from pathlib import Path
import tempfile

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
MAIN = ROOT / 'launch' / 'emorec.launch.py'
TWO_CAMERAS = ROOT / 'launch' / 'two_cameras.launch.py'
PARAMS = ROOT / 'config' / 'emorec.yaml'
RVIZ = ROOT / 'config' / 'emorec.rviz'

#: Launch arguments emorec.launch.py must have.
REQUIRED_ARGUMENTS = {
    'namespace', 'use_sim_time', 'autostart', 'image', 'camera_info', 'params_file',
    'template_dir', 'fastdds_transports', 'video', 'video_file', 'loop', 'face', 'gesture',
    'pose', 'skeletons', 'motion', 'motion_clips', 'motion_filter', 'rviz'}
#: Node name -> (executable, module, class).
NODES = {
    'face_emotion': ('face_emotion_node', 'emorec_ros.nodes.face_emotion', 'FaceEmotionNode'),
    'gesture_emotion': ('gesture_emotion_node', 'emorec_ros.nodes.gesture_emotion',
                        'GestureEmotionNode'),
    'video_source': ('video_source', 'emorec_ros.nodes.video_source', 'VideoSourceNode'),
    'body_pose': ('body_pose_node', 'emorec_ros.nodes.body_pose', 'BodyPoseNode'),
    'motion_player': ('motion_player', 'emorec_ros.nodes.motion_player', 'MotionPlayerNode'),
}
#: The debug images, relative to the namespace (as config/emorec.rviz names them).
DEBUG_IMAGES = {'face_emotion': 'face_emotion/face_debug_image',
                'body_pose': 'body_pose/pose_debug_image',
                'motion_player': 'motion_player/debug_image'}


# --- without launch: the sources --------------------------------------------------------------

def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def constant(tree: ast.Module, name: str):
    """Return the value of the module-level assignment to ``name`` (a literal)."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f'no module-level {name}')


def calls(tree: ast.AST, function: str) -> list[ast.Call]:
    """Return the calls of ``function`` (by name or attribute)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            if (isinstance(f, ast.Name) and f.id == function) or \
                    (isinstance(f, ast.Attribute) and f.attr == function):
                found.append(node)
    return found


def keywords(call: ast.Call) -> dict[str, ast.expr]:
    return {k.arg: k.value for k in call.keywords}


def literal(node: ast.expr | None):
    return ast.literal_eval(node) if node is not None else None


def main_arguments() -> dict[str, tuple]:
    return constant(parse(MAIN), 'ARGUMENTS')


def test_main_launch_arguments():
    arguments = main_arguments()
    assert REQUIRED_ARGUMENTS <= set(arguments)
    defaults = {name: default for name, (default, _) in arguments.items()}
    assert defaults['namespace'] == ''
    assert defaults['use_sim_time'] == 'false'
    assert defaults['autostart'] == 'true'
    # Relative, so that a namespace moves the whole graph.
    assert defaults['image'] == 'camera/image_raw'
    assert defaults['camera_info'] == 'camera/camera_info'
    assert all(description for _, description in arguments.values())


def test_main_launch_declares_what_it_uses():
    tree = parse(MAIN)
    used = {literal(c.args[0]) for function in ('LaunchConfiguration', 'flag')
            for c in calls(tree, function) if isinstance(c.args[0], ast.Constant)}
    assert {'namespace', 'image', 'fastdds_transports', 'autostart'} <= used
    assert used <= set(main_arguments()), used - set(main_arguments())


def test_fastdds_transports_default_to_the_environment():
    tree = parse(MAIN)
    variables = [c for c in calls(tree, 'EnvironmentVariable')
                 if literal(c.args[0]) == 'FASTDDS_BUILTIN_TRANSPORTS']
    assert [literal(keywords(c).get('default_value')) for c in variables] == ['LARGE_DATA']
    setters = [c for c in calls(tree, 'SetEnvironmentVariable')
               if literal(c.args[0]) == 'FASTDDS_BUILTIN_TRANSPORTS']
    assert len(setters) == 1
    value = setters[0].args[1]
    assert isinstance(value, ast.Call) and literal(value.args[0]) == 'fastdds_transports'


def test_main_launch_starts_lifecycle_nodes_in_the_namespace():
    tree = parse(MAIN)
    pushed = calls(tree, 'PushRosNamespace')
    assert len(pushed) == 1 and literal(pushed[0].args[0].args[0]) == 'namespace'
    nodes = {}
    for call in calls(tree, 'LifecycleNode'):
        k = keywords(call)
        assert literal(k['package']) == 'emorec_ros'
        # LifecycleNode needs name and namespace; '' = the pushed namespace.
        assert literal(k['namespace']) == ''
        nodes[literal(k['name'])] = literal(k['executable'])
    assert nodes == {name: executable for name, (executable, _, _) in NODES.items()}


def test_two_cameras_passes_declared_arguments():
    main = set(main_arguments())
    tree = parse(TWO_CAMERAS)
    assert constant(tree, 'CAMERAS') == ('cam1', 'cam2')
    shared = constant(tree, 'SHARED')
    assert set(shared) <= main, set(shared) - main
    # The per-camera arguments given to emorec.launch.py.
    updates = calls(tree, 'update')
    assert len(updates) == 1
    per_camera = {literal(k) for k in updates[0].args[0].keys}
    assert per_camera == {'namespace', 'image', 'camera_info', 'video_file', 'template_dir'}
    assert per_camera <= main
    # Every per-camera LaunchConfiguration (f'{camera}_image', ...) is declared per camera.
    suffixes = {}
    for function in ('LaunchConfiguration', 'DeclareLaunchArgument'):
        suffixes[function] = {
            ''.join(v.value for v in c.args[0].values if isinstance(v, ast.Constant))
            for c in calls(tree, function) if isinstance(c.args[0], ast.JoinedStr)}
    assert suffixes['LaunchConfiguration'] == suffixes['DeclareLaunchArgument'] == {
        '_image', '_video_file', '_template_dir'}
    assert any(isinstance(s, ast.Constant) and s.value == 'emorec.launch.py'
               for s in ast.walk(tree))


def rviz_topics() -> list[str]:
    config = yaml.safe_load(RVIZ.read_text())
    return [d['Topic']['Value'] for d in config['Visualization Manager']['Displays']
            if 'Topic' in d]


def test_rviz_topics_are_relative():
    """rviz2 starts in the nodes' namespace; relative topics follow it."""
    assert sorted(rviz_topics()) == sorted(DEBUG_IMAGES.values())


def params_file() -> dict:
    return yaml.safe_load(PARAMS.read_text())


def test_params_file_keys_match_any_namespace():
    params = params_file()
    assert set(params) == {f'/**/{name}' for name in NODES}
    assert all(set(section) == {'ros__parameters'} for section in params.values())


# --- with rclpy: the nodes' own parameters ----------------------------------------------------

def make_node(name: str, **kwargs):
    import importlib

    _, module, cls = NODES[name]
    return getattr(importlib.import_module(module), cls)(**kwargs)


@pytest.mark.parametrize('name', sorted(NODES))
def test_params_file_holds_declared_parameters_and_defaults(ros_context, name):
    """Every parameter in config/emorec.yaml is declared by its node, with that default."""
    namespace = f'/test_launch_{os.getpid()}'
    node = make_node(name, namespace=namespace, parameter_overrides=[])
    try:
        declared = node._parameters
        values = params_file()[f'/**/{name}']['ros__parameters']
        assert set(values) <= set(declared), set(values) - set(declared)
        for key, value in values.items():
            if isinstance(value, float):
                value = pytest.approx(value)
            assert declared[key].value == value, key
        assert declared['autostart'].value is False
        assert 'use_sim_time' in declared
        # What the launch file's namespace changes: the node's full name (diagnostics), its
        # debug image (rviz2's relative topic) and its services.
        assert node.get_fully_qualified_name() == f'{namespace}/{name}'
        if name in DEBUG_IMAGES:
            assert node.debug_publisher.topic_name == f'{namespace}/{DEBUG_IMAGES[name]}'
        if name == 'gesture_emotion':
            services = {node.resolve_service_name(s.srv_name) for s in node.services}
            assert {f'{namespace}/{name}/{s}' for s in (
                'record_template', 'list_templates', 'delete_template')} <= services
    finally:
        node.destroy_node()


@pytest.mark.parametrize('namespace', ['/', '/cam2', '/robot/cam1'])
def test_params_file_applies_in_any_namespace(ros_context, tmp_path, namespace):
    params = params_file()
    params['/**/face_emotion']['ros__parameters']['smoothing'] = 0.75
    path = tmp_path / 'params.yaml'
    path.write_text(yaml.safe_dump(params))
    node = make_node('face_emotion', namespace=namespace,
                     cli_args=['--ros-args', '--params-file', str(path)])
    try:
        assert node.get_parameter('smoothing').value == 0.75
    finally:
        node.destroy_node()


# --- with launch: the launch descriptions, walked without starting processes -----------------

class LaunchParamsLoader(yaml.SafeLoader):
    """
    Read the parameter files launch_ros writes.

    It dumps list values as !!python/tuple, which rcl's parser reads as a list.
    """


LaunchParamsLoader.add_constructor(
    'tag:yaml.org,2002:python/tuple',
    lambda loader, node: loader.construct_sequence(node))


class Walk:
    """Visit a launch description as the launch service would, recording the nodes it starts."""

    def __init__(self, path: Path, arguments: dict[str, str]) -> None:
        from launch import LaunchContext
        from launch.launch_description_sources import PythonLaunchDescriptionSource

        self.context = LaunchContext()
        self.context.launch_configurations.update(arguments)
        self.nodes = {}  # full node name -> {'cmd': [...], 'environment': {...}, 'action': ...}
        self.visit(PythonLaunchDescriptionSource(str(path)).get_launch_description(self.context))

    def visit(self, entity) -> None:
        from launch.utilities import perform_substitutions
        from launch_ros.actions import Node

        if not isinstance(entity, Node):
            for child in entity.visit(self.context) or []:
                self.visit(child)
            return
        if entity.condition is not None and not entity.condition.evaluate(self.context):
            return
        entity._perform_substitutions(self.context)
        cmd = []
        if entity.node_package == 'emorec_ros':  # rviz2 need not be installed here
            self.context.extend_locals({'ros_specific_arguments': {'ns': '', 'name': ''}})
            cmd = [perform_substitutions(self.context, part) for part in entity.cmd]
        self.nodes[entity.node_name] = {'cmd': cmd, 'environment': dict(os.environ),
                                        'action': entity}

    def parameters(self, node_name: str) -> dict:
        """Return the parameters the node would get, the last file winning."""
        cmd = self.nodes[node_name]['cmd']
        name = node_name.rsplit('/', 1)[1]
        values = {}
        for flag, value in zip(cmd, cmd[1:]):
            if flag == '--params-file':
                for key, section in yaml.load(Path(value).read_text(), LaunchParamsLoader).items():
                    if key in ('/**', f'/**/{name}', node_name):
                        values.update(section['ros__parameters'])
        return values

    def remappings(self, node_name: str) -> dict[str, str]:
        return dict(self.nodes[node_name]['action'].expanded_remapping_rules or [])


@pytest.fixture()
def walk(monkeypatch, tmp_path):
    pytest.importorskip('launch')
    pytest.importorskip('launch_ros')
    # A set-up that exported its own transports (tools/env.sh does) must not decide the test.
    monkeypatch.delenv('FASTDDS_BUILTIN_TRANSPORTS', raising=False)
    # launch_ros writes each node's parameter dicts to a temporary file: keep them here.
    monkeypatch.setattr(tempfile, 'tempdir', str(tmp_path))
    return Walk


def test_launch_descriptions_declare_the_arguments():
    pytest.importorskip('launch_ros')
    from launch.launch_description_sources import get_launch_description_from_python_launch_file

    names = {a.name for a in get_launch_description_from_python_launch_file(
        str(MAIN)).get_launch_arguments()}
    assert REQUIRED_ARGUMENTS <= names
    names = {a.name for a in get_launch_description_from_python_launch_file(
        str(TWO_CAMERAS)).get_launch_arguments()}
    assert {'cam1_image', 'cam2_image', 'video', 'cam1_template_dir'} <= names


def test_main_launch_defaults(walk):
    graph = walk(MAIN, {})
    assert set(graph.nodes) == {'/face_emotion', '/body_pose', '/gesture_emotion'}
    for name in graph.nodes:
        parameters = graph.parameters(name)
        assert parameters['autostart'] is True and parameters['use_sim_time'] is False
        assert graph.nodes[name]['environment']['FASTDDS_BUILTIN_TRANSPORTS'] == 'LARGE_DATA'
    assert graph.remappings('/face_emotion') == {'image': 'camera/image_raw'}
    assert graph.remappings('/body_pose') == {'image': 'camera/image_raw',
                                              'skeletons': 'skeletons'}
    assert graph.remappings('/gesture_emotion') == {'skeletons': 'skeletons'}
    assert graph.parameters('/gesture_emotion')['template_dir'] == ''  # the file's value
    # Scoped: a launch file that includes this one keeps its own environment.
    assert 'FASTDDS_BUILTIN_TRANSPORTS' not in os.environ


def test_main_launch_in_a_namespace(walk, monkeypatch):
    monkeypatch.setenv('FASTDDS_BUILTIN_TRANSPORTS', 'UDPv4')  # the user's choice is kept
    graph = walk(MAIN, {'namespace': 'cam2', 'video': 'true', 'rviz': 'true',
                        'autostart': 'false', 'use_sim_time': 'true',
                        'template_dir': '/data/templates'})
    assert set(graph.nodes) == {'/cam2/rviz2', '/cam2/video_source', '/cam2/face_emotion',
                                '/cam2/body_pose', '/cam2/gesture_emotion'}
    for name in set(graph.nodes) - {'/cam2/rviz2'}:
        parameters = graph.parameters(name)
        assert parameters['autostart'] is False and parameters['use_sim_time'] is True
        assert graph.nodes[name]['environment']['FASTDDS_BUILTIN_TRANSPORTS'] == 'UDPv4'
    assert graph.parameters('/cam2/gesture_emotion')['template_dir'] == '/data/templates'
    assert graph.remappings('/cam2/video_source') == {'image': 'camera/image_raw',
                                                      'camera_info': 'camera/camera_info'}


def test_main_launch_with_motion_capture_or_another_pose_source(walk):
    graph = walk(MAIN, {'motion': 'true', 'video': 'true', 'motion_clips': '/a.bvh, /clips',
                        'motion_filter': '*_walk_*'})
    assert set(graph.nodes) == {'/motion_player', '/gesture_emotion'}  # no images, no faces
    player = graph.parameters('/motion_player')
    assert player['clips'] == ['/a.bvh', '/clips'] and player['clip_filter'] == '*_walk_*'
    assert player['loop'] is True
    assert graph.remappings('/motion_player') == {'skeletons': 'skeletons'}
    graph = walk(MAIN, {'pose': 'false', 'skeletons': '/people/skeletons'})
    assert set(graph.nodes) == {'/face_emotion', '/gesture_emotion'}
    assert graph.remappings('/gesture_emotion') == {'skeletons': '/people/skeletons'}


def test_two_cameras(walk):
    graph = walk(TWO_CAMERAS, {'video': 'true', 'cam2_image': '/rear/image_raw'})
    assert set(graph.nodes) == {f'/{camera}/{name}' for camera in ('cam1', 'cam2')
                                for name in NODES if name != 'motion_player'}
    assert graph.remappings('/cam1/face_emotion') == {'image': 'camera/image_raw'}
    assert graph.remappings('/cam2/face_emotion') == {'image': '/rear/image_raw'}
    assert graph.remappings('/cam2/video_source')['image'] == '/rear/image_raw'
    folders = {graph.parameters(f'/{camera}/gesture_emotion')['template_dir']
               for camera in ('cam1', 'cam2')}
    assert len(folders) == 2, 'two gesture nodes on one template folder'
    assert os.environ.get('FASTDDS_BUILTIN_TRANSPORTS') is None  # the groups are scoped
