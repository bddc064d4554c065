#!/usr/bin/env bash
# Run the test suite (arguments go to pytest) in the project environment, with ROS traffic kept
# on this host and on a ROS domain that no other run of this script on the host is using, so
# that parallel runs (several checkouts, CI jobs) do not see each other's nodes and topics.
set -eo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=tools/env.sh
. tools/env.sh

# Discovery stays on this host. With LOCALHOST discovery, rmw_fastrtps replaces FastDDS's builtin
# transports with its own set, shared memory (512 KiB segments) and UDPv4, so
# FASTDDS_BUILTIN_TRANSPORTS (LARGE_DATA from env.sh, or the caller's) has no effect here. On that
# set most best-effort images over about 500 kB are lost (the subscriber's message_lost event
# counts them): tests publish smaller images, or publish again until answered, and assert on
# shares of frames, not on every frame.
# EMOREC_TEST_DISCOVERY_RANGE=SUBNET runs the tests on the transports that ship (launch file,
# env.sh: LARGE_DATA), with discovery by multicast on the local network: the domain lock below
# only keeps apart the runs on this host.
export ROS_AUTOMATIC_DISCOVERY_RANGE="${EMOREC_TEST_DISCOVERY_RANGE:-LOCALHOST}"
case $ROS_AUTOMATIC_DISCOVERY_RANGE in
  LOCALHOST | SUBNET | SYSTEM_DEFAULT) ;;
  *)
    echo "run_tests: EMOREC_TEST_DISCOVERY_RANGE must be LOCALHOST, SUBNET or SYSTEM_DEFAULT" >&2
    exit 2
    ;;
esac
unset ROS_LOCALHOST_ONLY ROS_STATIC_PEERS

# Claim a domain id (1-101, the range that is safe on Linux; 0 is everybody's default) by
# holding a lock on it until this script exits.
domain=''
for id in $(shuf -i 1-101); do
  lock="${TMPDIR:-/tmp}/emorec_ros-ros-domain-$id.lock"
  { exec {lock_fd}>>"$lock"; } 2>/dev/null || continue
  if flock -n "$lock_fd"; then
    domain=$id
    break
  fi
  exec {lock_fd}>&-
done
if [[ -z $domain ]]; then
  echo 'run_tests: every ROS domain id 1-101 is locked by another test run' >&2
  exit 1
fi
export ROS_DOMAIN_ID=$domain
if [[ $ROS_AUTOMATIC_DISCOVERY_RANGE == LOCALHOST ]]; then
  transports='rmw_fastrtps localhost set (shared memory, UDPv4)'
else
  transports=FASTDDS_BUILTIN_TRANSPORTS=$FASTDDS_BUILTIN_TRANSPORTS
fi
echo "run_tests: ROS_DOMAIN_ID=$ROS_DOMAIN_ID" \
  "ROS_AUTOMATIC_DISCOVERY_RANGE=$ROS_AUTOMATIC_DISCOVERY_RANGE, transports: $transports"

# The pytest executable, not `python -m pytest`: that would put the current folder (the
# repository root, whose emorec_ros lacks the generated messages) first on sys.path.
pytest "$@"
