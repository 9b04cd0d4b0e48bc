"""Runs INSIDE Blender's Python (bpy): the main job's Blender half, as an artist would do it.

Installs the add-on zip, imports the content and the style clips (File > Import > BVH), picks the
style armature in the Motion Style tab, presses Stylize Action (the operator) on the content
armature, then saves the .blend and exports the stylized action as BVH (File > Export > BVH).

    python examples/blender_stylize.py --zip dist/motion_style_transfer-<version>.zip \
        --runtime .venv/bin/python --content A.bvh --style B.bvh --out-dir out/demo [--weights g=w,...]

Run it with BLENDER_USER_RESOURCES pointing at a scratch folder so the install never touches the
user's own Blender. Writes stylized.blend, stylized.bvh and blender.json (what happened) to --out-dir.
"""

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from core.io.atomic import replacing, write_text
from tools.blender_addon_session import forget_repository, import_bvh, install_addon
from tools.headless import run_and_exit

forget_repository()  # the add-on must find its own bundled core, not the repository's


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--zip", required=True)
    parser.add_argument("--runtime", required=True)
    parser.add_argument("--content", required=True)
    parser.add_argument("--style", required=True)
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--weights", default="", help="group=weight,... (the panel's sliders)")
    args = parser.parse_args()

    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    out_dir = Path(args.out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    install_addon(Path(args.zip).resolve())
    prefs = bpy.context.preferences.addons["motion_style_transfer"].preferences
    prefs.runtime_python = str(Path(args.runtime).absolute())

    style = import_bvh(args.style)
    content = import_bvh(args.content)
    style.location.x = content.location.x - 150.0  # side by side in the viewport
    bpy.context.view_layer.objects.active = content
    source = content.animation_data.action
    settings = bpy.context.scene.motion_style
    settings.reference_object = style
    for item in filter(None, args.weights.split(",")):
        group, weight = item.split("=")
        getattr(settings, group.strip()).weight = float(weight)

    t0 = time.perf_counter()
    result = bpy.ops.mst.stylize_action()
    seconds = time.perf_counter() - t0
    action = content.animation_data.action
    if result != {"FINISHED"} or action == source:
        raise RuntimeError(f"Stylize Action did not finish: {result}")

    blend = out_dir / "stylized.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend), compress=True)  # Blender writes blend@, then renames
    for obj in bpy.context.view_layer.objects:
        obj.select_set(obj == content)
    start, end = (round(f) for f in action.frame_range)
    bvh = out_dir / "stylized.bvh"
    with replacing(bvh) as temporary:  # a failed export leaves an earlier stylized.bvh as it was
        bpy.ops.export_anim.bvh(filepath=temporary, frame_start=start, frame_end=end, rotate_mode="NATIVE")
    summary = {
        "blender": bpy.app.version_string,
        "source_action": source.name,
        "style_action": style.animation_data.action.name,
        "new_action": action.name,
        "frames": end - start + 1,
        "weights": settings.weights(),
        "foot_cleanup": settings.foot_cleanup,
        "operator_seconds": round(seconds, 3),
        "files": [blend.name, bvh.name],
    }
    write_text(out_dir / "blender.json", json.dumps(summary, indent=1))


run_and_exit(main)
