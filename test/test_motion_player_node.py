"""
The motion_player node in its own process, playing BVH clips that the tests write.

The clips are a small skeleton with the Bandai-Namco joint names, waving its arms, generated
here. The node is configured and activated over its lifecycle services once this test's
subscriptions see its publishers, so that no frame is published before anyone listens.
"""
from __future__ import annotations

import math
from pathlib import Path
import tarfile
import threading

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from emorec_ros.gesture.skeleton import JOINT_INDEX, JOINTS
from emorec_ros.msg import SkeletonArray
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
import numpy as np
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.qos import DurabilityPolicy, QoSProfile
from rclpy.time import Time
from sensor_msgs.msg import Image
from std_msgs.msg import String

STARTUP_S = 60.0
NODE = '/motion_player'

# name, parent, offset (cm): a person 1.7 m tall facing +Z, Y up (the Bandai-Namco axes), with
# the Bandai-Namco names of the joints we read and a few others.
BONES = (
    ('Hips', None, (0, 95, 0)), ('Spine', 'Hips', (0, 12, 0)), ('Chest', 'Spine', (0, 15, 0)),
    ('Neck', 'Chest', (0, 22, 0)), ('Head', 'Neck', (0, 10, 0)),
    ('UpperArm_L', 'Chest', (18, 18, 0)), ('LowerArm_L', 'UpperArm_L', (0, -28, 0)),
    ('Hand_L', 'LowerArm_L', (0, -25, 0)),
    ('UpperArm_R', 'Chest', (-18, 18, 0)), ('LowerArm_R', 'UpperArm_R', (0, -28, 0)),
    ('Hand_R', 'LowerArm_R', (0, -25, 0)),
    ('UpperLeg_L', 'Hips', (10, 0, 0)), ('LowerLeg_L', 'UpperLeg_L', (0, -45, 0)),
    ('Foot_L', 'LowerLeg_L', (0, -45, 0)),
    ('UpperLeg_R', 'Hips', (-10, 0, 0)), ('LowerLeg_R', 'UpperLeg_R', (0, -45, 0)),
    ('Foot_R', 'LowerLeg_R', (0, -45, 0)),
)


def synthetic_bvh(frames: int, frame_time: float, without: tuple[str, ...] = ()) -> str:
    """
    Return a BVH text of ``frames`` frames: the arms wave sideways, the root walks forward.

    The joints in ``without`` (and their children) are left out.
    """
    bones = [b for b in BONES if b[0] not in without and b[1] not in without]
    children: dict[str | None, list[tuple]] = {}
    for bone in bones:
        children.setdefault(bone[1], []).append(bone)
    lines = ['HIERARCHY']

    def write(bone: tuple, depth: int) -> None:
        pad = '  ' * depth
        name, parent, offset = bone
        lines.append(f'{pad}{"ROOT" if parent is None else "JOINT"} {name}')
        lines.append(f'{pad}{{')
        lines.append(f'{pad}  OFFSET {offset[0]} {offset[1]} {offset[2]}')
        position = '6 Xposition Yposition Zposition' if parent is None else '3'
        lines.append(f'{pad}  CHANNELS {position} Zrotation Xrotation Yrotation')
        for child in children.get(name, []):
            write(child, depth + 1)
        if name not in children:
            lines.extend([f'{pad}  End Site', f'{pad}  {{', f'{pad}    OFFSET 0 -5 0',
                          f'{pad}  }}'])
        lines.append(f'{pad}}}')

    write(children[None][0], 0)
    lines += ['MOTION', f'Frames: {frames}', f'Frame Time: {frame_time}']
    for i in range(frames):
        swing = 60.0 * math.sin(2 * math.pi * i / max(frames, 2))
        values = []
        for name, parent, offset in bones:
            if parent is None:  # position channels replace the root's offset
                values += [offset[0], offset[1], offset[2] + 2.0 * i]
            rz = {'UpperArm_L': swing, 'UpperArm_R': -swing}.get(name, 0.0)
            values += [rz, 0.0, 0.0]
        lines.append(' '.join(f'{v:.4f}' for v in values))
    return '\n'.join(lines) + '\n'


