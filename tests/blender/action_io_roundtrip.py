"""Runs INSIDE Blender's Python (bpy): round trip of blender_addon/action_io on real rigs.

Usage: python action_io_roundtrip.py CASE [--bvh PATH] --out result.json
CASE: bvh_quaternion | bvh_euler (a real clip through io_anim_bvh) | metarig (Blender's human
metarig, non-identity rolls, mixed rotation modes, Bezier keys every 5 frames).

For the case: read_action of the source, write_action of the arrays as a new action, and report
(a) pose-bone armature-space matrices of the new action vs the source at sampled frames,
(b) a hash of every source F-curve's key data before and after,
(c) read_action of the written action vs the first read,
(d) forward kinematics in numpy over read_action's rest skeleton vs Blender's pose bone heads
    (and the world rotations P @ B^-1), plus timings.
"""

import argparse
import hashlib
import importlib
import json
import os
import sys
import time

import numpy as np

from core.ops.kinematics import forward_kinematics
from tools.headless import run_and_exit

# action_io as a plain module: the blender_addon package itself registers the add-on with bpy.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "blender_addon"))


def action_hash(io, obj, action):
    h = hashlib.sha256()
    fcs = sorted(io.action_fcurves(obj, action), key=lambda fc: (fc.data_path, fc.array_index))
    for fc in fcs:
        n = len(fc.keyframe_points)
        h.update(f"{fc.data_path}[{fc.array_index}]:{n}".encode())
        for prop, width, dtype in (
            ("co", 2, np.float32),
            ("handle_left", 2, np.float32),
            ("handle_right", 2, np.float32),
            ("interpolation", 1, np.int32),
        ):
            arr = np.empty(n * width, dtype=dtype)
            fc.keyframe_points.foreach_get(prop, arr)
            h.update(arr.tobytes())
    return h.hexdigest(), len(fcs)


def quat_angle(io, a, b):
    rel = io.quat_mul(io.quat_conj(a), b)
    return 2.0 * np.arctan2(np.linalg.norm(rel[..., 1:], axis=-1), np.abs(rel[..., 0]))


def pose_state(io, obj, names, frames):
    """Armature-space pose matrices' rotations (as quaternions) and heads at frames."""
    scene = __import__("bpy").context.scene
    rots, heads = [], []
    for f in frames:
        scene.frame_set(int(f))
        m = np.array([np.array(obj.pose.bones[n].matrix) for n in names])
        r = m[:, :3, :3] / np.linalg.norm(m[:, :3, :3], axis=-2, keepdims=True)
        rots.append(io.matrix_to_quat(r))
        heads.append(m[:, :3, 3])
    return np.array(rots), np.array(heads)


def setup_bvh(path, rotate_mode):
    import addon_utils
    import bpy

    addon_utils.enable("io_anim_bvh", default_set=True)
    ok = bpy.ops.import_anim.bvh(
        filepath=os.path.abspath(path),
        global_scale=0.01,
        rotate_mode=rotate_mode,
        frame_start=1,
        use_fps_scale=False,
        update_scene_fps=True,
        update_scene_duration=True,
        target="ARMATURE",
    )
    if ok != {"FINISHED"}:
        raise RuntimeError("BVH import failed")
    return next(o for o in bpy.context.scene.objects if o.type == "ARMATURE")


