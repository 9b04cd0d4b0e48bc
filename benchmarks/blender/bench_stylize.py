"""Runs INSIDE Blender's Python (bpy): warm end-to-end stylize of a 300-frame clip from Blender.

Usage: python bench_stylize.py ZIP --runtime PYTHON --content BVH --style BVH --frames 300 --runs 7 --out result.json
Installs the built zip (fresh user resources), imports both clips, limits the content action to
``--frames`` frames (the action's manual frame range), starts the runtime once, then times
``stylize()`` of the batch API end to end (read both actions, send, runtime work, key the new
action) and its three parts: prepare (read + build the request), the runtime round trip
(send to result), apply (key the new action). Medians over ``--runs``.
"""

import importlib
import json
import statistics
import time

from tools.blender_addon_session import addon_script_parser, forget_repository, import_bvh, install_addon
from tools.headless import run_and_exit

forget_repository()


def main():
    parser = addon_script_parser()
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    _, mst = install_addon(args.zip)

    session = importlib.import_module("motion_style_transfer.session")
    stylize_io = importlib.import_module("motion_style_transfer.stylize_io")
    job_mod = importlib.import_module("motion_style_transfer.job")
    prefs = bpy.context.preferences.addons["motion_style_transfer"].preferences
    prefs.runtime_python, prefs.device = args.runtime, "CPU"

    style = import_bvh(args.style)
    content = import_bvh(args.content)
    source = content.animation_data.action
    source.use_frame_range = True
    source.frame_start, source.frame_end = 1, args.frames

    t0 = time.perf_counter()
    client = session.client(prefs)
    client.start()
    cold = time.perf_counter() - t0
    mst.stylize(content, source, style)  # warm-up

    total, prepare, round_trip, apply = [], [], [], []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        mst.stylize(content, source, style)
        total.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        prepared = stylize_io.prepare(
            stylize_io.take_of(content, source), stylize_io.take_of(style), {}, {}, {"foot_cleanup": True}
        )
        t1 = time.perf_counter()
        job = job_mod.StylizeJob()
        job.start(client, prepared.request)
        job.wait(poll_interval=0.002)
        t2 = time.perf_counter()
        stylize_io.apply_result(prepared, job.result, assign=False)
        t3 = time.perf_counter()
        prepare.append(t1 - t0)
        round_trip.append(t2 - t1)
        apply.append(t3 - t2)
    session.stop()
    median_ms = {
        k: 1000 * statistics.median(v)
        for k, v in (("total", total), ("prepare", prepare), ("round_trip", round_trip), ("apply", apply))
    }
    result = {
        "blender": bpy.app.version_string,
        "frames": prepared.num_frames,
        "bones": len(prepared.bone_names),
        "runs": args.runs,
        "cold_start_s": cold,
        **{f"{k}_ms": v for k, v in median_ms.items()},
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)


run_and_exit(main)
