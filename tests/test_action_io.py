"""blender_addon/action_io: numpy rotation math (torch env, no bpy) and a real-bpy round trip.

The bpy part runs tests/blender/action_io_roundtrip.py in the Blender venv on a real Bandai clip
imported by io_anim_bvh (quaternion and the default native-Euler import) and on Blender's human
metarig (non-identity bone rolls, every rotation mode, Bezier keys between sampled frames).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from tests.blender_runner import REPO_ROOT, plain_bvh, run_blender_script

SCRIPT = REPO_ROOT / "tests" / "blender" / "action_io_roundtrip.py"
ROT_TOL = 1e-4  # rad
POS_TOL = 1e-4  # armature units (metres here)


sys.path.insert(0, str(REPO_ROOT / "blender_addon"))  # action_io as a plain module (no bpy package)
import action_io as io


def _angle(a, b):
    rel = io.quat_mul(io.quat_conj(a), b)
    return 2.0 * np.arctan2(np.linalg.norm(rel[..., 1:], axis=-1), np.abs(rel[..., 0]))


def _random_quats(n, seed=0):
    q = np.random.default_rng(seed).normal(size=(n, 4))
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def test_action_io_never_imports_torch():
    text = (REPO_ROOT / "blender_addon" / "action_io.py").read_text()
    assert "torch" not in text.replace("never torch", "")


@pytest.mark.parametrize("order", ["XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX"])
def test_euler_round_trip_every_order(order):
    q = _random_quats(500)
    # gimbal-lock cases: middle axis at +-90 degrees
    e = np.random.default_rng(1).uniform(-3, 3, size=(20, 3))
    e[:, "XYZ".index(order[1])] = np.where(np.arange(20) % 2, np.pi / 2, -np.pi / 2)
    q = np.concatenate([q, io.euler_to_quat(e, order)])
    back = io.euler_to_quat(io.matrix_to_euler(io.quat_to_matrix(q), order), order)
    assert _angle(q, back).max() < 1e-6


def test_euler_matches_matrix_convention():
    # Blender "XYZ": X applied first, R = Rz @ Ry @ Rx
    a, b, c = 0.3, -0.7, 1.1
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    m = io.quat_to_matrix(io.euler_to_quat(np.array([a, b, c]), "XYZ"))
    assert np.allclose(m, rz @ ry @ rx)


def test_quat_to_euler_is_continuous_and_exact():
    t = np.linspace(0, 6 * np.pi, 400)
    axis = np.array([0.3, 0.5, 0.8]) / np.linalg.norm([0.3, 0.5, 0.8])
    q = np.concatenate([np.cos(t / 2)[:, None], np.sin(t / 2)[:, None] * axis], -1)[:, None]  # (F, 1, 4)
    e = io.quat_to_euler(q, "ZXY")
    assert np.abs(np.diff(e, axis=0)).max() < 0.2  # no 2 pi jumps
    assert _angle(io.euler_to_quat(e, "ZXY"), q).max() < 1e-6


def test_axis_angle_and_matrix_to_quat():
    q = _random_quats(300, seed=2)
    assert _angle(io.axis_angle_to_quat(io.quat_to_axis_angle(q)), q).max() < 1e-6
    assert _angle(io.matrix_to_quat(io.quat_to_matrix(q)), q).max() < 1e-6


@pytest.fixture(scope="module")
def clip(tmp_path_factory, walk_clip):
    """The real walk as plain .bvh text (Blender's importer does not read .gz)."""
    return plain_bvh(walk_clip, tmp_path_factory.mktemp("bvh"))


@pytest.mark.parametrize("case", ["bvh_quaternion", "bvh_euler", "metarig"])
def test_round_trip_in_blender(case, clip):
    r = run_blender_script(SCRIPT, case, "--bvh", clip, timeout=300)
    assert r["num_frames"] > 1 and r["num_bones"] > 1
    assert r["warnings"] == []
    # (a) the new action poses the armature exactly as the source
    assert r["pose_rot_err"] < ROT_TOL and r["pose_head_err"] < POS_TOL
    assert r["assigned_new"] and r["slot_assigned"]
    assert r["new_key_counts"] == [r["num_frames"]]  # a key on every frame of every curve
    # (b) the source action's key data is byte-identical, and it survives (fake user)
    assert r["source_hash_equal"] and r["source_still_exists"] and r["source_fake_user"]
    # (c) re-reading the written action reproduces the arrays
    assert r["reread_rot_err"] < ROT_TOL and r["reread_trans_err"] < POS_TOL and r["reread_frames_equal"]
    # (d) FK over read_action's rest skeleton gives Blender's heads and world rotations
    assert r["fk_head_err"] < POS_TOL and r["fk_rot_err"] < ROT_TOL
    if case == "metarig":
        assert r["non_identity_rest_rotations"] > 100
        assert len(r["rotation_modes"]) == 8
    if case == "bvh_euler":
        assert r["rotation_modes"] != ["QUATERNION"]
