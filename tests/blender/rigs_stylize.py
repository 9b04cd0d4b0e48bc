"""Runs INSIDE Blender's Python (bpy): every rig of a folder of third-party characters and every
naming-convention and transform test rig, stylized through the installed add-on zip.

Usage: python rigs_stylize.py ZIP --runtime PYTHON --content BVH --style BVH --rigs DIR --out result.json
Meant to run with fresh user resources (tests/blender_runner.run_blender_script(user_resources=...)).

For each armature that the add-on accepts, a real walk (the content BVH, 30 fps) is carried onto it
in its world frame and keyed as its source action; then the operator stylizes it with the style
BVH, and this script measures what Blender shows (evaluated pose, world space): head above hips,
NaN, stance height against the source's, the result brought back to the canonical skeleton against
the server's result for the canonical version of the same clip, all weights 0 against the source,
the source action's key data and whether it still plays when re-assigned. Armatures the add-on
refuses record the panel's message and whether any server was started. Transform variants (the
same rig turned about X, scaled 0.01, parented under a turned empty) are compared with the plain
rig in world space. Writes JSON; the pytest side (tests/test_rigs_blender.py) asserts on it.
"""

import glob
import hashlib
import importlib
import json
import math
import os
import traceback

import numpy as np

from tools.blender_addon_session import addon_script_parser, forget_repository, install_addon
from tools.headless import run_and_exit

forget_repository()

GROUPS = ("root", "torso", "left_arm", "right_arm", "left_leg", "right_leg")
FEET = ("Foot_L", "Foot_R", "Toes_L", "Toes_R")
STANDARD_BODY_CM = 170.0  # "1 cm" of the stance check on a body of this height

