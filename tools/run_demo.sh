#!/usr/bin/env bash
# The main job: sets up both environments (.venv: the runtime; .venv-blender: Blender as bpy 5.0.1),
# builds the add-on zip, installs it into headless Blender, stylizes a bundled walk with a bundled
# elderly walk by pressing Stylize Action, and writes stylized.blend, stylized.bvh, a side-by-side
# GIF and a strip to out/demo/. Extra arguments go to examples/demo.py (--content, --style, --weights, --out).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
exec .venv/bin/python examples/demo.py "$@"
