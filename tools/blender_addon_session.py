"""Steps headless-Blender scripts share: install the add-on zip and import BVH clips as armatures.

Scripts import this with the repository on sys.path and then call ``forget_repository()``, so the
installed add-on must find its own bundled ``core`` (a stray absolute ``import core`` fails as it
would in a user's Blender). bpy is imported inside the functions: they run only in Blender's Python.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

PACKAGE = "motion_style_transfer"


def forget_repository() -> None:
    """Take the repository off sys.path (the runner and scripts put it there for tools/)."""
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != REPO_ROOT]


def addon_script_parser() -> argparse.ArgumentParser:
    """The arguments every add-on script takes: the zip, the runtime's Python, the content and style
    BVH clips and the JSON file to write; scripts add their own."""
    parser = argparse.ArgumentParser()
    parser.add_argument("zip")
    parser.add_argument("--runtime", required=True)
    parser.add_argument("--content", required=True)
    parser.add_argument("--style", required=True)
    parser.add_argument("--out", required=True)
    return parser


def install_addon(zip_path, mode: str = "legacy"):
    """Install and enable the add-on zip; returns (module name, module).

    legacy: Preferences > Add-ons > Install from Disk; extension: Get Extensions > Install from Disk."""
    import bpy

    if mode == "legacy":
        bpy.ops.preferences.addon_install(filepath=str(zip_path))
        import addon_utils  # Blender's own module: importable once bpy is

        addon_utils.enable(PACKAGE, default_set=True, handle_error=None)
        name = PACKAGE
    elif mode == "extension":
        bpy.ops.extensions.package_install_files(filepath=str(zip_path), repo="user_default", enable_on_install=True)
        name = f"bl_ext.user_default.{PACKAGE}"
    else:
        raise ValueError(f"mode must be legacy or extension, got {mode!r}")
    return name, importlib.import_module(name)


def import_bvh(path):
    """File > Import > BVH (scene fps and range follow the clip); returns the new armature."""
    import bpy

    before = set(bpy.data.objects)
    result = bpy.ops.import_anim.bvh(filepath=str(path), update_scene_fps=True, update_scene_duration=True)
    if result != {"FINISHED"}:
        raise RuntimeError(f"BVH import of {path} failed: {result}")
    (obj,) = set(bpy.data.objects) - before
    return obj
