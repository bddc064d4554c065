"""The package as ROS installs it: its executables, its package.xml and its licence."""
from __future__ import annotations

import ast
import hashlib
import os
from pathlib import Path
import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

from ament_index_python.packages import (get_package_prefix, get_package_share_directory,
                                         get_packages_with_prefixes)
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

#: The executables that CMakeLists.txt installs into lib/emorec_ros (``ros2 run`` finds them).
EXECUTABLES = ('video_source', 'face_emotion_node', 'gesture_emotion_node', 'body_pose_node',
               'motion_player')

#: SPDX identifier -> SHA-256 of its standard licence text, as the licence's publisher has it
#: (https://www.apache.org/licenses/LICENSE-2.0.txt).
LICENSE_TEXTS = {
    'Apache-2.0': 'cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30',
}

#: ROS packages the code may import, also those that are not installed on this machine
#: (launch, launch_ros and cv_bridge come with a ROS install, not as wheels). Any other module
#: named like an installed ROS package counts as one too.
ROS_PACKAGES = frozenset({
    'ament_index_python', 'builtin_interfaces', 'cv_bridge', 'diagnostic_msgs', 'launch',
    'launch_ros', 'lifecycle_msgs', 'rcl_interfaces', 'rclpy', 'sensor_msgs', 'std_msgs',
    'std_srvs', 'visualization_msgs',
})

#: Python libraries that rosdep installs: module -> rosdep key.
ROSDEP_KEYS = {
    'cv2': 'python3-opencv',
    'matplotlib': 'python3-matplotlib',
    'numpy': 'python3-numpy',
    'PIL': 'python3-pil',
    'scipy': 'python3-scipy',
    'sklearn': 'python3-sklearn',
    'yaml': 'python3-yaml',
}

#: Python libraries that come from pip only (requirements files): module -> distribution.
PIP_ONLY = {
    'ai_edge_litert': 'ai-edge-litert',
    'keras': 'keras',
    'mediapipe': 'mediapipe',
    'numba': 'numba',
    'tensorflow': 'tensorflow-cpu',
    'tslearn': 'tslearn',
}

#: Imported modules that put another package's interfaces on the node's API.
IMPLIES = {
    'rclpy.lifecycle': 'lifecycle_msgs',  # a lifecycle node serves lifecycle_msgs services
}

#: Declared for the build, the tests or the generated interfaces, not imported by our code.
NOT_IMPORTED = frozenset({'rosidl_default_runtime'})

#: The requirement files that name the pip-only libraries: what runs on a robot, and what
#: training adds.
RUNTIME_REQUIREMENTS, TRAIN_REQUIREMENTS = 'requirements.txt', 'requirements-train.txt'
REQUIREMENT_FILES = (RUNTIME_REQUIREMENTS, TRAIN_REQUIREMENTS)

#: What runs on a robot (the executables, the nodes, the launch file, the demo, the face and
#: gesture code they use); with every emorec_ros module they import, it must not need the
#: training requirements.
RUNTIME_SOURCES = ('scripts/*', 'launch/*.py', 'emorec_ros/nodes/*.py', 'emorec_ros/cli/demo.py',
                   'emorec_ros/face/classify.py', 'emorec_ros/face/detect.py',
                   'emorec_ros/face/pipeline.py', 'emorec_ros/gesture/*.py')

#: Modules that only training needs (requirements-train.txt).
TRAINING_ONLY = frozenset({'keras', 'tensorflow'})


def _source_files() -> list[Path]:
    files = sorted((REPO_ROOT / 'emorec_ros').rglob('*.py'))
    files += sorted((REPO_ROOT / 'launch').glob('*.py'))
    files += sorted(path for path in (REPO_ROOT / 'scripts').iterdir() if path.is_file())
    return [path for path in files if '__pycache__' not in path.parts]


def _package_of(path: Path) -> str | None:
    """Return the package that a source file's module is in (None outside emorec_ros)."""
    relative = path.relative_to(REPO_ROOT)
    if relative.parts[0] != 'emorec_ros':
        return None
    return '.'.join(relative.parts[:-1])


def _imported_modules(path: Path, package: str | None = None) -> set[str]:
    """
    Return the absolute module names that a file imports, wherever in the file.

    ``from a.b import c`` gives a.b and a.b.c (c may be a module), and
    ``importlib.import_module('a.b')`` or ``import_module(f'a.b.{name}')`` gives a.b.
    Relative imports are resolved against ``package``, and left out without one.
    """
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'), str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                base = node.module
            elif package is None or node.level - 1 >= len(package.split('.')):
                continue
            else:
                parts = package.split('.')[:len(package.split('.')) - (node.level - 1)]
                base = '.'.join(parts + ([node.module] if node.module else []))
            if not base:
                continue
            modules.add(base)
            modules.update(f'{base}.{alias.name}' for alias in node.names)
        elif (isinstance(node, ast.Call) and node.args
              and getattr(node.func, 'attr', getattr(node.func, 'id', None)) == 'import_module'):
            argument = node.args[0]
            if isinstance(argument, ast.JoinedStr):  # the text before the first {}
                head = argument.values[0] if argument.values else None
                argument = head if isinstance(head, ast.Constant) else None
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                name = argument.value.strip('.')
                if name:
                    modules.add(name)
    return modules


