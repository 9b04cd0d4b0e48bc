#!/usr/bin/env bash
# Creates (or updates) the project's environments, as a real user has them:
#   .venv          the runtime/training side: torch (CPU wheel), numpy, scipy, safetensors, test tools
#   .venv-blender  Blender as a Python module (PyPI bpy 5.0.1, which needs Python 3.11 and numpy<2)
#   .venv-blender45  with --with-blender45: the same for Blender 4.5 LTS (bpy 4.5.x), also supported
# They stay separate because Blender's numpy and torch's numpy cannot share one environment.
# Usage: tools/setup.sh [--no-blender | --with-blender45]   (the tests use --with-blender45)
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-$(command -v python3.11 || command -v python3)}
pip_quiet=(--quiet --disable-pip-version-check)

[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/pip install "${pip_quiet[@]}" -e '.[test]'

if [ "${1:-}" != "--no-blender" ]; then
    [ -x .venv-blender/bin/python ] || "$python" -m venv .venv-blender
    .venv-blender/bin/pip install "${pip_quiet[@]}" 'bpy==5.0.1' 'numpy<2'
fi
if [ "${1:-}" = "--with-blender45" ]; then
    # the 4.5 LTS the add-on also supports (tests/test_addon_blender.py runs on both)
    [ -x .venv-blender45/bin/python ] || "$python" -m venv .venv-blender45
    .venv-blender45/bin/pip install "${pip_quiet[@]}" 'bpy==4.5.*' 'numpy<2'
fi
