"""Runs INSIDE Blender's Python (bpy): import a BVH with io_anim_bvh and report joint world positions.

Usage: python import_bvh_positions.py BVH --frames 0,10,20 [--scale 1.0] --out result.json

Frames are 0-based BVH frame indices. Import options are pinned, not left to the defaults of the
moment, so the comparison in tests/test_blender_bvh_import.py is exact:
- axis_forward='-Z', axis_up='Y' (the importer's defaults): Blender bakes the rotation
  (x, y, z) -> (x, -z, y) into the armature (Y-up file to Blender Z-up), matrix_world ends as identity.
  We report the conversion matrix and matrix_world so the test applies exactly what was used.
- global_scale: multiplies offsets and position channels; compare against ours times this scale.
- frame_start=1, use_fps_scale=False: io_anim_bvh keeps an internal rest frame in slot 0 and skips it,
  so BVH frame i lands on Blender frame frame_start + i, one key per frame (no resampling).
- rotate_mode='NATIVE' (default): Euler curves in each joint's own channel order; keys are LINEAR, so
  at integer frames the pose equals the file's values.
Joint position = armature matrix_world @ pose_bone.head (heads are the BVH joints; tails are
invented by the importer, e.g. zero-length End Sites get a minimal length, so they are not compared).
The result goes to a JSON file, not stdout, because Blender prints its own messages there.
"""

import argparse
import json
import os

from tools.headless import run_and_exit


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("bvh")
    parser.add_argument("--frames", required=True, help="comma-separated 0-based BVH frame indices")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    import bpy  # noqa: I001  first: it puts Blender's scripts (addon_utils, bpy_extras) on sys.path

    import addon_utils
    from bpy_extras.io_utils import axis_conversion

    bpy.ops.wm.read_factory_settings(use_empty=True)
    addon_utils.enable("io_anim_bvh", default_set=True)
    settings = {
        "global_scale": args.scale,
        "axis_forward": "-Z",
        "axis_up": "Y",
        "rotate_mode": "NATIVE",
        "frame_start": 1,
        "use_fps_scale": False,
        "update_scene_fps": False,
        "update_scene_duration": False,
        "use_cyclic": False,
        "target": "ARMATURE",
    }
    if bpy.ops.import_anim.bvh(filepath=os.path.abspath(args.bvh), **settings) != {"FINISHED"}:
        raise RuntimeError("import_anim.bvh did not finish")
    armatures = [o for o in bpy.context.scene.objects if o.type == "ARMATURE"]
    if len(armatures) != 1:
        raise RuntimeError(f"expected one armature after import, found {len(armatures)}")
    arm = armatures[0]

    scene = bpy.context.scene
    frames = [int(f) for f in args.frames.split(",")]
    heads = {pb.name: [] for pb in arm.pose.bones}
    for f in frames:
        scene.frame_set(settings["frame_start"] + f)
        for pb in arm.pose.bones:
            heads[pb.name].append(list(arm.matrix_world @ pb.head))

    conversion = axis_conversion(from_forward=settings["axis_forward"], from_up=settings["axis_up"])
    result = {
        "blender_version": bpy.app.version_string,
        "settings": settings,
        "axis_conversion": [list(row) for row in conversion],
        "matrix_world": [list(row) for row in arm.matrix_world],
        "frames": frames,
        "blender_frames": [settings["frame_start"] + f for f in frames],
        "action_frame_range": list(arm.animation_data.action.frame_range),
        "heads": heads,
    }
    with open(args.out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    run_and_exit(main)