def setup_metarig():
    import addon_utils
    import bpy

    addon_utils.enable("rigify", default_set=True)
    bpy.ops.object.armature_human_metarig_add()
    obj = bpy.context.active_object
    bpy.ops.object.mode_set(mode="POSE")
    rng = np.random.default_rng(0)
    modes = ["QUATERNION", "XYZ", "ZXY", "YZX", "XZY", "ZYX", "YXZ", "AXIS_ANGLE"]
    posed = [b.name for b in obj.pose.bones][:40]
    for k, name in enumerate(posed):
        obj.pose.bones[name].rotation_mode = modes[k % len(modes)]
    for f in (1, 6, 11, 16, 21):
        for name in posed:
            pb = obj.pose.bones[name]
            if pb.rotation_mode == "QUATERNION":
                q = rng.normal(size=4)
                q[0] += 2.0
                pb.rotation_quaternion = q / np.linalg.norm(q)
                pb.keyframe_insert("rotation_quaternion", frame=f)
            elif pb.rotation_mode == "AXIS_ANGLE":
                pb.rotation_axis_angle = (rng.uniform(-1.5, 1.5), *rng.normal(size=3))
                pb.keyframe_insert("rotation_axis_angle", frame=f)
            else:
                pb.rotation_euler = rng.uniform(-1.2, 1.2, size=3)
                pb.keyframe_insert("rotation_euler", frame=f)
            if not obj.data.bones[name].use_connect:
                pb.location = rng.normal(scale=0.05, size=3)
                pb.keyframe_insert("location", frame=f)
    # a connected bone with location keys: Blender ignores them, and so must read_action
    connected = [b.name for b in obj.data.bones if b.use_connect][:2]
    for f in (1, 11, 21):
        for name in connected:
            obj.pose.bones[name].location = rng.normal(scale=0.1, size=3)
            obj.pose.bones[name].keyframe_insert("location", frame=f)
    bpy.ops.object.mode_set(mode="OBJECT")
    rolls = [b.matrix_local.to_quaternion() for b in obj.data.bones]
    return obj, int(sum(abs(q.w) < 0.999 for q in rolls))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("case")
    parser.add_argument("--bvh")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    import bpy

    io = importlib.import_module("action_io")

    bpy.ops.wm.read_factory_settings(use_empty=True)
    result = {"case": args.case, "blender_version": bpy.app.version_string}
    if args.case == "bvh_quaternion":
        obj = setup_bvh(args.bvh, "QUATERNION")
    elif args.case == "bvh_euler":
        obj = setup_bvh(args.bvh, "NATIVE")
    elif args.case == "metarig":
        obj, result["non_identity_rest_rotations"] = setup_metarig()
    else:
        raise ValueError(args.case)
    scene = bpy.context.scene
    source = obj.animation_data.action
    hash_before, n_curves = action_hash(io, obj, source)

    t0 = time.perf_counter()
    data = io.read_action(obj)
    result["read_s"] = time.perf_counter() - t0
    names = data["bone_names"]
    F = len(data["frames"])
    result.update(num_bones=len(names), num_frames=F, num_source_fcurves=n_curves, warnings=data["warnings"])
    result["rotation_modes"] = sorted(set(data["rotation_modes"]))
    frames = np.unique(np.linspace(data["frame_start"], data["frame_end"], 12).round().astype(int))
    if args.case == "metarig":  # also between keys (Bezier, evaluate fallback)
        frames = np.unique(np.concatenate([frames, [3, 8, 13, 19]]))
    sel = frames - data["frame_start"]

    src_rot, src_head = pose_state(io, obj, names, frames)

    # (d) FK over the rest skeleton vs Blender's heads; world rotations vs P @ B^-1
    wr, wp = forward_kinematics(data["parents"], data["rotations"][sel], data["translations"][sel])
    result["fk_head_err"] = float(np.abs(wp - src_head).max())
    world_blender = io.quat_mul(src_rot, io.quat_conj(data["rest_quats"]))
    result["fk_rot_err"] = float(quat_angle(io, wr, world_blender).max())

    # write a copy
    t0 = time.perf_counter()
    new = io.write_action(
        obj, source.name + "_copy", data["rotations"], data["translations"], names, data["frame_start"]
    )
    result["write_s"] = time.perf_counter() - t0
    ad = obj.animation_data
    result["assigned_new"] = ad.action == new
    result["slot_assigned"] = (ad.action_slot is not None) if io.slotted() else True
    result["source_fake_user"] = source.use_fake_user
    key_counts = {len(fc.keyframe_points) for fc in io.action_fcurves(obj, new)}
    result["new_key_counts"] = sorted(key_counts)

    # (a) the new action poses the armature as the source did
    new_rot, new_head = pose_state(io, obj, names, frames)
    result["pose_rot_err"] = float(quat_angle(io, new_rot, src_rot).max())
    result["pose_head_err"] = float(np.abs(new_head - src_head).max())

    # (c) re-reading the written action reproduces the arrays
    again = io.read_action(obj, new)
    result["reread_rot_err"] = float(quat_angle(io, again["rotations"], data["rotations"]).max())
    result["reread_trans_err"] = float(np.abs(again["translations"] - data["translations"]).max())
    result["reread_frames_equal"] = bool(np.array_equal(again["frames"], data["frames"]))

    # (b) the source is untouched
    hash_after, _ = action_hash(io, obj, source)
    result["source_hash_equal"] = hash_before == hash_after
    result["source_still_exists"] = source.name in bpy.data.actions
    result["scene_frame_start"] = scene.frame_start

    with open(args.out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    run_and_exit(main)