def _third_party_imports() -> dict[str, set[str]]:
    """Return each imported top-level module that is not stdlib nor emorec_ros -> its files."""
    imports: dict[str, set[str]] = {}
    for path in _source_files():
        for module in _imported_modules(path, _package_of(path)):
            top = module.partition('.')[0]
            if top in sys.stdlib_module_names or top == 'emorec_ros':
                continue
            for name in (top, module):
                imports.setdefault(name, set()).add(str(path.relative_to(REPO_ROOT)))
    return imports


def _module_file(module: str) -> Path | None:
    """Return the source file of an emorec_ros module, or None (e.g. generated msg)."""
    base = REPO_ROOT.joinpath(*module.split('.'))
    for path in (base.with_suffix('.py'), base / '__init__.py'):
        if path.is_file():
            return path
    return None


def _runtime_imports() -> dict[str, set[str]]:
    """
    Return the third-party modules that the runtime code can import -> the importing files.

    Follows every emorec_ros import of RUNTIME_SOURCES, also those inside functions, and the
    ``__init__.py`` of the packages on the way.
    """
    pending = [path for pattern in RUNTIME_SOURCES for path in sorted(REPO_ROOT.glob(pattern))
               if path.is_file()]
    seen: set[Path] = set()
    imports: dict[str, set[str]] = {}
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        for module in _imported_modules(path, _package_of(path)):
            top = module.partition('.')[0]
            if top == 'emorec_ros':
                parts = module.split('.')
                for end in range(1, len(parts) + 1):
                    found = _module_file('.'.join(parts[:end]))
                    if found is not None:
                        pending.append(found)
            elif top not in sys.stdlib_module_names:
                imports.setdefault(top, set()).add(str(path.relative_to(REPO_ROOT)))
    return imports


def _package_xml_dependencies() -> dict[str, set[str]]:
    """Return the dependency tag -> the keys it declares in package.xml."""
    root = ElementTree.parse(REPO_ROOT / 'package.xml').getroot()
    tags: dict[str, set[str]] = {}
    for element in root:
        if isinstance(element.tag, str) and element.tag.endswith('depend'):
            tags.setdefault(element.tag, set()).add((element.text or '').strip())
    return tags


def _interface_dependencies() -> set[str]:
    """Return the packages whose types the .msg and .srv files use (``pkg/Type`` fields)."""
    packages = set()
    for path in sorted((REPO_ROOT / 'msg').glob('*.msg')) + sorted(
            (REPO_ROOT / 'srv').glob('*.srv')):
        for line in path.read_text(encoding='utf-8').splitlines():
            match = re.match(r'\s*([a-z][a-z0-9_]*)/[A-Z]\w*', line)
            if match:
                packages.add(match.group(1))
    return packages


def _requirement_names(path: Path) -> set[str]:
    """Return the normalised distribution names that a requirements file lists."""
    names = set()
    if path.is_file():
        for line in path.read_text(encoding='utf-8').splitlines():
            match = re.match(r'\s*([A-Za-z0-9][A-Za-z0-9._-]*)', line.partition('#')[0])
            if match:
                names.add(re.sub(r'[-_.]+', '-', match.group(1)).lower())
    return names


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


def test_package_xml_declares_what_the_code_imports() -> None:
    """
    Check package.xml against the imports, both ways, so that rosdep installs what is needed.

    Every imported ROS package and rosdep-installed library is declared, every pip-only library
    is named in a requirements file, and every declared dependency is imported (or implied by
    an import, or used by the interfaces), except the build tools and the test dependencies.
    """
    tags = _package_xml_dependencies()
    run_keys = tags.get('depend', set()) | tags.get('exec_depend', set())
    build_keys = tags.get('depend', set()) | tags.get('build_depend', set())
    declared = run_keys | build_keys | tags.get('build_export_depend', set())
    installed_ros = set(get_packages_with_prefixes()) - {'emorec_ros'}
    requirements = set().union(*(_requirement_names(REPO_ROOT / name)
                                 for name in REQUIREMENT_FILES))

    problems = []
    used: set[str] = set()
    imports = _third_party_imports()
    for module, files in sorted(imports.items()):
        where = ', '.join(sorted(files))
        if module in IMPLIES:
            used.add(IMPLIES[module])
            if IMPLIES[module] not in run_keys:
                problems.append(f'{module} ({where}) needs <exec_depend>{IMPLIES[module]}'
                                '</exec_depend>')
        if '.' in module:
            continue
        if module in ROS_PACKAGES or module in installed_ros:
            key = module
        elif module in ROSDEP_KEYS:
            key = ROSDEP_KEYS[module]
        elif module in PIP_ONLY:
            if PIP_ONLY[module] not in requirements:
                problems.append(f'{module} ({where}) is pip-only: name {PIP_ONLY[module]} in '
                                f'{" or ".join(REQUIREMENT_FILES)}')
            continue
        else:
            problems.append(f'{module} ({where}): unknown; add it to ROS_PACKAGES, ROSDEP_KEYS '
                            'or PIP_ONLY in test/test_package.py, and declare it')
            continue
        used.add(key)
        if key not in run_keys:
            problems.append(f'{module} ({where}) is imported: declare <exec_depend>{key}'
                            '</exec_depend> (or <depend>) in package.xml')

    for package in sorted(_interface_dependencies()):
        used.add(package)
        if package not in build_keys:
            problems.append(f'msg/srv use {package}: declare <depend>{package}</depend>')

    exempt = NOT_IMPORTED | tags.get('buildtool_depend', set()) | tags.get('test_depend', set())
    for key in sorted(declared - used - exempt):
        problems.append(f'package.xml declares {key}, which nothing imports: remove it')
    assert not problems, '\n'.join(problems)


