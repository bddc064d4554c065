# Copyright 2015 Open Source Robotics Foundation, Inc.
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
import shutil

from ament_pep257.main import main
import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The Python of the package, named one by one: the repository root also holds .venv/, build/
#: and install/, which are not ours to lint.
FOLDERS = ('emorec_ros', 'test', 'bench', 'tools', 'launch', 'scripts')


@pytest.mark.linter
@pytest.mark.pep257
def test_pep257(monkeypatch):
    monkeypatch.chdir(ROOT)  # for short file names in the report
    rc = main(argv=list(FOLDERS))
    assert rc == 0, 'Found code style errors / warnings'


@pytest.mark.linter
@pytest.mark.pep257
def test_pep257_scripts(tmp_path):
    # ament_pep257 checks *.py files only, even when a file is named: check copies of the
    # scripts (Python without the suffix) under that name.
    for script in sorted((ROOT / 'scripts').iterdir()):
        if script.is_file():
            shutil.copyfile(script, tmp_path / f'{script.name}.py')
    rc = main(argv=[str(tmp_path)])
    assert rc == 0, 'Found code style errors / warnings in scripts/'
