"""Issue 13: every third-party character in ../shared/data/rigs and every naming-convention and
transform test rig, stylized through the built zip in real Blender (bpy 5.0.1) against a real
runtime server. The work happens in tests/blender/rigs_stylize.py; this file asserts on what it
measured. Armatures that are not humanoid must be refused by the panel's check before any server
is started; every other one must come out upright, without NaN, standing where the source stood,
equal (on the canonical skeleton) to the canonical version of the same clip, exact at weight 0,
with its source action untouched and still playing when re-assigned.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import DATA_ROOT, bandai_clip

from tests.blender_runner import run_addon_script
from training.data.paths import REPO_ROOT

SCRIPT = REPO_ROOT / "tests" / "blender" / "rigs_stylize.py"
RIGS = DATA_ROOT / "rigs"
CONTENT = "dataset-2_walk_normal_001.bvh.gz"
STYLE = "dataset-2_walk_elderly_001.bvh.gz"
# What the shared characters are (README of ../shared/data/rigs): armatures that are not humanoid.
NOT_HUMANOID = {"khronos_RiggedSimple", "khronos_Fox", "kenney_platformer_character"}
# Humanoid in shape but unmappable: a skeleton without hand and foot bones (the README says so).
UNMAPPABLE = {"quaternius_skeleton_2018"}
NOT_HUMANOID_ARMATURES = {"FaceArmature"}  # the goblin's second armature: one bone that moves the face

pytestmark = pytest.mark.blender


@pytest.fixture(scope="module")
def measured(tmp_path_factory, data_root):
    if not RIGS.is_dir():
        pytest.fail(f"the third-party characters are not at {RIGS}")
    tmp = tmp_path_factory.mktemp("rigs")
    return run_addon_script(SCRIPT, tmp, bandai_clip(CONTENT), bandai_clip(STYLE), "--rigs", RIGS, timeout=2400)


def _armatures(measured):
    """(label, entry) of every armature stylized or refused, shared rigs and test rigs alike."""
    for path, found in measured["shared"].items():
        assert "exception" not in found, f"{path}:\n{found['exception']}"
        for name, entry in found.items():
            if isinstance(entry, dict):
                yield f"{path}:{name}", path.split("/")[0], name, entry
    for name, entry in measured["conventions"].items():
        assert "exception" not in entry, f"{name}:\n{entry['exception']}"
        yield name, name, name, entry


def _refused(folder: str, name: str) -> bool:
    return folder in NOT_HUMANOID | UNMAPPABLE or name in NOT_HUMANOID_ARMATURES or folder == "single_chain"


def _humanoids(measured):
    return [(label, e) for label, folder, name, e in _armatures(measured) if not _refused(folder, name)]


def test_every_shared_rig_was_loaded(measured):
    files = sorted(p.relative_to(RIGS).as_posix() for p in RIGS.glob("*/*") if p.suffix.lower() in (".blend", ".glb", ".gltf", ".fbx", ".bvh"))
    assert sorted(measured["shared"]) == files


def test_humanoids_are_accepted_and_stylized(measured):
    for label, e in _humanoids(measured):
        assert not e["refused"], f"{label}: {e['error']}"
        assert e["operator"] == ["FINISHED"] and e["new_action"], label


def test_results_are_upright_and_finite(measured):
    for label, e in _humanoids(measured):
        assert not e["nan"], label
        assert e["head_above_hips_min"] > 0.1, (label, e["head_above_hips_min"])


def test_result_keeps_every_curve_of_the_source(measured):
    """Custom properties, scale and switches (a Rigify rig's IK_FK) play on in the result."""
    for label, e in _humanoids(measured):
        assert not e["source_curves_missing"], (label, e["source_curves_missing"][:5])


def test_stance_feet_stay_at_the_source_height(measured):
    for label, e in _humanoids(measured):
        assert abs(e["stance_result_cm"] - e["stance_source_cm"]) <= 1.0, (label, e["stance_source_cm"], e["stance_result_cm"])


def test_result_is_rig_invariant(measured):
    """The result brought back to the canonical skeleton equals the canonical clip's result."""
    for label, e in _humanoids(measured):
        assert e["invariance_max_rel"] <= 0.01, (label, e["invariance_max_rel"])


def test_all_weights_zero_return_the_source(measured):
    for label, e in _humanoids(measured):
        assert e["all0_max_rel"] <= 1e-4, (label, e["all0_max_rel"])


def test_source_untouched_and_still_playing(measured):
    for label, e in _humanoids(measured):
        assert e["source_hash_equal"], label
        assert e["source_slot_after_reassign"] and e["source_plays_after_reassign"] < 1e-5, label


def test_conventions_map_every_bone_they_name(measured):
    for name, entry in measured["conventions"].items():
        expected = entry.get("expected_mapping")
        if expected:
            assert {j: entry["mapping"].get(j) for j in expected} == expected, name


def test_non_humanoids_are_refused_before_any_server_call(measured):
    refused = [(label, folder, e) for label, folder, name, e in _armatures(measured) if _refused(folder, name)]
    assert refused
    for label, folder, e in refused:
        if "refused" not in e:  # a file without any armature
            assert e["result"] == "RuntimeError" and "armature" in e["message"], (label, e)
            continue
        assert e["refused"] and e["result"] == "RuntimeError", label
        assert not e["server_started"] and e["actions_unchanged"], label
        assert "Bone Mapping" in e["message"], (label, e["message"])
        assert "no bone found for the required canonical joints" in e["message"], (label, e["message"])


def test_object_transforms_give_the_same_world_result(measured):
    variants = measured["transforms"]
    for name, e in variants.items():
        assert "exception" not in e, f"{name}:\n{e['exception']}"
    plain = np.array(variants["plain"]["world_heads"])
    height = variants["plain"]["body_height"]
    for name, e in variants.items():
        assert e["up_axis"] == "Z" and e["head_above_hips_min"] > 0.1, name
        assert np.abs(np.array(e["world_heads"]) - plain).max() <= 1e-4 * height, name


@pytest.mark.parametrize("case", ["24 fps", "60 fps", "120 fps", "30 fps BVH in a 120 fps scene"])
def test_identity_stylizer_returns_every_key_at_the_source_rate(measured, case):
    e = measured["rates"][case]
    assert e["max_rad"] <= 1e-4 and e["max_translation_rel"] <= 1e-4, e
    assert e["keys_on_source_times"], e
    if case.startswith("30 fps"):
        assert abs(e["fps_read"] - 30.0) < 1e-6, e


def test_a_frame_range_stylizes_only_those_frames(measured):
    """The 30 fps BVH keyed every 4 frames from frame 1 (the importer's spacing is 120 x the file's
    frame time, 3.99999...): frames 41..80 hold its keys 41, 45, ..., 77."""
    part = measured["rates"]["frame range 41..80"]
    assert part["keys"] == 10
    assert part["first"] == pytest.approx(41.0, abs=1e-3) and part["last"] == pytest.approx(77.0, abs=1e-3)
