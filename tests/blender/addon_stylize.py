"""Runs INSIDE Blender's Python (bpy): install the built zip, stylize real clips through the add-on.

Usage: python addon_stylize.py ZIP --runtime PYTHON --content BVH --style BVH [--mode legacy|extension]
       --out result.json
Meant to run with fresh user resources (tests/blender_runner.run_blender_script(user_resources=...)).

Installs and enables the zip, imports the content and the style clips as armatures (io_anim_bvh),
sets the preferences (runtime Python = the torch env, CPU) and then measures, writing JSON:
- operator: bpy.ops.mst.stylize_action() with the panel's settings: its result, the new action
  (name, assignment, keys per mapped bone and frame), the source action's key data hash before and
  after, and the keyed pose (Blender's evaluated pose bones) against the server's output for the
  same request sent through the add-on's own client, at sampled frames;
- weights: the batch API with the left arm at weight 0 and with every weight 0, against the source;
- faults: missing runtime Python, missing model config, a config naming a missing weights file,
  a runtime that prints garbage, the server killed mid-request, a hung server past the timeout:
  each message, the file's action count unchanged, and a good request right after.
"""

import hashlib
import importlib
import json
import os
import signal
import threading
import time

import numpy as np

from tools.blender_addon_session import addon_script_parser, forget_repository, import_bvh, install_addon
from tools.headless import run_and_exit

forget_repository()


def action_hash(io, obj, action) -> str:
    """sha256 over every F-curve's path, index and key data (co, handles, interpolation)."""
    h = hashlib.sha256()
    for fc in sorted(io.action_fcurves(obj, action), key=lambda f: (f.data_path, f.array_index)):
        h.update(f"{fc.data_path}[{fc.array_index}]".encode())
        kp = fc.keyframe_points
        for prop, width, dtype in (
            ("co", 2, np.float32),
            ("handle_left", 2, np.float32),
            ("handle_right", 2, np.float32),
            ("interpolation", 1, np.int32),
        ):
            buf = np.empty(len(kp) * width, dtype=dtype)
            kp.foreach_get(prop, buf)
            h.update(buf.tobytes())
    return h.hexdigest()


def pose_world(io, obj, names, frames):
    """Blender's evaluated pose: world rotations P @ B^-1 (runtime convention) and heads, per frame."""
    import bpy

    scene = bpy.context.scene
    rest = io.rest_skeleton(obj)
    index = {n: i for i, n in enumerate(rest["bone_names"])}
    rest_q = rest["rest_quats"][[index[n] for n in names]]
    rots, heads = [], []
    for f in frames:
        scene.frame_set(int(f))
        mats = np.array([np.array(obj.pose.bones[n].matrix) for n in names])
        rots.append(io.quat_mul(io.matrix_to_quat(mats[:, :3, :3]), io.quat_conj(rest_q)))
        heads.append(mats[:, :3, 3])
    return np.array(rots), np.array(heads)


def quat_angle(io, a, b):
    d = io.quat_mul(io.quat_conj(io.quat_normalize(a)), io.quat_normalize(b))
    return 2 * np.arctan2(np.linalg.norm(d[..., 1:], axis=-1), np.abs(d[..., 0]))


