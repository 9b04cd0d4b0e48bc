"""The per-rig table of the README: every character in ../shared/data/rigs and every convention and
transform test rig, stylized through the built zip in headless Blender (tests/blender/rigs_stylize.py,
the same run tests/test_rigs_blender.py asserts on), written to reports/rigs/rigs.md and rigs.json.

    .venv/bin/python -m tools.rig_report          # about 3 minutes on 2 cores

Rig invariance: the result, brought back to the canonical skeleton, against the server's result for
the canonical version of the same clip, largest joint distance over body height. The first figure
passes that canonical result through the rig's joints too, so both miss what the rig cannot hold
(clavicles, toes, a neck it lacks); the second compares with it as is.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import Counter
from pathlib import Path

from core.io.atomic import write_text
from tests.blender_runner import run_addon_script
from training.data.paths import REPO_ROOT, bandai_root, data_root

SCRIPT = REPO_ROOT / "tests" / "blender" / "rigs_stylize.py"
CONTENT = "dataset-2_walk_normal_001.bvh.gz"
STYLE = "dataset-2_walk_elderly_001.bvh.gz"
HEADER = (
    "| rig | armature | bones | mapped by | up | head above hips (min, ÷ height) | stance src → out (cm) "
    "| rig invariance (÷ height) | rig invariance, joints the rig lacks included | all weights 0 (÷ height) "
    "| source kept, plays |"
)


def _row(rig: str, armature: str, e: dict) -> str:
    if e.get("refused", True):
        reason = e.get("error") or e.get("message", "")
        return f"| {rig} | {armature} | {e.get('bones', 0)} | refused: {reason[:140]} | | | | | | | |"
    found = ", ".join(f"{how} {n}" for how, n in sorted(Counter(e["found_by"].values()).items()))
    invariance = e.get("invariance_max_rel")
    unheld = e.get("invariance_unheld_max_rel")
    return (
        f"| {rig} | {armature} | {e['bones']} | {e['preset'] or found} | {e['up_axis']} | "
        f"{e['head_above_hips_min']:.2f} | {e['stance_source_cm']:.2f} → {e['stance_result_cm']:.2f} | "
        f"{'—' if invariance is None else f'{invariance:.1e}'} | {'—' if unheld is None else f'{unheld:.1e}'} | "
        f"{e['all0_max_rel']:.1e} | {'yes' if e['source_hash_equal'] and e['source_plays_after_reassign'] < 1e-5 else 'NO'} |"
    )


def table(measured: dict) -> str:
    lines = [HEADER, "|" + "---|" * (HEADER.count("|") - 1)]
    for path, found in measured.get("shared", {}).items():
        if "exception" in found:
            lines.append(f"| {path} | | | failed: see rigs.json | | | | | | | |")
            continue
        if not found.get("armatures"):
            lines.append(f"| {path} | (none) | 0 | refused: {found.get('message', '')[:140]} | | | | | | | |")
        for name, e in found.items():
            if isinstance(e, dict):
                lines.append(_row(path, name, e))
    for group in ("conventions", "transforms"):
        for name, e in measured.get(group, {}).items():
            label = f"{group[:-1]}: {name}"
            lines.append(
                _row(label, "", e) if "exception" not in e else f"| {label} | failed: see rigs.json | | | | | | | | | |"
            )
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "reports" / "rigs")
    args = parser.parse_args(argv)
    root = data_root()
    clips = bandai_root(root)
    with tempfile.TemporaryDirectory(prefix="mst-rigs-") as tmp:
        clip = lambda name: clips / name.split("_", 1)[0] / "data" / name
        measured = run_addon_script(SCRIPT, tmp, clip(CONTENT), clip(STYLE), "--rigs", root / "rigs", timeout=2400)
    args.out.mkdir(parents=True, exist_ok=True)
    for group in measured.get("transforms", {}).values():
        group.pop("world_heads", None)
    write_text(args.out / "rigs.json", json.dumps(measured, indent=1))
    write_text(args.out / "rigs.md", table(measured))
    print(table(measured))


if __name__ == "__main__":
    main()
