"""The main job: stylize a bundled walk with a bundled style through the zipped add-on in headless Blender.

Builds the add-on zip, installs it into real Blender (bpy, with scratch user resources), imports
both clips, presses Stylize Action (examples/blender_stylize.py), and writes the result as .blend
and .bvh, then a side-by-side GIF (source | style reference | result) and a stick-figure strip.

    python examples/demo.py [--content CLIP] [--style CLIP] [--weights g=w,...] [--out out/demo]

Runs in the torch env (.venv); Blender is the bpy env (.venv-blender, or $MST_BLENDER_PYTHON).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

EXAMPLES = Path(__file__).resolve().parent
REPO = EXAMPLES.parent
sys.path.insert(0, str(REPO))

from build_addon import build
from core.io.atomic import write_text
from core.io.bvh import read_bvh
from core.ops.rotations import quat_mul, quat_rotate
from core.retarget.rig import UP_AXIS_TO_Y_UP
from training.plots import animate_gif, clip_title, stick_figure_strip

CLIPS = EXAMPLES / "clips"
DEFAULT_CONTENT = CLIPS / "dataset-2_walk_normal_013.bvh"
DEFAULT_STYLE = CLIPS / "dataset-2_walk_elderly_015.bvh"


def run_blender(zip_path: Path, content: Path, style: Path, out: Path, weights: str) -> dict:
    python = Path(os.environ.get("MST_BLENDER_PYTHON", REPO / ".venv-blender" / "bin" / "python"))
    if not python.exists():
        raise SystemExit(f"Blender (bpy) not found at {python}: run tools/setup.sh first")
    with tempfile.TemporaryDirectory(prefix="mst-demo-user-") as user:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        env["BLENDER_USER_RESOURCES"] = user  # the install never touches the user's own Blender
        cmd = [
            str(python),
            str(EXAMPLES / "blender_stylize.py"),
            "--zip",
            str(zip_path),
            "--runtime",
            sys.executable,
            "--content",
            str(content),
            "--style",
            str(style),
            "--out-dir",
            str(out),
            "--weights",
            weights,
        ]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"Blender failed (exit code {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    report = out / "blender.json"
    summary = json.loads(report.read_text())
    report.unlink()  # merged into summary.json
    return summary


def blender_to_y_up(motion):
    """Blender's BVH exporter writes its own axes (Z up, -Y forward); turn the clip back to the BVH
    convention (Y up, +Z forward) the sources use, by turning its root."""
    turn = UP_AXIS_TO_Y_UP["Z"]  # (x, y, z) -> (x, z, -y)
    rotations, positions = motion.rotations.copy(), motion.positions.copy()
    rotations[:, 0] = quat_mul(np.broadcast_to(turn, rotations[:, 0].shape), rotations[:, 0])
    positions[:, 0] = quat_rotate(np.broadcast_to(turn, rotations[:, 0].shape), positions[:, 0])
    return motion.with_arrays(rotations, positions)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--content", type=Path, default=DEFAULT_CONTENT)
    parser.add_argument("--style", type=Path, default=DEFAULT_STYLE)
    parser.add_argument("--weights", default="", help="group=weight,... e.g. root=0,left_leg=0,right_leg=0")
    parser.add_argument("--out", type=Path, default=REPO / "out" / "demo")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)

    zip_path = build()  # dist/ in the repository
    summary = run_blender(zip_path, args.content.resolve(), args.style.resolve(), out, args.weights)
    source, style = read_bvh(args.content), read_bvh(args.style)
    result = blender_to_y_up(read_bvh(out / "stylized.bvh"))
    titles = [
        f"source: {clip_title(args.content.name)}",
        f"style: {clip_title(args.style.name)}",
        f"result: {summary['new_action']}",
    ]
    animate_gif([source, style, result], path=out / "side_by_side.gif", titles=titles)
    stick_figure_strip([source, style, result], path=out / "strip.png", titles=titles)
    summary["zip"] = zip_path.name
    summary["outputs"] = sorted(p.name for p in out.iterdir() if p.is_file())
    write_text(out / "summary.json", json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