def main():
    parser = addon_script_parser()
    parser.add_argument("--mode", default="legacy", choices=("legacy", "extension"))
    parser.add_argument("--faults", action="store_true")
    parser.add_argument("--standing-bvh", required=True, help="an uncompressed BVH whose zero pose raises the legs")
    args = parser.parse_args()

    import bpy

    out = {"blender": bpy.app.version_string}
    bpy.ops.wm.read_factory_settings(use_empty=True)
    module_name, mst = install_addon(args.zip, args.mode)
    out["module"] = module_name
    io = importlib.import_module(module_name + ".action_io")
    session = importlib.import_module(module_name + ".session")
    job_mod = importlib.import_module(module_name + ".job")
    operators = importlib.import_module(module_name + ".operators")
    prefs = bpy.context.preferences.addons[module_name].preferences
    prefs.runtime_python = args.runtime
    prefs.device = "CPU"
    prefs.timeout = 60.0

    style = import_bvh(args.style)
    content = import_bvh(args.content)
    scene = bpy.context.scene
    bpy.context.view_layer.objects.active = content
    source = content.animation_data.action
    settings = scene.motion_style
    settings.reference_object = style
    source_hash = action_hash(io, content, source)
    data = io.read_action(content, source)
    names = data["bone_names"]
    frames_all = data["frames"].astype(int)
    sample = np.unique(np.linspace(frames_all[0], frames_all[-1], 9).round().astype(int))
    sel = sample - frames_all[0]
    out["num_frames"], out["num_bones"] = len(frames_all), len(names)

    # --- the operator, against the server's output for the same request ---------------------------
    prepared = operators.style_request(bpy.context)
    client = session.client(prefs)
    job = job_mod.StylizeJob()
    job.start(client, prepared.request)
    out["direct_state"] = job.wait()
    server = job.result
    t0 = time.perf_counter()
    result = bpy.ops.mst.stylize_action()
    out["operator_seconds"] = time.perf_counter() - t0
    out["operator_result"] = sorted(result)
    new = content.animation_data.action
    out["new_action"] = new.name
    out["new_is_not_source"] = new != source
    out["source_hash_equal"] = action_hash(io, content, source) == source_hash
    out["source_still_exists"] = source.name in bpy.data.actions
    setup = importlib.import_module(module_name + ".rig_setup").rig_setup(content)
    mapped = sorted(setup.mapping.values())
    out["mapped_bones"] = len(mapped)
    keyed = {}
    for fc in io.action_fcurves(content, new):
        bone = fc.data_path.split('"')[1]
        kx = np.empty(2 * len(fc.keyframe_points), dtype=np.float32)
        fc.keyframe_points.foreach_get("co", kx)
        if "rotation" in fc.data_path:
            keyed.setdefault(bone, []).append(np.array_equal(kx[0::2], frames_all.astype(np.float32)))
    out["mapped_bones_keyed_every_frame"] = sum(all(keyed.get(b, [False])) for b in mapped)
    fk = importlib.import_module(module_name + ".core.ops.kinematics").forward_kinematics
    server_world, server_heads = fk(
        data["parents"], server["rotations"][sel].astype(np.float64), server["translations"][sel].astype(np.float64)
    )
    blender_world, blender_heads = pose_world(io, content, names, sample)
    mapped_idx = [names.index(b) for b in mapped]
    out["pose_vs_server_rad"] = float(quat_angle(io, blender_world[:, mapped_idx], server_world[:, mapped_idx]).max())
    out["heads_vs_server"] = float(np.abs(blender_heads - server_heads).max())
    out["style_changed_pose_rad"] = float(
        quat_angle(io, server["rotations"][sel].astype(np.float64), data["rotations"][sel]).max()
    )

    # --- weights through the batch API ---------------------------------------------------------------
    arm = [setup.mapping[j] for j in ("UpperArm_L", "LowerArm_L", "Hand_L") if j in setup.mapping]
    arm_idx = [names.index(b) for b in arm]
    new_arm0 = mst.stylize(content, source, style, weights={"left_arm": 0.0})
    again = io.read_action(content, new_arm0)
    out["arm0_left_arm_rad"] = float(
        quat_angle(io, again["rotations"][:, arm_idx], data["rotations"][:, arm_idx]).max()
    )
    other = [names.index(setup.mapping[j]) for j in ("UpperArm_R", "UpperLeg_L")]
    out["arm0_others_changed_rad"] = float(
        quat_angle(io, again["rotations"][:, other], data["rotations"][:, other]).max()
    )
    zero = dict.fromkeys(("root", "torso", "left_arm", "right_arm", "left_leg", "right_leg"), 0.0)
    new_zero = mst.stylize(content, source, style, weights=zero)
    again = io.read_action(content, new_zero)
    out["all0_rot_rad"] = float(quat_angle(io, again["rotations"], data["rotations"]).max())
    out["all0_trans"] = float(np.abs(again["translations"] - data["translations"]).max())
    # a per-group reference: the left arm takes the source's own style (the content plays itself),
    # so it stays nearer the source than with the style; pushed to a new NLA track
    full = io.read_action(content, new)
    own_arm = mst.stylize(content, source, style, group_references={"left_arm": (content, source)}, push_to_nla=True)
    mixed = io.read_action(content, own_arm)
    out["group_ref_left_arm_vs_source_rad"] = float(
        quat_angle(io, mixed["rotations"][:, arm_idx], data["rotations"][:, arm_idx]).mean()
    )
    out["full_left_arm_vs_source_rad"] = float(
        quat_angle(io, full["rotations"][:, arm_idx], data["rotations"][:, arm_idx]).mean()
    )
    tracks = content.animation_data.nla_tracks
    out["nla_track"] = bool(len(tracks)) and tracks[-1].strips[0].action == own_arm and tracks[-1].mute
    out["source_hash_equal_after_api"] = action_hash(io, content, source) == source_hash

    out["panel_operators"] = panel_operators(content)
    out["mapping"] = mapping_editor(mst, module_name, content, source, style)
    out["standing_bvh"] = standing_bvh(module_name, args.standing_bvh)
    out["metarig"] = other_rig(mst, module_name, content, source, args.content, style, prefs)

    if args.faults:
        out["faults"] = faults(mst, prefs, content, source, style, session, args)
    session.stop()
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)


