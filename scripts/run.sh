#!/usr/bin/env bash
# The main job: check every algorithm of every direction against the float64 reference on ResNet-18.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
convforge check --suite resnet18 "$@"
