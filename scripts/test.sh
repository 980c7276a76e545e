#!/usr/bin/env bash
# The test suite (what CI runs).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$root"
python -m pytest "$@"