def panel_operators(content) -> dict:
    """The panel's helper buttons: a weight preset, filling and clearing the bone mapping."""
    import bpy

    settings = bpy.context.scene.motion_style
    bpy.context.view_layer.objects.active = content
    entry = {"preset": sorted(bpy.ops.mst.weight_preset(preset="UPPER"))}
    entry["upper_weights"] = settings.weights()
    bpy.ops.mst.weight_preset(preset="FULL")
    mapping = content.data.motion_style_mapping
    bpy.ops.mst.fill_bone_mapping()
    entry["filled"] = mapping.overrides()
    bpy.ops.mst.clear_bone_mapping()
    entry["cleared"] = mapping.overrides()
    entry["check_runtime"] = sorted(bpy.ops.mst.check_runtime())
    texts = len(bpy.data.texts)
    entry["open_server_log"] = sorted(bpy.ops.mst.open_log(which="SERVER"))
    entry["log_text_loaded"] = len(bpy.data.texts) == texts + 1 and "core.server" in bpy.data.texts[-1].as_string()
    return entry


def other_rig(mst, module_name, content, source, content_bvh, style, prefs) -> dict:
    """Blender's human metarig (non-identity bone rolls, metres, its own names) keyed with the real
    content walk (retargeted by the bundled core, as a user's rig would carry its own animation),
    then stylized with the Bandai style armature: keys, the server's pose and weight 0 on this rig."""
    import addon_utils
    import bpy

    mod = lambda name: importlib.import_module(f"{module_name}.{name}")
    io, stylize_io, job_mod = mod("action_io"), mod("stylize_io"), mod("job")
    read_bvh = mod("core.io.bvh").read_bvh
    retarget, canonical_rig = mod("core.retarget.retarget").retarget, mod("core.retarget.presets").canonical_rig
    addon_utils.enable("rigify", default_set=True)
    bpy.ops.object.select_all(action="DESELECT")
    bpy.ops.object.armature_human_metarig_add()
    rig_obj = bpy.context.active_object
    setup = mod("rig_setup").rig_setup(rig_obj)
    entry = {"preset": setup.preset, "bones": len(rig_obj.data.bones), "mapped": len(setup.mapping)}
    walk = retarget(read_bvh(content_bvh), canonical_rig(), setup.rig)
    rest = io.rest_skeleton(rig_obj)
    walk_action = io.write_action(rig_obj, "metarig walk", walk.rotations, walk.positions, rest["bone_names"], 1)
    walk_data = io.read_action(rig_obj, walk_action)
    mapped = [walk_data["bone_names"].index(b) for b in setup.mapping.values()]

    prepared = stylize_io.prepare(
        stylize_io.take_of(rig_obj), stylize_io.take_of(style), {}, {}, {"foot_cleanup": False}
    )
    job = job_mod.StylizeJob()
    job.start(mod("session").client(prefs), prepared.request)
    entry["direct_state"] = job.wait()
    new = mst.stylize(rig_obj, walk_action, style, foot_cleanup=False)
    names, parents = walk_data["bone_names"], walk_data["parents"]
    frames = np.unique(np.linspace(walk_data["frame_start"], walk_data["frame_end"], 7).round().astype(int))
    sel = frames - walk_data["frame_start"]
    fk = mod("core.ops.kinematics").forward_kinematics
    server_world, _ = fk(parents, job.result["rotations"][sel].astype(np.float64), job.result["translations"][sel])
    blender_world, _ = pose_world(io, rig_obj, names, frames)
    entry["pose_vs_server_rad"] = float(quat_angle(io, blender_world[:, mapped], server_world[:, mapped]).max())
    keyed = {
        fc.data_path.split('"')[1]
        for fc in io.action_fcurves(rig_obj, new)
        if len(fc.keyframe_points) == len(walk_data["frames"])
    }
    entry["mapped_keyed"] = sum(b in keyed for b in setup.mapping.values())
    again = io.read_action(rig_obj, new)
    entry["style_changed_rad"] = float(
        quat_angle(io, again["rotations"][:, mapped], walk_data["rotations"][:, mapped]).max()
    )
    zero = dict.fromkeys(("root", "torso", "left_arm", "right_arm", "left_leg", "right_leg"), 0.0)
    same = io.read_action(rig_obj, mst.stylize(rig_obj, walk_action, style, weights=zero))
    entry["all0_rot_rad"] = float(quat_angle(io, same["rotations"], walk_data["rotations"]).max())

    # rig independence: the walk stylized on the metarig and on the Bandai armature, both brought to
    # the canonical skeleton, differ by this much (joint positions, cm, relative to body height)
    motion_cls = mod("core.motion.motion").Motion
    on_canonical = []
    for obj, action in ((rig_obj, new), (content, None)):
        rig = mod("rig_setup").require_rig(obj)
        if action is None:
            action = mst.stylize(obj, source, style, foot_cleanup=False)
        arrays = io.read_action(obj, action)
        motion = motion_cls(rig.skeleton, arrays["rotations"], arrays["translations"], arrays["fps"])
        on_canonical.append(retarget(motion, rig, canonical_rig()).world()[1])
    a, b = on_canonical
    height = float(np.ptp(b[0, :, 1]))
    entry["rig_independence_mean_rel"] = float(np.linalg.norm(a - b, axis=-1).mean() / height)
    entry["rig_independence_max_rel"] = float(np.linalg.norm(a - b, axis=-1).max() / height)
    return entry


