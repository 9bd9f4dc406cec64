#!/usr/bin/env bash
# Creates a virtual environment at DIR holding the hwnas profiler agent (`DIR/bin/hwnas-agent`)
# with numpy, httpx and the chosen runtimes only — no torch, JAX, SQLAlchemy or FastAPI.
#   scripts/setup-agent.sh DIR [--runtimes onnxruntime,litert] [--python PYTHON]
# Idempotent; needs Python >= 3.11 and pip's access to the runtimes' wheels (PyPI or a mirror).
set -euo pipefail
usage() { echo "usage: $0 DIR [--runtimes onnxruntime,litert] [--python PYTHON]" >&2; exit 2; }
[ $# -ge 1 ] || usage
DIR=$1; shift
RUNTIMES=onnxruntime,litert
PYTHON=${PYTHON:-python3}
while [ $# -gt 0 ]; do
  case $1 in
    --runtimes) RUNTIMES=${2:?}; shift 2 ;;
    --python) PYTHON=${2:?}; shift 2 ;;
    *) usage ;;
  esac
done
IFS=, read -ra chosen <<<"$RUNTIMES"
for runtime in "${chosen[@]}"; do
  case $runtime in onnxruntime|litert) ;; *) echo "unknown runtime $runtime (onnxruntime, litert)" >&2; exit 2 ;; esac
done
REPO=$(cd "$(dirname "$0")/.." && pwd)
# The venv holds no pip of its own (17 MB with setuptools): $PYTHON's pip installs into it.
if ! "$PYTHON" -m pip install --help 2>/dev/null | grep -q -- "--python "; then
  echo "$PYTHON's pip cannot install into another environment (--python, pip >= 22.3): upgrade it" >&2
  exit 1
fi
if [ ! -x "$DIR/bin/python" ]; then
  "$PYTHON" -m venv --without-pip "$DIR"
fi
pip_in() { "$PYTHON" -m pip --python "$DIR/bin/python" "$@"; }
# Built from a copy, so the build's scratch (build/, an egg-info) stays out of the repository;
# packaging/agent/pyproject.toml picks the light modules from the packages copied beside it.
BUILD=$(mktemp -d)
trap 'rm -rf "$BUILD"' EXIT
mkdir -p "$BUILD/packaging"
cp -r "$REPO/packaging/agent" "$BUILD/packaging/agent"
for package in common lut profilers; do
  (cd "$REPO" && find "$package" -name '*.py' -not -path '*/__pycache__/*' -exec cp --parents {} "$BUILD" \;)
done
# Byte code is compiled on first import, for the modules the agent uses (not at install: 40 MB).
pip_in install --quiet --no-compile --force-reinstall --no-deps "$BUILD/packaging/agent"
pip_in install --quiet --no-compile "$BUILD/packaging/agent[$RUNTIMES]"
echo "the agent is installed: $DIR/bin/hwnas-agent --server URL --name NAME --backend ${chosen[0]}" >&2
