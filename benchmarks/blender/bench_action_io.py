"""Runs INSIDE Blender's Python (bpy): timings of blender_addon/action_io on a generated rig.

Usage: python benchmarks/blender/bench_action_io.py [--frames 300] [--bones 60] [--runs 15]
       [--naive-frames 30] --out result.json

Rig: a 60-bone armature (a spine chain with four limbs and fingers-like chains, random rolls), every
bone QUATERNION, a 300-frame source action with rotation AND location curves on every bone
(7 curves x 60 bones = 420 curves, 126,000 keys). Measured, medians:
- action_io: read_action (all frames) + write_action (a new action, locations="all": 420 curves);
- baseline A (read): scene.frame_set per frame + pose.bones foreach_get("matrix_basis"), all frames;
- baseline B (write): per key pb.keyframe_insert for ``--naive-frames`` frames, scaled to --frames.
"""

import argparse
import importlib
import json
import os
import statistics
import sys
import time

import numpy as np

from tools.headless import run_and_exit

# action_io as a plain module: the blender_addon package itself registers the add-on with bpy.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "blender_addon"))


def build_rig(n_bones, rng):
    import bpy

    data = bpy.data.armatures.new("BenchRig")
    obj = bpy.data.objects.new("BenchRig", data)
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    eb = data.edit_bones
    bones = []
    root = eb.new("root")
    root.head, root.tail, root.roll = (0, 0, 1.0), (0, 0, 1.1), 0.3
    bones.append(root)
    chains = 5
    per_chain = (n_bones - 1) // chains
    extra = (n_bones - 1) - per_chain * chains
    for c in range(chains):
        parent = root
        direction = np.array([np.cos(2 * np.pi * c / chains), np.sin(2 * np.pi * c / chains), 0.5 if c == 0 else -0.3])
        direction /= np.linalg.norm(direction)
        for k in range(per_chain + (1 if c < extra else 0)):
            b = eb.new(f"c{c}_b{k}")
            b.head = parent.tail
            b.tail = np.array(parent.tail) + 0.1 * (direction + 0.2 * rng.normal(size=3))
            b.roll = rng.uniform(-np.pi, np.pi)
            b.parent = parent
            b.use_connect = k % 3 == 1  # a mix of connected and free bones
            bones.append(b)
            parent = b
    bpy.ops.object.mode_set(mode="OBJECT")
    for pb in obj.pose.bones:
        pb.rotation_mode = "QUATERNION"
    return obj


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--bones", type=int, default=60)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--naive-frames", type=int, default=30)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    import bpy

    io = importlib.import_module("action_io")
    bpy.ops.wm.read_factory_settings(use_empty=True)
    rng = np.random.default_rng(0)
    obj = build_rig(args.bones, rng)
    names = [b.name for b in obj.data.bones]
    F, J = args.frames, len(names)
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 1, F

    # source: smooth random rotations, translations off the rest offsets (free bones)
    rest = io.rest_skeleton(obj)
    t = np.linspace(0, 2 * np.pi, F)[:, None, None]
    axes = rng.normal(size=(1, J, 3))
    axes /= np.linalg.norm(axes, axis=-1, keepdims=True)
    ang = 0.8 * np.sin(t[..., 0] + rng.uniform(0, 6, size=(1, J)))
    rots = np.concatenate([np.cos(ang / 2)[..., None], np.sin(ang / 2)[..., None] * axes], -1)
    order_idx = [rest["bone_names"].index(n) for n in names]
    trans = rest["offsets"][order_idx] + 0.02 * np.sin(t + rng.uniform(0, 6, size=(1, J, 3)))
    source = io.write_action(obj, "source", rots, trans, names, 1, locations="all")
    n_curves = len(io.action_fcurves(obj, source))

    read_t, write_t, total_t = [], [], []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        data = io.read_action(obj, source)
        t1 = time.perf_counter()
        new = io.write_action(
            obj,
            "result",
            data["rotations"],
            data["translations"],
            data["bone_names"],
            data["frame_start"],
            locations="all",
        )
        t2 = time.perf_counter()
        read_t.append(t1 - t0)
        write_t.append(t2 - t1)
        total_t.append(t2 - t0)
        n_written = len(io.action_fcurves(obj, new))
        obj.animation_data.action = source
        obj.animation_data.action_slot = source.slots[0]
        bpy.data.actions.remove(new)

    # baseline A: frame_set per frame, matrices read in bulk
    buf = np.empty(J * 16, dtype=np.float32)
    base_read = []
    for _ in range(max(3, args.runs // 3)):
        t0 = time.perf_counter()
        for f in range(1, F + 1):
            scene.frame_set(f)
            obj.pose.bones.foreach_get("matrix_basis", buf)
        base_read.append(time.perf_counter() - t0)

    # baseline B: per-key keyframe_insert (rotation + location of every bone) on a shorter range
    nf = args.naive_frames
    base_write = []
    for _ in range(3):
        obj.animation_data.action = None
        t0 = time.perf_counter()
        for f in range(1, nf + 1):
            for j, name in enumerate(names):
                pb = obj.pose.bones[name]
                pb.rotation_quaternion = rots[f - 1, j]
                pb.location = (0.0, 0.0, 0.0)
                pb.keyframe_insert("rotation_quaternion", frame=f)
                pb.keyframe_insert("location", frame=f)
        base_write.append((time.perf_counter() - t0) * F / nf)
        naive_action = obj.animation_data.action
        obj.animation_data.action = source
        bpy.data.actions.remove(naive_action)

    med = statistics.median
    result = {
        "blender_version": bpy.app.version_string,
        "frames": F,
        "bones": J,
        "source_fcurves": n_curves,
        "written_fcurves": n_written,
        "runs": args.runs,
        "read_ms": 1e3 * med(read_t),
        "write_ms": 1e3 * med(write_t),
        "total_ms": 1e3 * med(total_t),
        "total_ms_min": 1e3 * min(total_t),
        "baseline_frame_set_read_ms": 1e3 * med(base_read),
        "baseline_keyframe_insert_write_ms": 1e3 * med(base_write),
        "naive_frames": nf,
    }
    with open(args.out, "w") as fh:
        json.dump(result, fh)


if __name__ == "__main__":
    run_and_exit(main)
