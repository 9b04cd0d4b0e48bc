#!/usr/bin/env bash
# The main job: sets up the runtime environment, then runs a bundled example clip through the
# motion foundation (features round trip, retargeting onto three rigs) and writes the results,
# a stick-figure strip and a GIF to out/demo/. Extra arguments go to examples/demo.py.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh --no-blender
exec .venv/bin/python examples/demo.py "$@"