class Player:
    """A motion_player process, what it publishes, and its lifecycle and parameter services."""

    def __init__(self, start_node, probe, wait, **params) -> None:
        self.probe, self.wait = probe, wait
        self.node = start_node('motion_player', {'autostart': False, **params})
        self._lock = threading.Lock()
        self.arrays: list[SkeletonArray] = []
        self.clips: list[str] = []
        self.images: list[Image] = []
        self.subscription = probe.create_subscription(
            SkeletonArray, 'skeletons', self._array, QoSProfile(depth=1000))
        probe.create_subscription(String, f'{NODE}/clip', self._clip, QoSProfile(
            depth=100, durability=DurabilityPolicy.TRANSIENT_LOCAL))
        self.change = probe.create_client(ChangeState, f'{NODE}/change_state')
        self.set_params = probe.create_client(SetParameters, f'{NODE}/set_parameters')
        for client in (self.change, self.set_params):
            assert client.wait_for_service(timeout_sec=STARTUP_S), self.node.log()

    def _array(self, msg: SkeletonArray) -> None:
        with self._lock:
            self.arrays.append(msg)

    def _clip(self, msg: String) -> None:
        with self._lock:
            self.clips.append(msg.data)

    def _image(self, msg: Image) -> None:
        with self._lock:
            self.images.append(msg)

    def watch_debug_image(self) -> None:
        self.debug = self.probe.create_subscription(Image, f'{NODE}/debug_image', self._image,
                                                    QoSProfile(depth=10))

    def call(self, client, request, timeout: float = STARTUP_S):
        future = client.call_async(request)
        assert self.wait(future.done, timeout), f'no answer from {client.srv_name}'
        return future.result()

    def start(self) -> None:
        """Configure and activate once this process's subscription sees the publisher."""
        assert self.wait(lambda: self.subscription.get_publisher_count() > 0, STARTUP_S)
        self.transition(Transition.TRANSITION_CONFIGURE)
        self.transition(Transition.TRANSITION_ACTIVATE)

    def transition(self, transition: int) -> None:
        request = ChangeState.Request(transition=Transition(id=transition))
        assert self.call(self.change, request).success, self.node.log()

    def set_double(self, name: str, value: float) -> None:
        parameter = Parameter(name=name, value=ParameterValue(
            type=ParameterType.PARAMETER_DOUBLE, double_value=value))
        result = self.call(self.set_params, SetParameters.Request(parameters=[parameter]))
        assert result.results[0].successful, result.results[0].reason

    def received(self) -> list[SkeletonArray]:
        with self._lock:
            return list(self.arrays)


def write_archive(path: Path, members: dict[str, str]) -> Path:
    """Write a .tar.xz of text files (member name -> text)."""
    folder = path.parent / 'members'
    folder.mkdir()
    with tarfile.open(path, 'w:xz') as archive:
        for name, text in members.items():
            (folder / Path(name).name).write_text(text)
            archive.add(folder / Path(name).name, arcname=name)
    return path


def test_every_frame_of_each_clip_in_order_at_the_clip_rate(start_node, probe, wait, tmp_path):
    # Two clips in an archive, one in a folder; the filter leaves out one of each.
    archive = write_archive(tmp_path / 'clips.tar.xz', {
        'data/wave_b.bvh': synthetic_bvh(12, 0.04),
        'data/other_x.bvh': synthetic_bvh(5, 0.04),
        'data/README.md': 'not a clip'})
    folder = tmp_path / 'folder'
    folder.mkdir()
    (folder / 'wave_a.bvh').write_text(synthetic_bvh(20, 0.04))
    (folder / 'skip.bvh').write_text(synthetic_bvh(5, 0.04))
    player = Player(start_node, probe, wait, clips=[str(archive), str(folder)],
                    clip_filter='wave_*', speed=2.0, frame_id='mocap', image_width=320,
                    image_height=240)
    player.watch_debug_image()
    player.start()
    assert player.node.wait_for_log('done: played 2 clips, 32 frames', 60.0), player.node.log()
    assert wait(lambda: len(player.received()) >= 32, 10.0)
    arrays = player.received()
    assert len(arrays) == 32  # every frame, none twice
    assert [a.skeletons[0].id for a in arrays] == ['person1'] * 20 + ['person2'] * 12
    assert all(len(a.skeletons) == 1 and a.header.frame_id == 'mocap' for a in arrays)
    for skeleton in (a.skeletons[0] for a in arrays):
        assert list(skeleton.joint_names) == list(JOINTS)
        assert np.allclose(skeleton.confidence, 1.0)  # all in view at 3 m
        assert all(0 <= x < 320 for x in skeleton.x) and all(0 <= y < 240 for y in skeleton.y)
        # The person faces the camera: its left shoulder is on the right of the image.
        assert skeleton.x[JOINT_INDEX['left_shoulder']] > skeleton.x[JOINT_INDEX['right_shoulder']]
    assert wait(lambda: len(player.clips) == 2, 10.0)
    assert player.clips == ['wave_a person1', 'wave_b person2']
    log = player.node.log()
    assert 'clip wave_a: 20 frames at 25 fps (0.8 s) as person1' in log
    assert 'clip wave_b: 12 frames at 25 fps (0.5 s) as person2' in log
    # The clip's 25 fps at speed 2: 20 ms between stamps. A late tick may stretch one interval
    # but never crowd frames together.
    stamps = np.array([Time.from_msg(a.header.stamp).nanoseconds for a in arrays]) * 1e-9
    intervals = np.diff(stamps)
    assert np.median(intervals) == np.clip(np.median(intervals), 0.015, 0.03), intervals
    assert len(arrays) - 1 <= 50.0 * (stamps[-1] - stamps[0]) * 1.1, intervals
    # The arms wave: the wrists move in the image.
    wrist = np.array([a.skeletons[0].y[JOINT_INDEX['left_wrist']] for a in arrays[:20]])
    assert np.ptp(wrist) > 10.0
    with player._lock:
        images = list(player.images)
    assert images, 'no debug image'
    assert all((i.width, i.height, i.encoding) == (320, 240, 'bgr8') for i in images)