def test_import_scan_sees_every_kind_of_import(tmp_path: Path) -> None:
    source = tmp_path / 'example.py'
    source.write_text(
        'import a.b as c\n'
        'from d.e import f\n'
        'from . import g\n'
        'def h(name):\n'
        '    import i\n'
        "    importlib.import_module(f'j.k.{name}')\n"
        "    return import_module('l')\n")
    assert _imported_modules(source) == {'a.b', 'd.e', 'd.e.f', 'i', 'j.k', 'l'}
    assert _imported_modules(source, 'p.q') == {'a.b', 'd.e', 'd.e.f', 'i', 'j.k', 'l', 'p.q',
                                                'p.q.g'}


def test_runtime_code_needs_only_the_runtime_requirements() -> None:
    """
    Check that the nodes never import TensorFlow, and that requirements.txt is enough for them.

    A robot installs requirements.txt only; requirements-train.txt (TensorFlow, about 1 GB)
    adds what training needs.
    """
    imports = _runtime_imports()
    assert 'rclpy' in imports and 'cv2' in imports  # the walk reached the nodes
    training = {module: sorted(files) for module, files in imports.items()
                if module in TRAINING_ONLY}
    assert not training, f'runtime code imports training-only modules: {training}'
    runtime_names = _requirement_names(REPO_ROOT / RUNTIME_REQUIREMENTS)
    train_names = _requirement_names(REPO_ROOT / TRAIN_REQUIREMENTS)
    for module, files in sorted(imports.items()):
        if module in PIP_ONLY:
            assert PIP_ONLY[module] in runtime_names, (
                f'{module} ({", ".join(sorted(files))}) runs on robots: name '
                f'{PIP_ONLY[module]} in {RUNTIME_REQUIREMENTS}')
    for module in sorted(TRAINING_ONLY):
        assert PIP_ONLY[module] in train_names, f'{TRAIN_REQUIREMENTS} lacks {PIP_ONLY[module]}'
        assert PIP_ONLY[module] not in runtime_names, (
            f'{PIP_ONLY[module]} is for training: move it to {TRAIN_REQUIREMENTS}')
    assert not {'tensorflow', 'tensorflow-cpu'} & runtime_names


def test_importing_the_nodes_leaves_tensorflow_out() -> None:
    code = ('import sys\n'
            'import emorec_ros.nodes.face_emotion, emorec_ros.nodes.gesture_emotion\n'
            'import emorec_ros.nodes.video_source\n'
            "loaded = sorted({'tensorflow', 'keras'} & set(sys.modules))\n"
            "assert not loaded, f'{loaded} imported'\n")
    result = subprocess.run([sys.executable, '-c', code], cwd='/', capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_license_file_is_the_licence_that_package_xml_names() -> None:
    root = ElementTree.parse(REPO_ROOT / 'package.xml').getroot()
    licenses = [(element.text or '').strip() for element in root.findall('license')]
    assert len(licenses) == 1, f'package.xml names {licenses}: one <license> expected'
    spdx = licenses[0]
    assert spdx in LICENSE_TEXTS, f'{spdx}: add the SHA-256 of its standard text to LICENSE_TEXTS'
    text = (REPO_ROOT / 'LICENSE').read_bytes()
    assert hashlib.sha256(text).hexdigest() == LICENSE_TEXTS[spdx], (
        f'LICENSE is not the full, unmodified {spdx} text that package.xml names')
    setup_py = (REPO_ROOT / 'setup.py').read_text(encoding='utf-8')
    assert f"license='{spdx}'" in setup_py, f'setup.py must name the licence {spdx} too'
    installed = Path(get_package_share_directory('emorec_ros')) / 'LICENSE'
    assert installed.read_bytes() == text, f'{installed} differs: build again (make setup)'
