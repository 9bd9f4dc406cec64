#!/usr/bin/env bash
# Creates .venv and installs hwnas with its test tools. Idempotent; needs Python >= 3.11.
# torch is pinned to 2.13.0 (the CPU build); other specs would pull multi-GB CUDA wheels.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[dev]"
echo "hwnas is installed in .venv: activate it with '. .venv/bin/activate'" >&2
