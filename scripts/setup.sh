#!/usr/bin/env bash
# Creates .venv and installs ConvForge with its test and benchmark dependencies (idempotent: reinstalls
# only when pyproject.toml changes). Sourced by scripts/run.sh and scripts/test.sh.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
stamp="$venv/.installed-$(sha256sum "$root/pyproject.toml" | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    # torch is pinned and installed explicitly: any other version pulls GBs of CUDA packages.
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "torch==2.13.0" -e "$root[test]"
    rm -f "$venv"/.installed-* && touch "$stamp"
fi
export PATH="$venv/bin:$PATH"
