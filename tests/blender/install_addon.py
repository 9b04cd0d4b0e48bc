"""Runs INSIDE Blender's Python (bpy): install the add-on zip, enable it, and report what loaded.

Usage: python install_addon.py ZIP --mode legacy|extension --out result.json
Meant to run with fresh user resources (tests/blender_runner.run_blender_script(user_resources=...)).

legacy:    bpy.ops.preferences.addon_install(filepath=ZIP), then addon_utils.enable("motion_style_transfer")
extension: bpy.ops.extensions.package_install_files(filepath=ZIP, repo="user_default", enable_on_install=True)

Reports: Blender's user resource folders, the operator's result or error, the add-on's module name
and whether Blender lists it as enabled, where its files landed, whether `<module>.core.protocol`,
`<module>.core.retarget.matching` and `<module>.client` import (and from where), whether torch got
imported, whether the operator/panel/preferences are registered (checked through bpy.types and
get_rna_type: `hasattr(bpy.ops.mst, "x")` is True for any name), and whether disabling unregisters.
"""

import argparse
import importlib
import importlib.util
import json
import os
import sys
import traceback

from tools.blender_addon_session import forget_repository
from tools.headless import run_and_exit

# The installed add-on must find its own `core` subpackage: a stray absolute `import core` fails here
# as it does in a user's Blender, instead of silently loading the repo's copy.
forget_repository()

PACKAGE = "motion_style_transfer"
OPERATOR, OPERATOR_CLASS, PANEL_CLASS = "stylize_action", "MST_OT_stylize_action", "VIEW3D_PT_motion_style"


def _error(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


def operator_registered() -> dict:
    import bpy

    result = {"bpy_types": hasattr(bpy.types, OPERATOR_CLASS), "naive_hasattr": hasattr(bpy.ops.mst, OPERATOR)}
    try:
        getattr(bpy.ops.mst, OPERATOR).get_rna_type()
        result["rna"] = True
    except Exception as e:  # noqa: BLE001  KeyError when the operator is not registered
        result["rna"], result["rna_error"] = False, _error(e)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("zip")
    parser.add_argument("--mode", choices=("legacy", "extension"), required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    import bpy

    addon_utils = importlib.import_module("addon_utils")  # importable only after bpy (Blender's scripts/modules)

    report = {"blender_version": list(bpy.app.version), "mode": args.mode, "errors": []}
    report["user_resources"] = {k: bpy.utils.user_resource(k) for k in ("CONFIG", "SCRIPTS", "EXTENSIONS", "DATAFILES")}
    report["env_user_resources"] = os.environ.get("BLENDER_USER_RESOURCES")
    report["before"] = {"operator": operator_registered(), "torch_in_sys_modules": "torch" in sys.modules}

    module = PACKAGE if args.mode == "legacy" else f"bl_ext.user_default.{PACKAGE}"
    report["module"] = module
    try:
        if args.mode == "legacy":
            report["install"] = sorted(bpy.ops.preferences.addon_install(filepath=args.zip))
            errors = []
            mod = addon_utils.enable(module, default_set=True, handle_error=lambda e: errors.append(_error(e)))
            report["enable_returned_module"] = mod is not None
            report["enable_errors"] = errors
        else:
            report["install"] = sorted(
                bpy.ops.extensions.package_install_files(filepath=args.zip, repo="user_default", enable_on_install=True)
            )
    except Exception as e:  # noqa: BLE001  reported, the test decides
        report["install_error"] = _error(e)
        report["errors"].append(traceback.format_exc())

    report["enabled_in_preferences"] = module in bpy.context.preferences.addons
    report["addon_utils_check"] = list(addon_utils.check(module))
    report["installed_modules"] = sorted(m for m in sys.modules if PACKAGE in m)
    loaded = sys.modules.get(module)
    report["module_file"] = getattr(loaded, "__file__", None)
    if loaded is not None and loaded.__file__:
        folder = os.path.dirname(loaded.__file__)
        report["installed_files"] = sorted(
            os.path.relpath(os.path.join(root, f), folder).replace(os.sep, "/")
            for root, dirs, files in os.walk(folder)
            for f in files
            if "__pycache__" not in root
        )
        report["bl_info_version"] = list(getattr(loaded, "bl_info", {}).get("version", ()))

    report["imports"] = {}
    for sub in ("core.protocol", "core.retarget.matching", "client"):
        name = f"{module}.{sub}"
        try:
            m = importlib.import_module(name)
            report["imports"][sub] = {"ok": True, "file": m.__file__, "name": m.__name__}
        except Exception as e:  # noqa: BLE001
            report["imports"][sub] = {"ok": False, "error": _error(e)}
    client = sys.modules.get(f"{module}.client")
    if client is not None and hasattr(client, "default_core_dir"):
        report["client_core_dir"] = str(client.default_core_dir())
    report["top_level_core"] = {
        "in_sys_modules": "core" in sys.modules,  # a top-level `core` is not the add-on's subpackage
        "findable": importlib.util.find_spec("core") is not None,
    }

    report["after"] = {
        "operator": operator_registered(),
        "panel": hasattr(bpy.types, PANEL_CLASS),
        "torch_in_sys_modules": "torch" in sys.modules,
    }
    entry = bpy.context.preferences.addons.get(module)
    report["preferences_registered"] = entry is not None and entry.preferences is not None

    try:
        addon_utils.disable(module, default_set=True)
        report["after_disable"] = {
            "operator": operator_registered(),
            "panel": hasattr(bpy.types, PANEL_CLASS),
            "enabled_in_preferences": module in bpy.context.preferences.addons,
        }
    except Exception as e:  # noqa: BLE001
        report["disable_error"] = _error(e)

    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    run_and_exit(main)
