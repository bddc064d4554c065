#!/usr/bin/env python3
"""
Point the ROS 2 wheels' CMake files at this Python's headers instead of the wheel builder's.

The ROS 2 wheels from PyPI are built in a manylinux image, and their exported CMake targets
(share/<package>/cmake/*.cmake) name that image's include folders:

    /opt/python/cp311-cp311/include/python3.11
    /opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include

CMake refuses imported targets whose include folders do not exist, so building a package
that generates messages stops at configure time. This script rewrites the first path to
``sysconfig.get_paths()['include']`` and the whole numpy path to ``numpy.get_include()``
(numpy 1 and numpy 2 lay their headers out differently).

Run it with the Python of the environment that holds the wheels (it repairs sys.prefix unless
--prefix is given). It changes nothing on a second run, writes each file atomically and prints
what it changed.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
import re
import sys
import sysconfig
import tempfile

# The wheel builder's interpreter prefix, e.g. /opt/python/cp311-cp311.
BUILDER_PREFIX = r'/opt/python/cp3\d+-cp3\d+'
PYTHON_INCLUDE = re.compile(BUILDER_PREFIX + r'/include/python3\.\d+t?(?=[;"\s)]|$)')
NUMPY_INCLUDE = re.compile(
    BUILDER_PREFIX + r'/lib/python3\.\d+t?/site-packages/numpy/(?:_core|core)/include(?=[;"\s)]|$)'
)
ANY_BUILDER_PATH = re.compile(BUILDER_PREFIX + r'[^;"\s)]*')


def target_paths() -> tuple[str, str]:
    """Return this interpreter's C header folder and numpy's, as CMake-friendly strings."""
    python_include = sysconfig.get_paths()['include']
    try:
        import numpy
    except ImportError:
        sys.exit('repair_ros_cmake: numpy is not installed in this environment')
    numpy_include = numpy.get_include()
    if not Path(python_include, 'Python.h').is_file():
        print(f'repair_ros_cmake: warning: {python_include}/Python.h is missing; building '
              'messages needs the Python headers (Debian/Ubuntu: apt-get install python3-dev)',
              file=sys.stderr)
    return Path(python_include).as_posix(), Path(numpy_include).as_posix()


def candidate_files(prefix: Path) -> list[Path]:
    """Find the wheels' CMake files under prefix/share that name the builder's paths."""
    found = []
    for path in sorted(prefix.glob('share/*/cmake/*.cmake')):
        try:
            text = path.read_text(encoding='utf-8')
        except (OSError, UnicodeDecodeError):
            continue
        if re.search(BUILDER_PREFIX, text):
            found.append(path)
    return found


def write_atomically(path: Path, text: str) -> None:
    """Replace path's content in one rename, keeping its permissions."""
    mode = path.stat().st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
    try:
        with os.fdopen(fd, 'w', encoding='utf-8', newline='') as out:
            out.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def repair(prefix: Path, dry_run: bool = False) -> int:
    """Rewrite every candidate file; return the number of files changed."""
    python_include, numpy_include = target_paths()
    changed = 0
    for path in candidate_files(prefix):
        text = path.read_text(encoding='utf-8')
        new_text, n_numpy = NUMPY_INCLUDE.subn(lambda _: numpy_include, text)
        new_text, n_python = PYTHON_INCLUDE.subn(lambda _: python_include, new_text)
        rel = path.relative_to(prefix)
        for leftover in sorted(set(ANY_BUILDER_PATH.findall(new_text))):
            print(f'repair_ros_cmake: warning: {rel} still names {leftover}', file=sys.stderr)
        if new_text == text:
            continue
        if not dry_run:
            write_atomically(path, new_text)
        changed += 1
        print(f'repair_ros_cmake: {rel}: {n_python} Python include -> {python_include}, '
              f'{n_numpy} numpy include -> {numpy_include}')
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--prefix', type=Path, default=Path(sys.prefix),
                        help='install prefix of the ROS wheels (default: sys.prefix)')
    parser.add_argument('--dry-run', action='store_true', help='print, change nothing')
    args = parser.parse_args(argv)
    prefix = args.prefix.resolve()
    if not (prefix / 'share').is_dir():
        print(f'repair_ros_cmake: {prefix}/share does not exist; nothing to repair')
        return 0
    changed = repair(prefix, dry_run=args.dry_run)
    verb = 'would change' if args.dry_run else 'changed'
    print(f'repair_ros_cmake: {verb} {changed} file(s) under {prefix}/share')
    return 0


if __name__ == '__main__':
    sys.exit(main())
