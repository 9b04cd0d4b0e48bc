"""Content at any frame rate through core.runtime.stylize_rig_motion: the stylizer works at 30 fps,
but its change is applied to the content's own frames, so detail between 30 fps frames survives.

Clips: a real Bandai walk (4 s), on its own rig and carried onto the bundled Mixamo rig; 60 and 120 fps
versions are upsampled and given a deterministic frame-to-frame wobble (every bone's rotation and the
pelvis translation alternate by a little each frame), so they hold detail no 30 fps clip has; the 24
fps version is downsampled."""

from __future__ import annotations

import numpy as np
import pytest

from core.io.bvh import read_bvh
from core.motion.motion import Motion
from core.ops.resample import resample
from core.ops.rotations import axis_angle_to_quat, quat_angle, quat_mul
from core.retarget.matching import rig_for_skeleton
from core.retarget.presets import bundled_rig
from core.retarget.retarget import retarget
from core.runtime import RigMotion, stylize_rig_motion
from tests.conftest import bandai_clip

WOBBLE_RAD, WOBBLE_CM = 0.01, 0.3


@pytest.fixture(scope="module")
def walk(data_root) -> RigMotion:
    clip = read_bvh(bandai_clip("dataset-2_walk_normal_001.bvh.gz")).slice(0, 120)
    return RigMotion(rig_for_skeleton(clip.skeleton), clip)


@pytest.fixture(scope="module")
def style(data_root) -> RigMotion:
    clip = read_bvh(bandai_clip("dataset-1_walk_angry_001.bvh"))
    return RigMotion(rig_for_skeleton(clip.skeleton), clip)


@pytest.fixture(scope="module", params=["bandai", "mixamo"])
def content(request, walk) -> RigMotion:
    if request.param == "bandai":
        return walk
    mixamo = bundled_rig("mixamo")
    return RigMotion(mixamo, retarget(walk.motion, walk.rig, mixamo))


def at_rate(source: RigMotion, fps: float) -> RigMotion:
    """The clip resampled to ``fps``; above 30 fps with the alternating wobble on top."""
    motion = resample(source.motion, fps)
    if fps > 30:
        motion = _wobbled(motion, source.rig.bone("Hips"))
    return RigMotion(source.rig, motion)


def _wobbled(motion: Motion, pelvis: int) -> Motion:
    sign = np.where(np.arange(motion.num_frames) % 2 == 0, 1.0, -1.0)[:, None, None]
    axes = np.random.default_rng(0).normal(size=(1, motion.skeleton.num_joints, 3))
    axes /= np.linalg.norm(axes, axis=-1, keepdims=True)
    positions = motion.positions.copy()
    positions[:, pelvis] += WOBBLE_CM * sign[:, 0] * np.array([1.0, 0.5, -1.0])
    return motion.with_arrays(quat_mul(motion.rotations, axis_angle_to_quat(WOBBLE_RAD * sign * axes)), positions)


@pytest.mark.parametrize("fps", [24.0, 60.0, 120.0])
def test_identity_returns_the_source_at_any_rate(content, style, fps):
    """Without the foot-contact cleanup (which pins the feet of any motion, the source's too) the
    identity stylizer gives back every frame of every bone, wobble included."""
    source = at_rate(content, fps)
    out = stylize_rig_motion(source, style, options={"foot_cleanup": False}, stylizer="identity")
    assert out.fps == fps and out.num_frames == source.motion.num_frames
    assert quat_angle(out.rotations, source.motion.rotations).max() < 1e-4
    np.testing.assert_allclose(out.positions, source.motion.positions, atol=1e-6)


def test_a_120_fps_result_is_the_30_fps_result_with_the_sources_detail(content, style):
    """The 30 fps frames of a 120 fps run are exactly what the same content at 30 fps gives; in
    between, the source's own frame-to-frame detail survives (the pelvis accelerates on every
    frame, not only on every 4th as a resampled 30 fps result would), and a weight-0 group keeps
    the source bit for bit."""
    source = at_rate(content, 120.0)
    weights = {"left_arm": 0.0}
    out = stylize_rig_motion(source, style, weights=weights)
    at_30 = stylize_rig_motion(RigMotion(content.rig, resample(source.motion, 30.0)), style, weights=weights)
    assert out.num_frames == source.motion.num_frames and out.fps == 120.0
    assert quat_angle(out.rotations[::4], at_30.rotations).max() < 1e-9
    np.testing.assert_allclose(out.positions[::4], at_30.positions, atol=1e-9)
    assert quat_angle(out.rotations, source.motion.rotations).max() > 0.05  # it did restyle
    pelvis = content.rig.bone("Hips")
    acceleration = np.linalg.norm(np.diff(out.positions[:, pelvis], 2, axis=0), axis=-1)
    assert acceleration.min() > 2 * WOBBLE_CM
    arm = [content.rig.bone(j) for j in ("Shoulder_L", "UpperArm_L", "LowerArm_L", "Hand_L")]
    np.testing.assert_array_equal(out.rotations[:, arm], source.motion.rotations[:, arm])


def test_every_weight_zero_is_the_source_exactly_at_120_fps(content, style):
    source = at_rate(content, 120.0)
    out = stylize_rig_motion(source, style, weights={g: 0.0 for g in ("root", "torso", "left_arm", "right_arm",
                                                                      "left_leg", "right_leg")})
    np.testing.assert_array_equal(out.rotations, source.motion.rotations)
    np.testing.assert_array_equal(out.positions, source.motion.positions)
