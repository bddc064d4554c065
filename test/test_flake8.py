# Copyright 2017 Open Source Robotics Foundation, Inc.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

from pathlib import Path

from ament_flake8.main import main_with_errors
import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The Python of the package, named one by one: the repository root also holds .venv/, build/
#: and install/, which are not ours to lint.
FOLDERS = ('emorec_ros', 'test', 'bench', 'tools', 'launch', 'scripts')


def lint_paths() -> list[str]:
    """Return the folders to lint, and the scripts by name: flake8 finds only *.py in folders."""
    scripts = sorted(p for p in (ROOT / 'scripts').iterdir() if p.is_file())
    return list(FOLDERS) + [p.relative_to(ROOT).as_posix() for p in scripts]


@pytest.mark.flake8
@pytest.mark.linter
def test_flake8(monkeypatch):
    # ament_flake8 looks for AMENT_IGNORE files under the working folder: make it the root.
    monkeypatch.chdir(ROOT)
    rc, errors = main_with_errors(argv=lint_paths())
    assert rc == 0, \
        'Found %d code style errors / warnings:\n' % len(errors) + \
        '\n'.join(errors)