# Mixamo roles -> the bone names of each naming convention (left side; right is derived).
ROLES = ("Hips", "Spine", "Spine1", "Spine2", "Neck", "Head")
LIMBS = ("Shoulder", "Arm", "ForeArm", "Hand", "UpLeg", "Leg", "Foot", "ToeBase")
CANONICAL_OF = {
    "Hips": "Hips", "Spine": "Spine", "Spine2": "Chest", "Neck": "Neck", "Head": "Head",
    "Shoulder": "Shoulder", "Arm": "UpperArm", "ForeArm": "LowerArm", "Hand": "Hand",
    "UpLeg": "UpperLeg", "Leg": "LowerLeg", "Foot": "Foot", "ToeBase": "Toes",
}
CONVENTIONS = {
    "mixamo_prefix1": (
        {r: f"mixamorig1:{r}" for r in ROLES},
        {limb: "mixamorig1:{Side}" + limb for limb in LIMBS},
    ),
    "mixamo_plain": ({r: r for r in ROLES}, {limb: "{Side}" + limb for limb in LIMBS}),
    "unreal": (
        {"Hips": "pelvis", "Spine": "spine_01", "Spine1": "spine_02", "Spine2": "spine_03", "Neck": "neck_01", "Head": "head"},
        dict(zip(LIMBS, ("clavicle_{s}", "upperarm_{s}", "lowerarm_{s}", "hand_{s}", "thigh_{s}", "calf_{s}", "foot_{s}", "ball_{s}"))),
    ),
    "biped": (
        {"Hips": "Bip01 Pelvis", "Spine": "Bip01 Spine", "Spine1": "Bip01 Spine1", "Spine2": "Bip01 Spine2",
         "Neck": "Bip01 Neck", "Head": "Bip01 Head"},
        {limb: "Bip01 {S} " + name for limb, name in zip(LIMBS, ("Clavicle", "UpperArm", "Forearm", "Hand", "Thigh", "Calf", "Foot", "Toe0"))},
    ),
    "character_creator": (
        {"Hips": "CC_Base_Hip", "Spine": "CC_Base_Waist", "Spine1": "CC_Base_Spine01", "Spine2": "CC_Base_Spine02",
         "Neck": "CC_Base_NeckTwist01", "Head": "CC_Base_Head"},
        {limb: "CC_Base_{S}_" + name for limb, name in zip(LIMBS, ("Clavicle", "Upperarm", "Forearm", "Hand", "Thigh", "Calf", "Foot", "ToeBase"))},
    ),
    "daz_genesis": (
        {"Hips": "hip", "Spine": "abdomenLower", "Spine1": "abdomenUpper", "Spine2": "chestUpper", "Neck": "neckLower", "Head": "head"},
        {limb: "{s}" + name for limb, name in zip(LIMBS, ("Collar", "ShldrBend", "ForearmBend", "Hand", "ThighBend", "Shin", "Foot", "Toe"))},
    ),
    "motionbuilder_bvh": (
        {"Hips": "Hips", "Spine": "Chest", "Spine1": "Chest2", "Spine2": "Chest3", "Neck": "Neck", "Head": "Head"},
        {limb: "{Side}" + name for limb, name in zip(LIMBS, ("Collar", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Toe"))},
    ),
    "vrm": (
        {"Hips": "J_Bip_C_Hips", "Spine": "J_Bip_C_Spine", "Spine1": "J_Bip_C_Chest", "Spine2": "J_Bip_C_UpperChest",
         "Neck": "J_Bip_C_Neck", "Head": "J_Bip_C_Head"},
        {limb: "J_Bip_{S}_" + name for limb, name in zip(LIMBS, ("Shoulder", "UpperArm", "LowerArm", "Hand", "UpperLeg", "LowerLeg", "Foot", "ToeBase"))},
    ),
}


def convention_names(convention: str) -> dict:
    """Mixamo bone (no prefix) -> the convention's name, and canonical joint -> that name."""
    torso, limbs = CONVENTIONS[convention]
    rename, truth = {}, {}
    for role, name in torso.items():
        rename[role] = name
        if role in CANONICAL_OF:
            truth[CANONICAL_OF[role]] = name
    for side, s, S in (("Left", "l", "L"), ("Right", "r", "R")):
        for limb, pattern in limbs.items():
            name = pattern.format(Side=side, s=s, S=S)
            rename[side + limb] = name
            truth[f"{CANONICAL_OF[limb]}_{S}"] = name
    return rename, truth


class Harness:
    def __init__(self, args):
        import bpy

        self.args = args
        self.module_name, self.mst = install_addon(args.zip)
        mod = lambda name: importlib.import_module(f"{self.module_name}.{name}")
        self.io, self.rig_setup, self.stylize_io = mod("action_io"), mod("rig_setup"), mod("stylize_io")
        self.session, self.job_mod, self.protocol = mod("session"), mod("job"), mod("core.protocol")
        self.ik_poles, self.constrained_keys = mod("ik_poles"), mod("constrained_keys")
        self.rigify_limbs = mod("rigify_limbs")
        self.kinematics = mod("core.ops.kinematics")
        self.transform = mod("core.retarget.object_transform")
        self.retarget = mod("core.retarget.retarget").retarget
        self.canonical_rig = mod("core.retarget.presets").canonical_rig()
        self.motion_cls = mod("core.motion.motion").Motion
        self.walk = mod("core.io.bvh").read_bvh(args.content)
        self.prefs = bpy.context.preferences.addons[self.module_name].preferences
        _, canonical_pos = self.canonical_rig.rest_world()
        self.canonical_height = float(np.ptp(canonical_pos[:, 1]))

    def set_prefs(self):
        self.prefs.runtime_python = self.args.runtime
        self.prefs.device = "CPU"
        self.prefs.timeout = 120.0

    # --- scene set-up ---------------------------------------------------------------------------

    def fresh_scene(self):
        import bpy

        bpy.ops.wm.read_homefile(use_empty=True)
        self.set_prefs()

    def import_style(self):
        """The style BVH at its own 30 fps, keyed on the scene's time line (fps-scaled)."""
        import bpy

        before = set(bpy.data.objects)
        bpy.ops.import_anim.bvh(
            filepath=self.args.style, update_scene_fps=False, update_scene_duration=False, use_fps_scale=True
        )
        (obj,) = set(bpy.data.objects) - before
        obj.name = "mst_style"
        return obj

    def load(self, path):
        import bpy

        ext = path.rsplit(".", 1)[-1].lower()
        if ext == "blend":
            bpy.ops.wm.open_mainfile(filepath=path)
            self.set_prefs()
        else:
            self.fresh_scene()
            if ext in ("glb", "gltf"):
                bpy.ops.import_scene.gltf(filepath=path)
            elif ext == "fbx":
                bpy.ops.import_scene.fbx(filepath=path)
            elif ext == "bvh":
                bpy.ops.import_anim.bvh(filepath=path, update_scene_fps=False, use_fps_scale=True)
        return [o for o in bpy.data.objects if o.type == "ARMATURE"]

    # --- measuring ------------------------------------------------------------------------------

    def evaluated(self, obj, frames):
        """World-space heads and tails (F, J, 3) of every bone at ``frames``, as Blender shows them."""
        import bpy

        scene = bpy.context.scene
        n = len(obj.pose.bones)
        heads, tails = np.empty((len(frames), n, 3)), np.empty((len(frames), n, 3))
        buf = np.empty(n * 3, dtype=np.float32)
        for i, f in enumerate(frames):
            whole = int(math.floor(f))
            scene.frame_set(whole, subframe=float(f - whole))
            m = np.array(obj.matrix_world)
            for arr, prop in ((heads, "head"), (tails, "tail")):
                obj.pose.bones.foreach_get(prop, buf)
                arr[i] = buf.reshape(-1, 3) @ m[:3, :3].T + m[:3, 3]
        return heads, tails

    def play(self, obj, action, slot=True):
        ad = obj.animation_data or obj.animation_data_create()
        ad.action = action
        if slot and self.io.slotted() and ad.action_slot is None and len(action.slots):
            ad.action_slot = action.slots[0]

    def action_hash(self, obj, action) -> str:
        h = hashlib.sha256()
        for fc in sorted(self.io.action_fcurves(obj, action), key=lambda f: (f.data_path, f.array_index)):
            h.update(f"{fc.data_path}[{fc.array_index}]".encode())
            kp = fc.keyframe_points
            for prop, width, dtype in (("co", 2, np.float32), ("handle_left", 2, np.float32), ("interpolation", 1, np.int32)):
                buf = np.empty(len(kp) * width, dtype=dtype)
                kp.foreach_get(prop, buf)
                h.update(buf.tobytes())
        return h.hexdigest()

    def on_canonical(self, obj, rig, action):
        """The action as read by the add-on (world frame) carried onto the canonical skeleton."""
        data = self.io.read_action(obj, action)
        rot, trans = self.transform.to_world(
            data["parents"], data["rotations"], data["translations"], np.array(obj.matrix_world)
        )
        motion = self.motion_cls(rig.skeleton, rot, trans, data["fps"])
        return self.retarget(motion, rig, self.canonical_rig), data

    def server_stylize_canonical(self, motion, style):
        """The server's result for a canonical motion, with the same request settings as the operator."""
        wire = (self.canonical_rig.to_json(), motion.fps, motion.rotations.astype(np.float32),
                motion.positions.astype(np.float32))
        style_wire, _ = self.stylize_io._wire_motion(self.stylize_io.take_of(style), "style")
        request = self.protocol.stylize_request(None, wire, style_wire, {}, {}, {"foot_cleanup": True})
        job = self.job_mod.StylizeJob()
        job.start(self.session.client(self.prefs), request)
        job.wait()
        if job.state != "done":
            raise RuntimeError(job.describe_error())
        return self.motion_cls(self.canonical_rig.skeleton, job.result["rotations"].astype(np.float64),
                               job.result["translations"].astype(np.float64), motion.fps)

    # --- one armature ---------------------------------------------------------------------------

    def write_walk(self, obj, rig):
        """The content walk carried onto the rig in its world frame, keyed as a new action."""
        rest = self.io.rest_skeleton(obj)
        on_rig = self.retarget(self.walk, self.canonical_rig, rig)
        rot, trans = on_rig.rotations, on_rig.positions
        anchors = self.ik_poles.pole_anchors(obj)
        if anchors:  # IK poles keep their rest place relative to the thighs, as an animator keys them
            at_rest = (np.broadcast_to([1.0, 0.0, 0.0, 0.0], rot.shape), np.broadcast_to(rig.skeleton.offsets, trans.shape))
            rot, trans = self.ik_poles.follow_anchors(rest["parents"], rest["bone_names"], anchors, at_rest, (rot, trans))
        rot, trans = self.transform.from_world(rest["parents"], rot, trans, np.array(obj.matrix_world))
        ad = obj.animation_data
        slot = ad.action_slot.name_display if ad is not None and self.io.slotted() and ad.action_slot else None
        # every channel keyed, as an exported take has it: Blender leaves an unkeyed channel at the
        # value the last action played gave it, and a source must not depend on what played before
        # a generated Rigify rig's limbs played in FK, as an animator keying its FK controls has them
        switches = dict.fromkeys((path for _, path in self.rigify_limbs.fk_controls(obj).values()), self.rigify_limbs.FK)
        action = self.io.write_action(obj, "mst walk", rot, trans, rest["bone_names"], 1, fps=self.walk.fps,
                                      slot_name=slot, locations="all", assign=True, protect_previous=True,
                                      properties=switches)
        # controls that hang from constrained helpers (generated Rigify) keyed so that the walk is
        # what the rig shows, as an animator posing them would
        keyable = self.constrained_keys.keyable_bones(obj, rest, list(rig.mapping.values()))
        if keyable:  # only bones below an active constraint are keyable
            frames = 1 + (self.io.scene_fps() / self.walk.fps) * np.arange(len(rot))
            targets = self.kinematics.forward_kinematics(rest["parents"], rot, trans)
            report = self.constrained_keys.key_to_targets(obj, action, rest, frames, targets, keyable)
            assert not report.unresolved, report
        return action

    def refusal(self, obj, style) -> dict:
        """The operator on an armature the add-on cannot use: its message, and no server started."""
        import bpy

        self.session.stop()
        bpy.context.view_layer.objects.active = obj
        bpy.context.scene.motion_style.reference_object = style
        count = len(bpy.data.actions)
        try:
            result, message = sorted(bpy.ops.mst.stylize_action()), ""
        except RuntimeError as e:
            result, message = "RuntimeError", str(e)
        return {"result": result, "message": message, "server_started": self.session._client is not None,
                "actions_unchanged": len(bpy.data.actions) == count,
                "panel_error": self.rig_setup.rig_setup(obj).error}

    def stylize_armature(self, obj, style, invariance=True) -> dict:
        import bpy

        setup = self.rig_setup.rig_setup(obj)
        entry = {"bones": len(obj.data.bones), "preset": setup.preset, "mapping": setup.mapping,
                 "found_by": setup.found_by, "error": setup.error}
        if setup.rig is None:
            entry.update(refused=True, **self.refusal(obj, style))
            return entry
        rig = setup.rig
        entry.update(refused=False, up_axis=rig.up_axis, floor=rig.floor)
        own = obj.animation_data.action if obj.animation_data else None
        entry["own_action"] = own.name if own else None
        source = self.write_walk(obj, rig)
        source_hash = self.action_hash(obj, source)
        names = [b.name for b in obj.pose.bones]
        idx = lambda joint: names.index(rig.mapping[joint])
        feet = [idx(j) for j in FEET if j in rig.mapping]
        data = self.io.read_action(obj, source)
        frames = data["frames"]
        src_heads, src_tails = self.evaluated(obj, frames)
        rest_points = np.concatenate([src_heads[0], src_tails[0]])
        height = float(np.ptp(rest_points[:, 2]))
        entry["body_height"] = height
        entry["frames"], entry["fps"] = len(frames), data["fps"]

        scene = bpy.context.scene
        bpy.context.view_layer.objects.active = obj
        settings = scene.motion_style
        settings.reference_object, settings.source_action = style, source
        for g in GROUPS:
            getattr(settings, g).weight = 1.0
        entry["operator"] = sorted(bpy.ops.mst.stylize_action())
        new = obj.animation_data.action
        entry["new_action"] = new.name if new != source else None
        heads, tails = self.evaluated(obj, frames)
        keys = np.concatenate([self._keys(fc) for fc in self.io.action_fcurves(obj, new)])
        entry["nan"] = bool(np.isnan(keys).any() or np.isnan(heads).any())
        curves = lambda action: {(fc.data_path, fc.array_index) for fc in self.io.action_fcurves(obj, action)}
        # the result plays with the source's switches and extras: every source curve has its own
        # (a connected bone's location does nothing, so it may go)
        inert = {f'pose.bones["{b.name}"].location' for b in obj.data.bones if b.use_connect}
        entry["source_curves_missing"] = sorted(f"{p}[{i}]" for p, i in curves(source) - curves(new) if p not in inert)
        up = heads[:, idx("Head"), 2] - heads[:, idx("Hips"), 2]
        entry["head_above_hips_min"] = float(up.min() / height)
        lowest = lambda h, t: np.minimum(h[:, feet].min(1), t[:, feet].min(1))[:, 2]
        cm = height / STANDARD_BODY_CM
        entry["stance_source_cm"] = float(np.median(lowest(src_heads, src_tails)) / cm)
        entry["stance_result_cm"] = float(np.median(lowest(heads, tails)) / cm)
        entry["result_seconds"] = None
        if invariance:
            result_c, _ = self.on_canonical(obj, rig, new)
            source_c, _ = self.on_canonical(obj, rig, source)
            direct = self.server_stylize_canonical(source_c, style)
            # the canonical result through the rig's joints too: a rig without clavicles (or toes)
            # cannot hold their motion, whatever the pipeline does; both then differ only by it
            held = self.retarget(self.retarget(direct, self.canonical_rig, rig), rig, self.canonical_rig)
            joints = [self.canonical_rig.bone(j) for j in rig.mapping]
            a = result_c.world()[1][:, joints]
            for key, b in (("invariance", held), ("invariance_unheld", direct)):
                error = np.linalg.norm(a - b.world()[1][:, joints], axis=-1).max(0) / self.canonical_height
                entry[f"{key}_max_rel"] = float(error.max())
                entry[f"{key}_worst_joint"] = list(rig.mapping)[int(error.argmax())]
        zero = self.mst.stylize(obj, source, style, weights=dict.fromkeys(GROUPS, 0.0))
        z_heads, z_tails = self.evaluated(obj, frames)
        # what the character shows: bones that deform the mesh and the mapped ones; helpers of a
        # limb mode the result does not play in (Rigify's IK chain when keyed in FK) may differ
        shown = [i for i, b in enumerate(obj.pose.bones) if b.bone.use_deform or b.name in rig.mapping.values()]
        entry["all0_max_rel"] = float(max(np.abs(z_heads - src_heads)[:, shown].max(), np.abs(z_tails - src_tails)[:, shown].max()) / height)
        entry["source_hash_equal"] = self.action_hash(obj, source) == source_hash
        self.play(obj, source, slot=False)  # as an artist re-assigns it: Blender picks the slot
        entry["source_slot_after_reassign"] = bool(not self.io.slotted() or obj.animation_data.action_slot is not None)
        again, _ = self.evaluated(obj, frames[len(frames) // 2 : len(frames) // 2 + 1])
        entry["source_plays_after_reassign"] = float(np.abs(again[0] - src_heads[len(frames) // 2]).max() / height)
        if not invariance:  # the transform variants compare these between rigs
            entry["world_heads"] = heads[:, [idx(j) for j in sorted(rig.mapping)]].tolist()
        del zero
        return entry

    @staticmethod
    def _keys(fc):
        buf = np.empty(2 * len(fc.keyframe_points), dtype=np.float32)
        fc.keyframe_points.foreach_get("co", buf)
        return buf

    # --- cases ----------------------------------------------------------------------------------

    def shared_rigs(self) -> dict:
        out = {}
        for path in sorted(glob.glob(os.path.join(self.args.rigs, "*", "*"))):
            if path.rsplit(".", 1)[-1].lower() not in ("blend", "glb", "gltf", "fbx", "bvh"):
                continue
            key = os.path.relpath(path, self.args.rigs)
            if self.args.match not in key:
                continue
            try:
                armatures = self.load(path)
                style = self.import_style()
                if not armatures:
                    out[key] = {"armatures": 0, **self.refusal_without_armature(style)}
                    continue
                out[key] = {"armatures": len(armatures)}
                for obj in armatures:
                    out[key][obj.name] = self.stylize_armature(obj, style, invariance=True)
            except Exception:  # noqa: BLE001  recorded and asserted on by the pytest side
                out[key] = {"exception": traceback.format_exc()}
        return out

    def refusal_without_armature(self, style) -> dict:
        import bpy

        meshes = [o for o in bpy.data.objects if o.type == "MESH"]
        if meshes:
            bpy.context.view_layer.objects.active = meshes[0]
        try:
            result, message = sorted(bpy.ops.mst.stylize_action()), ""
        except RuntimeError as e:
            result, message = "RuntimeError", str(e)
        return {"result": result, "message": message}

    def mixamo_rig(self, convention=None):
        """The bundled Mixamo rest skeleton as an armature, its bones renamed to ``convention``."""
        import bpy

        self.fresh_scene()
        path = os.path.join(os.path.dirname(importlib.import_module(self.module_name).__file__), "core", "retarget", "rigs", "mixamo.bvh")
        bpy.ops.import_anim.bvh(filepath=path, update_scene_fps=False)
        obj = next(o for o in bpy.data.objects if o.type == "ARMATURE")
        obj.animation_data_clear()
        truth = {}
        if convention is not None:
            rename, truth = convention_names(convention)
            for bone in list(obj.data.bones):
                plain = bone.name.split(":", 1)[-1]
                if plain in rename:
                    bone.name = rename[plain]
        return obj, truth

    def convention_rigs(self) -> dict:
        out = {}
        for convention in CONVENTIONS:
            if self.args.match not in convention:
                continue
            try:
                obj, truth = self.mixamo_rig(convention)
                style = self.import_style()
                entry = self.stylize_armature(obj, style)
                entry["expected_mapping"] = truth
                out[convention] = entry
            except Exception:  # noqa: BLE001
                out[convention] = {"exception": traceback.format_exc()}
        built = (("ik_feet", self.ik_feet), ("no_toes", self.no_toes), ("metarig", self.metarig),
                 ("rigify_generated", self.rigify_generated),
                 ("fbx_roundtrip_unreal", lambda: self.fbx_roundtrip("unreal")), ("single_chain", self.single_chain))
        for name, build in built:
            if self.args.match not in name:
                continue
            try:
                obj = build()
                style = self.import_style()
                out[name] = self.stylize_armature(obj, style)
            except Exception:  # noqa: BLE001
                out[name] = {"exception": traceback.format_exc()}
        return out

    def edit(self, obj, fn):
        import bpy

        bpy.context.view_layer.objects.active = obj
        bpy.ops.object.mode_set(mode="EDIT")
        fn(obj.data.edit_bones)
        bpy.ops.object.mode_set(mode="OBJECT")

    def ik_feet(self):
        """Game-rig feet: the foot bones parented to the hips, not to the shins (same geometry)."""
        obj, _ = self.mixamo_rig("mixamo_plain")

        def reparent(bones):
            for side in ("Left", "Right"):
                foot = bones[f"{side}Foot"]
                foot.use_connect = False
                foot.parent = bones["Hips"]

        self.edit(obj, reparent)
        return obj

    def no_toes(self):
        obj, _ = self.mixamo_rig("unreal")

        def drop(bones):
            for name in ("ball_l", "ball_r"):
                for child in list(bones[name].children_recursive):
                    bones.remove(child)
                bones.remove(bones[name])

        self.edit(obj, drop)
        return obj

    def metarig(self):
        import addon_utils
        import bpy

        self.fresh_scene()
        addon_utils.enable("rigify", default_set=True)
        bpy.ops.object.armature_human_metarig_add()
        return bpy.context.active_object

    def rigify_generated(self):
        """Blender's metarig generated into a Rigify rig (FK/IK controls, constraints, 700 bones)."""
        import bpy

        metarig = self.metarig()
        bpy.ops.pose.rigify_generate()
        return next(o for o in bpy.data.objects if o.type == "ARMATURE" and o != metarig)

    def single_chain(self):
        import bpy

        self.fresh_scene()
        bpy.ops.object.armature_add()
        obj = bpy.context.active_object

        def extend(bones):
            parent = bones[0]
            for i in range(4):
                b = bones.new(f"Bone.{i + 1:03d}")
                b.head, b.tail, b.parent, b.use_connect = parent.tail, parent.tail + (parent.tail - parent.head), parent, True
                parent = b

        self.edit(obj, extend)
        bone = obj.pose.bones["Bone.002"]  # an animated chain, as a user would select one
        for frame, angle in ((1, 0.0), (20, 0.5)):
            bone.rotation_quaternion = (math.cos(angle / 2), math.sin(angle / 2), 0.0, 0.0)
            bone.keyframe_insert("rotation_quaternion", frame=frame)
        return obj

    def fbx_roundtrip(self, convention):
        """The convention rig exported through Blender's FBX exporter and imported again."""
        import bpy

        obj, _ = self.mixamo_rig(convention)
        path = os.path.join(os.path.dirname(os.path.abspath(self.args.out)), f"{convention}.fbx")
        bpy.ops.object.select_all(action="DESELECT")
        obj.select_set(True)
        bpy.ops.export_scene.fbx(filepath=path, use_selection=True, add_leaf_bones=False, bake_anim=False)
        self.fresh_scene()
        bpy.ops.import_scene.fbx(filepath=path)
        return next(o for o in bpy.data.objects if o.type == "ARMATURE")

    def rates(self) -> dict:
        """The identity stylizer on sources keyed at 24, 60 and 120 fps (every scene frame, with
        detail no 30 fps take has), and on a 30 fps BVH keyed every 4 frames of a 120 fps scene:
        the largest rotation change of any key, and whether the keys sit on the source's times."""
        import bpy

        mod = lambda name: importlib.import_module(f"{self.module_name}.{name}")
        rotations, resample = mod("core.ops.rotations"), mod("core.ops.resample").resample
        config = os.path.join(os.path.dirname(os.path.abspath(self.args.out)), "identity.json")
        with open(config, "w") as f:
            json.dump({"stylizer": "identity"}, f)
        out = {}
        for fps in (24, 60, 120):
            obj, _ = self.mixamo_rig("mixamo_plain")
            bpy.context.scene.render.fps, bpy.context.scene.render.fps_base = fps, 1.0
            style = self.import_style()
            rig = self.rig_setup.rig_setup(obj).rig
            walk = resample(self.walk, fps)
            t = np.arange(walk.num_frames) / fps
            wobble = rotations.axis_quat("x", 0.05 * np.sin(2 * np.pi * 11.0 * t))[:, None]  # 11 Hz: above 30 fps' Nyquist
            walk = walk.with_arrays(rotations.quat_mul(walk.rotations, np.broadcast_to(wobble, walk.rotations.shape)))
            on_rig = self.retarget(walk, self.canonical_rig, rig)
            rest = self.io.rest_skeleton(obj)
            source = self.io.write_action(obj, f"walk {fps}", on_rig.rotations, on_rig.positions, rest["bone_names"], 1)
            out[f"{fps} fps"] = self._identity(obj, source, style, config)
        self.fresh_scene()
        bpy.context.scene.render.fps, bpy.context.scene.render.fps_base = 120, 1.0
        style = self.import_style()
        before = set(bpy.data.objects)
        bpy.ops.import_anim.bvh(filepath=self.args.content, update_scene_fps=False, use_fps_scale=True)
        (bvh,) = set(bpy.data.objects) - before
        out["30 fps BVH in a 120 fps scene"] = self._identity(bvh, bvh.animation_data.action, style, config)
        part = self.mst.stylize(bvh, None, style, frame_range=(41, 80), name="part")  # keys at 41, 45, ... 77
        times = np.unique(np.concatenate([self._keys(fc)[0::2] for fc in self.io.action_fcurves(bvh, part)]))
        out["frame range 41..80"] = {"first": float(times[0]), "last": float(times[-1]), "keys": len(times)}
        self.prefs.model_config = ""
        self.session.stop()
        return out

    def _identity(self, obj, source, style, config) -> dict:
        self.prefs.model_config = config
        data = self.io.read_action(obj, source)
        new = self.mst.stylize(obj, source, style, foot_cleanup=False)
        again = self.io.read_action(obj, new)
        d = self.io.quat_mul(self.io.quat_conj(data["rotations"]), again["rotations"])
        angle = 2 * np.arctan2(np.linalg.norm(d[..., 1:], axis=-1), np.abs(d[..., 0]))
        key_times = np.unique(np.concatenate([self._keys(fc)[0::2] for fc in self.io.action_fcurves(obj, source)]))
        new_times = np.unique(np.concatenate([self._keys(fc)[0::2] for fc in self.io.action_fcurves(obj, new)]))
        return {
            "fps_read": data["fps"],
            "frames": len(data["frames"]),
            "max_rad": float(angle.max()),
            "max_translation_rel": float(np.abs(again["translations"] - data["translations"]).max()
                                         / np.ptp(data["heads"][:, 2])),
            "keys_on_source_times": bool(len(new_times) == len(key_times) and np.allclose(new_times, key_times, atol=1e-3)),
        }

    def transform_variants(self) -> dict:
        """The same rig (Mixamo names) plain, turned +-90 degrees about X and scaled 0.01, and under a
        turned, moved empty: the armature data carries the inverse, so all look the same in the world."""
        import bpy
        from mathutils import Euler, Matrix

        out = {}
        variants = {
            "plain": None,
            "rot_x_pos90_scale_0.01": Matrix.Rotation(math.radians(90), 4, "X") @ Matrix.Scale(0.01, 4),
            "rot_x_neg90": Matrix.Rotation(math.radians(-90), 4, "X"),
            "under_turned_empty": "empty",
        }
        for name, matrix in variants.items():
            try:
                obj, _ = self.mixamo_rig("mixamo_plain")
                if matrix == "empty":
                    empty = bpy.data.objects.new("mst_parent", None)
                    bpy.context.scene.collection.objects.link(empty)
                    empty.matrix_world = Matrix.Translation((1.0, -2.0, 0.5)) @ Euler((0.4, 0.2, 1.1)).to_matrix().to_4x4() @ Matrix.Scale(2.0, 4)
                    obj.parent = empty
                    bpy.context.view_layer.update()
                    matrix = obj.matrix_world.copy()
                if matrix is not None:
                    obj.data.transform(matrix.inverted())
                    if obj.parent is None:
                        obj.matrix_world = matrix
                    bpy.context.view_layer.update()
                style = self.import_style()
                out[name] = self.stylize_armature(obj, style, invariance=False)
            except Exception:  # noqa: BLE001
                out[name] = {"exception": traceback.format_exc()}
        return out


def main():
    parser = addon_script_parser()
    parser.add_argument("--rigs", required=True)
    parser.add_argument("--only", default="rates,transforms,conventions,shared")
    parser.add_argument("--match", default="", help="only the shared rigs and test rigs whose path or name contains this")
    args = parser.parse_args()

    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    h = Harness(args)
    out = {"blender": bpy.app.version_string}
    parts = args.only.split(",")
    if "rates" in parts:
        out["rates"] = h.rates()
    if "transforms" in parts:
        out["transforms"] = h.transform_variants()
    if "conventions" in parts:
        out["conventions"] = h.convention_rigs()
    if "shared" in parts:
        out["shared"] = h.shared_rigs()
    h.session.stop()
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)


run_and_exit(main)
