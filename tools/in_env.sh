#!/usr/bin/env bash
# Run a command in the project environment (tools/env.sh), e.g.:
#     tools/in_env.sh python -m emorec_ros.cli.demo
set -eo pipefail
# shellcheck source=tools/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
exec "$@"