def shoulder_spread(arrays: list[SkeletonArray]) -> float:
    """Return the median horizontal distance between the shoulders (pixels)."""
    return float(np.median([abs(a.skeletons[0].x[JOINT_INDEX['left_shoulder']]
                                - a.skeletons[0].x[JOINT_INDEX['right_shoulder']])
                            for a in arrays]))


def test_loop_pause_and_yaw(start_node, probe, wait, tmp_path):
    clip = tmp_path / 'short.bvh'
    clip.write_text(synthetic_bvh(10, 1 / 30))
    statuses: list[DiagnosticStatus] = []
    probe.create_subscription(DiagnosticArray, '/diagnostics', lambda m: statuses.extend(m.status),
                              QoSProfile(depth=50))
    player = Player(start_node, probe, wait, clips=[str(clip)], loop=True)
    player.start()
    # Each play of the clip is a new person.
    assert wait(lambda: len(player.received()) >= 30, 30.0), player.node.log()
    front = player.received()
    ids = [a.skeletons[0].id for a in front[:30]]
    assert ids == ['person1'] * 10 + ['person2'] * 10 + ['person3'] * 10
    assert wait(lambda: len(player.clips) >= 3, 10.0)
    assert player.clips[:3] == ['short person1', 'short person2', 'short person3']
    # Paused, the camera turned to the person's side, and on again: the play goes on from the
    # frame it paused at, filmed from the side, where the shoulders almost line up.
    player.transition(Transition.TRANSITION_DEACTIVATE)
    wait(lambda: False, 2.0)  # what was on its way has come
    count = len(player.received())
    assert not wait(lambda: len(player.received()) > count, 0.5)  # paused
    paused_person = player.received()[-1].skeletons[0].id
    player.set_double('yaw_deg', 90.0)
    player.transition(Transition.TRANSITION_ACTIVATE)
    assert wait(lambda: len(player.received()) >= count + 20, 30.0)
    side = player.received()[count:]
    assert shoulder_spread(side) < 0.2 * shoulder_spread(front), (shoulder_spread(side),
                                                                  shoulder_spread(front))
    assert shoulder_spread(side[:1]) < 0.2 * shoulder_spread(front)  # at once, mid-play too
    frames_of_that_play = [a for a in player.received() if a.skeletons[0].id == paused_person]
    assert len(frames_of_that_play) == 10
    assert 'done' not in player.node.log()

    def playing() -> dict[str, str] | None:
        for status in list(statuses):
            values = {v.key: v.value for v in status.values}
            # Before the first frame (diagnostics tick from start-up) the clip is still ''.
            if status.name == f'emorec_ros: {NODE}' and values.get('clip'):
                return values
        return None

    assert wait(lambda: playing() is not None, 10.0)
    values = playing()
    assert values['clip'] == 'short' and values['person'].startswith('person')
    assert values['target rate (Hz)'] == '30.0' and int(values['frames published']) > 0


def test_bad_clips_are_refused_at_configure_with_the_reason(start_node, tmp_path):
    corrupt = tmp_path / 'corrupt.bvh'
    corrupt.write_text(synthetic_bvh(4, 0.04).replace('Frames: 4', 'Frames: 9'))
    handless = tmp_path / 'handless.bvh'
    handless.write_text(synthetic_bvh(4, 0.04, without=('Hand_L', 'Hand_R')))
    good = tmp_path / 'good.bvh'
    good.write_text(synthetic_bvh(4, 0.04))
    node = start_node('motion_player', {'clips': [str(tmp_path / 'missing.bvh'), str(corrupt),
                                                  str(handless), str(good)]})
    assert node.process.wait(timeout=STARTUP_S) == 1, node.log()
    log = node.log()
    assert f'clips: {tmp_path / "missing.bvh"}: no such file' in log
    assert f'clips: {corrupt}: MOTION: ' in log
    assert (f'clips: {handless}: lacks the joints Hand_L, Hand_R that the joint map names for '
            'left_wrist, right_wrist') in log
    assert 'Traceback' not in log
    # Nothing matching the filter is refused too.
    node = start_node('motion_player', {'clips': [str(good)], 'clip_filter': 'walk_*'})
    assert node.process.wait(timeout=STARTUP_S) == 1, node.log()
    assert f"clips: no clip's name matches 'walk_*' in {good}" in node.log()