def mapping_editor(mst, module_name, content, source, style) -> dict:
    """A copy of the rig whose left-arm bones carry names nothing can match: the mapping is
    incomplete and stylizing names the joints to map; set by hand on the armature, it works."""
    import bpy

    rig_setup = importlib.import_module(module_name + ".rig_setup").rig_setup
    twin = content.copy()
    twin.data = content.data.copy()
    twin.animation_data.action = source.copy()  # renaming bones renames the assigned action's paths
    bpy.context.scene.collection.objects.link(twin)
    renames = {"UpperArm_L": "b07", "LowerArm_L": "b08", "Hand_L": "b09"}
    for joint, bone in renames.items():
        twin.data.bones[joint].name = bone
    before = rig_setup(twin)
    entry = {"preset_before": before.preset, "missing_before": before.missing}
    try:
        mst.stylize(twin, None, style)
        entry["error"] = None
    except ValueError as e:
        entry["error"] = str(e)
    mapping = twin.data.motion_style_mapping
    for joint, bone in renames.items():
        setattr(mapping, joint, bone)
    after = rig_setup(twin)
    entry["missing_after"] = after.missing
    entry["manual_after"] = sorted(after.manual)
    new = mst.stylize(twin, None, style, weights={"left_arm": 0.0})
    entry["stylized"] = new.name
    entry["result_assigned"] = twin.animation_data.action == new
    return entry


