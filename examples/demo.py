"""The main job until the add-on lands: a bundled clip through the whole motion foundation.

Reads a bundled Bandai clip, checks that the canonical features reproduce it, retargets it onto the
bundled Mixamo, Blender metarig and Rigify DEF rigs and back, and writes the retargeted BVH files,
a stick-figure strip and a GIF (source beside its retargeted copies) plus a JSON summary.

    python examples/demo.py [--clip examples/clips/<name>.bvh] [--out out/demo]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from core.io.bvh import read_bvh, write_bvh
from core.ops.features import FEATURE_FPS, features_to_motion, motion_to_features
from core.ops.resample import resample
from core.ops.rotations import quat_angle
from core.retarget.presets import bundled_rig, canonical_rig
from core.retarget.retarget import retarget
from training.plots import animate_gif, clip_title, stick_figure_strip

EXAMPLES = Path(__file__).resolve().parent
DEFAULT_CLIP = EXAMPLES / "clips" / "dataset-2_walk_elderly_015.bvh"
# Bundled rigs with the factor that brings their units to the source's centimetres for plotting.
TARGET_RIGS = {"mixamo": 1.0, "metarig": 100.0, "rigify_def": 100.0}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP, help="a BVH clip on the Bandai rig")
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="folder for the results")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    source = resample(read_bvh(args.clip), FEATURE_FPS)
    features, start = motion_to_features(source)
    decoded = features_to_motion(features, start, skeleton=source.skeleton)
    body = slice(1, None)  # the placement joint is folded into the pelvis by the features
    summary = {
        "clip": str(args.clip),
        "frames": source.num_frames,
        "features_shape": list(features.shape),
        "features_round_trip_max_rotation_error_rad": float(
            quat_angle(source.world()[0][:, body], decoded.world()[0][:, body]).max()
        ),
        "features_round_trip_max_position_error_cm": float(
            np.abs(source.world()[1][:, body] - decoded.world()[1][:, body]).max()
        ),
        "retargeted": {},
    }

    canonical = canonical_rig()
    title = clip_title(args.clip)
    plotted, titles = [source], [f"{title} (Bandai rig, 22 joints)"]
    for rig_name, to_cm in TARGET_RIGS.items():
        rig = bundled_rig(rig_name)
        moved = retarget(source, canonical, rig)
        back = retarget(moved, rig, canonical)
        path = args.out / f"{args.clip.stem}_{rig_name}.bvh"
        write_bvh(moved, path)
        summary["retargeted"][rig_name] = {
            "bvh": str(path),
            "joints": moved.skeleton.num_joints,
            "round_trip_max_rotation_error_rad": float(
                quat_angle(source.world()[0][:, body], back.world()[0][:, body]).max()
            ),
        }
        plotted.append(moved.with_arrays(positions=moved.positions * to_cm))
        titles.append(f"on {rig_name} ({moved.skeleton.num_joints} joints)")

    strip = args.out / f"{args.clip.stem}_retargeted.png"
    gif = args.out / f"{args.clip.stem}_retargeted.gif"
    stick_figure_strip(plotted, path=strip, titles=titles)
    animate_gif(plotted[:2], path=gif, titles=titles[:2])
    summary["strip"], summary["gif"] = str(strip), str(gif)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
