# Use the environment that tools/setup.sh (make setup) made, in bash or zsh:
#
#     source tools/env.sh
#
# It activates .venv and sources install/setup.bash (setup.zsh in zsh). Python then imports
# emorec_ros from install/, where the generated emorec_ros.msg sits beside our modules
# (they are symlinks to the sources, so edits take effect without a rebuild).
#
# PYTHONSAFEPATH=1 keeps Python from putting the current folder (or a script's folder) first on
# sys.path: otherwise `python -c ...` or `python -m ...` run from the repository root would
# import ./emorec_ros, which lacks the generated messages.

if [ -n "${ZSH_VERSION:-}" ]; then
  eval '_emorec_env_file=${(%):-%x}'
  _emorec_shell=zsh
else
  _emorec_env_file=${BASH_SOURCE[0]}
  _emorec_shell=bash
fi
_emorec_root=$(cd "$(dirname "$_emorec_env_file")/.." && pwd)

if [ ! -f "$_emorec_root/.venv/bin/activate" ] || [ ! -f "$_emorec_root/install/setup.$_emorec_shell" ]; then
  echo "tools/env.sh: no environment yet in $_emorec_root; run 'make setup' first" >&2
  unset _emorec_env_file _emorec_shell _emorec_root
  return 1
fi

. "$_emorec_root/.venv/bin/activate"
# Without a ROS install, the ROS wheels in .venv are the underlay: make it findable by
# ament_index (package share folders, e.g. std_msgs).
if [ -d "$_emorec_root/.venv/share/ament_index" ]; then
  case ":${AMENT_PREFIX_PATH:-}:" in
    *":$_emorec_root/.venv:"*) ;;
    *) export AMENT_PREFIX_PATH="$_emorec_root/.venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}" ;;
  esac
fi
. "$_emorec_root/install/setup.$_emorec_shell"
export PYTHONSAFEPATH=1
# FastDDS's default transports lose most images over about 500 kB (UDP fragments, shared-memory
# segments of 512 KiB); its LARGE_DATA set (shared memory with 8.5 MB segments on this host, TCP
# between hosts) delivers camera-size images. It takes effect only when
# ROS_AUTOMATIC_DISCOVERY_RANGE is unset, SUBNET or SYSTEM_DEFAULT: with LOCALHOST, rmw_fastrtps
# installs its own transports instead. Images larger than the sender's segment (4K bgr8, 25 MB)
# need larger segments (twice sockets_size), e.g.
# FASTDDS_BUILTIN_TRANSPORTS='LARGE_DATA?sockets_size=16MB' for 32 MB segments.
# Keep a choice made before sourcing this file.
export FASTDDS_BUILTIN_TRANSPORTS="${FASTDDS_BUILTIN_TRANSPORTS:-LARGE_DATA}"

unset _emorec_env_file _emorec_shell _emorec_root
