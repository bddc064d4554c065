"""The package as ROS installs it: its executables, its package.xml and its licence."""
from __future__ import annotations

import os
from pathlib import Path
import subprocess

from ament_index_python.packages import get_package_prefix
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

#: The executables that CMakeLists.txt installs into lib/emorec_ros (``ros2 run`` finds them).
EXECUTABLES = ('video_source', 'face_emotion_node', 'gesture_emotion_node')


@pytest.mark.parametrize('name', EXECUTABLES)
def test_installed_executable_runs_with_the_interpreter_it_was_built_for(name: str) -> None:
    """
    Run the installed executable's interpreter from a shell without an activated venv.

    ``ros2 run`` executes the file, so its first line decides the interpreter. With
    ``#!/usr/bin/env python3`` a shell that only sourced the workspace found a python3 without
    the packages of .venv and failed with ModuleNotFoundError.
    """
    prefix = Path(get_package_prefix('emorec_ros'))
    executable = prefix / 'lib' / 'emorec_ros' / name
    assert executable.is_file(), f'{executable} missing: build the package (make setup)'
    assert os.access(executable, os.X_OK), f'{executable} is not executable'
    first_line, _, body = executable.read_text(encoding='utf-8').partition('\n')
    assert first_line.startswith('#!'), f'{executable} has no #! line'
    interpreter = first_line[2:].strip()
    assert ' ' not in interpreter, f'{executable}: {first_line!r} must name the interpreter only'
    assert Path(interpreter).is_absolute(), f'{executable}: {first_line!r} is not an absolute path'
    assert os.access(interpreter, os.X_OK), f'{executable}: {interpreter} is not an executable'

    source = REPO_ROOT / 'scripts' / name
    if source.is_file():  # a build from this checkout: the body is the script's, unchanged
        assert body == source.read_text(encoding='utf-8').partition('\n')[2], (
            f'{executable} differs from {source}: build again (make setup)')

    # What a shell that sourced the workspace's setup.bash has, and nothing else: no PATH to
    # find a venv's python, no VIRTUAL_ENV, no PYTHONSAFEPATH.
    env = {key: os.environ[key] for key in ('AMENT_PREFIX_PATH', 'LD_LIBRARY_PATH', 'PYTHONPATH')
           if key in os.environ}
    env['PATH'] = '/usr/bin:/bin'
    code = ('import emorec_ros, emorec_ros.msg, rclpy, sys; '
            'print(emorec_ros.__file__); print(sys.executable)')
    result = subprocess.run([interpreter, '-c', code], env=env, cwd='/', capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, (
        f'{interpreter} (the #! line of {executable}) cannot import emorec_ros.msg and rclpy in '
        f'a shell that only sourced the workspace:\n{result.stderr[-2000:]}')
    module_file = Path(result.stdout.splitlines()[0]).parent
    assert prefix in module_file.parents, (
        f'{interpreter} imports emorec_ros from {module_file}, not from {prefix}')