def standing_bvh(module_name, path) -> dict:
    """A BVH whose zero pose raises the legs (Character Creator's), imported by Blender's importer:
    the rig the add-on reads (stood as its action shows, on the lowest foot joint) carries the clip
    onto the canonical skeleton as the runtime's reading of the same file does."""
    mod = lambda name: importlib.import_module(f"{module_name}.{name}")
    retarget, canonical_rig = mod("core.retarget.retarget").retarget, mod("core.retarget.presets").canonical_rig
    obj = import_bvh(path)
    setup = mod("rig_setup").rig_setup(obj)
    entry = {"error": setup.error, "raised_at_rest": None}
    if setup.rig is None:
        return entry
    plain = mod("core.retarget.rig").Rig(setup.rig.skeleton, setup.rig.mapping, up_axis=setup.rig.up_axis)
    entry["raised_at_rest"] = mod("core.retarget.retarget").raised_legs(plain)
    arrays = mod("action_io").read_action(obj)
    motion = mod("core.motion.motion").Motion(
        setup.rig.skeleton, arrays["rotations"], arrays["translations"], arrays["fps"]
    )
    in_blender = retarget(motion, setup.rig, canonical_rig()).world()
    bvh = mod("core.io.bvh").read_bvh(path)
    from_file = retarget(bvh, mod("core.retarget.matching").rig_for_skeleton(bvh.skeleton, motion=bvh), canonical_rig())
    from_file = from_file.world()
    entry["vs_file_rad"] = float(quat_angle(mod("action_io"), in_blender[0], from_file[0]).max())
    entry["vs_file_cm"] = float(np.linalg.norm(in_blender[1] - from_file[1], axis=-1).max())
    bpy_data = importlib.import_module("bpy").data
    bpy_data.objects.remove(obj)
    return entry


def faults(mst, prefs, content, source, style, session, args) -> dict:
    """Each fault: its message and kind, no new action, and a good request right after."""
    import bpy

    tmp = os.path.dirname(os.path.abspath(args.out))
    results = {}

    def attempt(name, setup=None, undo=None, **kw):
        count = len(bpy.data.actions)
        entry = {}
        if setup:
            setup()
        try:
            mst.stylize(content, source, style, **kw)
            entry["raised"] = None
        except mst.StylizeError as e:
            entry["raised"], entry["kind"], entry["message"] = "StylizeError", e.kind, str(e)
        entry["actions_unchanged"] = len(bpy.data.actions) == count
        if undo:
            undo()
        t0 = time.perf_counter()
        good = mst.stylize(content, source, style, name=f"after {name}")
        entry["next_ok"] = good is not None and good.name == f"after {name}"
        entry["next_seconds"] = time.perf_counter() - t0
        results[name] = entry

    def set_pref(attr, value):
        return lambda: setattr(prefs, attr, value)

    attempt(
        "missing_python",
        set_pref("runtime_python", "/nonexistent/bin/python3"),
        set_pref("runtime_python", args.runtime),
    )
    attempt("missing_config", set_pref("model_config", "/nonexistent/stylizer.json"), set_pref("model_config", ""))
    bad_config = os.path.join(tmp, "needs_weights.json")
    with open(bad_config, "w") as f:
        json.dump({"stylizer": "statistics", "weights": "missing.safetensors"}, f)
    attempt("missing_weights", set_pref("model_config", bad_config), set_pref("model_config", ""))
    garbage = os.path.join(tmp, "garbage_python")
    with open(garbage, "w") as f:
        f.write("#!/bin/sh\necho 'Welcome! this runtime prints a banner on stdout'\nsleep 30\n")
    os.chmod(garbage, 0o755)
    attempt("garbage", set_pref("runtime_python", garbage), set_pref("runtime_python", args.runtime))

    def signal_soon(number):
        def send():
            time.sleep(1.5)
            os.kill(session._client.pid, number)

        return lambda: threading.Thread(target=send, daemon=True).start()

    attempt("killed", signal_soon(signal.SIGKILL), options={"step_delay": 1.0})
    # 6 s between progress messages: heartbeats (every 2 s) keep a working server alive past the
    # 5 s timeout (the preference's least); a stopped one (alive, silent: hung) is killed
    prefs.timeout = 5.0
    attempt("slow", None, options={"step_delay": 6.0})
    attempt("hung", signal_soon(signal.SIGSTOP), options={"step_delay": 6.0})
    prefs.timeout = 60.0

    # the operator's own error path: a clear report and nothing changed
    prefs.runtime_python = "/nonexistent/bin/python3"
    count = len(bpy.data.actions)
    try:  # an operator that reports an ERROR raises RuntimeError with the report in scripts
        entry = {"result": sorted(bpy.ops.mst.stylize_action()), "message": None}
    except RuntimeError as e:
        entry = {"result": "RuntimeError", "message": str(e)}
    entry["actions_unchanged"] = len(bpy.data.actions) == count
    results["operator_missing_python"] = entry
    prefs.runtime_python = args.runtime
    return results


run_and_exit(main)
