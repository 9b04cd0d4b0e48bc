"""Write the rest skeletons of Blender's human metarig and of the Rigify rig generated from it.

Run from the repo root with the Blender venv (PyPI bpy, numpy<2):
    .venv-blender/bin/python tools/export_blender_rigs.py [OUT_DIR]   (default core/retarget/rigs)
It writes metarig.bvh (all 159 metarig bones) and rigify_def.bvh (Rigify's 160 DEF bones under its
ground-level ``root`` bone): real rigs for the retargeting tests, with no downloaded file.

What the files hold, and why:
- Coordinates: Blender armature space (Z up, -Y forward, metres) turned to the BVH convention,
  Y up: (x, y, z) -> (x, z, -y). Units stay metres; retargeting scales by leg length.
- A joint is a bone's head. Offsets are head minus parent head in armature space: the bones' rest
  world rotations (their roll included) are folded into the offsets and every rest rotation is the
  identity, so the skeleton's zero pose is exactly the rig's rest pose, the convention of
  core.retarget.rig. Roll is not lost where it matters: the add-on converts a pose bone's rotation
  with its own rest matrix (world rotation = pose_bone.matrix @ bone.matrix_local^-1).
- Bones without children get an End Site at their tail.
- Rigify parents DEF bones through ORG/MCH bones (DEF-thigh.L hangs under ORG-spine). The DEF
  skeleton gives each DEF bone its anatomical parent: the nearest exported ancestor, where an
  ancestor ORG-x stands for DEF-x.
"""

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tools.headless import run_and_exit


def _y_up(v) -> tuple[float, float, float]:
    return (v[0], v[2], 0.0 - v[1])  # 0.0 - y: no "-0" in the file


def _skeleton(bones: dict, parent_of: dict):
    """Skeleton from {name: bpy bone} and {name: exported parent name or None}, parents first."""
    import numpy as np

    from core.motion.skeleton import Skeleton

    children = {name: [] for name in bones}
    roots = []
    for name in bones:  # bpy keeps bones in a stable order; keep it for children
        (children[parent_of[name]] if parent_of[name] else roots).append(name)
    if len(roots) != 1:
        raise RuntimeError(f"expected one root bone, got {roots}")
    order, stack = [], roots[:]
    while stack:
        name = stack.pop()
        order.append(name)
        stack.extend(reversed(children[name]))
    index = {name: i for i, name in enumerate(order)}
    offsets, end_sites = [], {}
    for i, name in enumerate(order):
        head = np.array(bones[name].head_local)
        parent = parent_of[name]
        offsets.append(_y_up(head - np.array(bones[parent].head_local)) if parent else _y_up(head))
        if not children[name]:
            end_sites[i] = np.array(_y_up(np.array(bones[name].tail_local) - head))
    return Skeleton(
        names=tuple(order),
        parents=tuple(index[parent_of[n]] if parent_of[n] else -1 for n in order),
        offsets=np.array(offsets),
        end_sites=end_sites,
    )


def _def_parent(bone, exported: set):
    """The DEF skeleton's parent of a Rigify bone: nearest exported ancestor, ORG-x read as DEF-x."""
    parent = bone.parent
    while parent is not None:
        for name in (parent.name, "DEF-" + parent.name[4:] if parent.name.startswith("ORG-") else None):
            if name in exported and name != bone.name:
                return name
        parent = parent.parent
    return None


def main() -> None:
    out_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO_ROOT / "core" / "retarget" / "rigs"
    import bpy  # noqa: I001  first: it puts Blender's scripts (addon_utils) on sys.path
    import addon_utils

    from core.io.bvh import write_bvh
    from core.motion.motion import Motion

    addon_utils.enable("rigify", default_set=True)  # default_set: rigify's register() reads its prefs
    for obj in list(bpy.data.objects):
        bpy.data.objects.remove(obj)
    bpy.ops.object.armature_human_metarig_add()
    metarig = bpy.context.active_object
    meta_bones = {b.name: b for b in metarig.data.bones}
    meta = _skeleton(meta_bones, {n: b.parent.name if b.parent else None for n, b in meta_bones.items()})

    bpy.ops.object.select_all(action="DESELECT")
    metarig.select_set(True)
    bpy.context.view_layer.objects.active = metarig
    bpy.ops.pose.rigify_generate()
    rig = next(o for o in bpy.data.objects if o.type == "ARMATURE" and o is not metarig)
    def_bones = {b.name: b for b in rig.data.bones if b.name.startswith("DEF-") or b.name == "root"}
    rigify = _skeleton(def_bones, {n: _def_parent(b, set(def_bones)) for n, b in def_bones.items()})

    out_dir.mkdir(parents=True, exist_ok=True)
    for name, skeleton in (("metarig", meta), ("rigify_def", rigify)):
        write_bvh(Motion.rest(skeleton), out_dir / f"{name}.bvh")
        print(f"wrote {out_dir / name}.bvh: {skeleton.num_joints} joints", file=sys.stderr)


if __name__ == "__main__":
    run_and_exit(main)
