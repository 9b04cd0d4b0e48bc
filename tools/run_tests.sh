#!/usr/bin/env bash
# Sets up the environments (bpy 5.0.1 and 4.5 LTS included) and runs the whole test suite (real data from ../shared/data,
# real Blender). Extra arguments go to pytest, e.g. tools/run_tests.sh -m "not slow".
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh --with-blender45
export MST_BLENDER_PYTHON="$PWD/.venv-blender/bin/python"
# pytest exits 5 when it collected no test: that fails this script like any other error.
exec .venv/bin/python -m pytest -ra "$@"
