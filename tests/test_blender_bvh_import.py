"""A BVH we write imports in real Blender (io_anim_bvh) with the same joint world positions as ours.

Done-when point of issue 3: at 5 sampled frames (first and last included, so an off-by-one in frame
numbering shows) every joint's head in Blender matches our forward kinematics within 0.01 file units
(cm for Bandai), after the importer's axis conversion and scale.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.io.bvh import read_bvh, write_bvh
from core.ops.rotations import axis_angle_to_quat
from tests.blender_runner import run_blender_script
from tests.conftest import DATA_ROOT, bandai_clip

pytestmark = pytest.mark.blender

SCRIPT = Path(__file__).parent / "blender" / "import_bvh_positions.py"
TOLERANCE = 0.01  # file units (cm for Bandai), measured after undoing the importer's scale
# io_anim_bvh's default axis_forward='-Z', axis_up='Y' maps the file's (x, y, z) to Blender's (x, -z, y).
Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


def _cmu_moving(num_frames: int = 12):
    """The CMU rest skeleton (1 frame, ZYX channels) with seeded random rotations on every joint
    and a drifting root, so every joint moves and the ZYX Euler path is exercised."""
    rest = read_bvh(DATA_ROOT / "cmu-skeleton" / "rest.bvh")
    rng = np.random.default_rng(3)
    j = rest.skeleton.num_joints
    rotations = axis_angle_to_quat(rng.normal(scale=0.8, size=(num_frames, j, 3)))
    positions = np.repeat(rest.positions[:1], num_frames, axis=0)
    positions[:, 0] += np.cumsum(rng.normal(scale=2.0, size=(num_frames, 3)), axis=0)
    return rest.with_arrays(rotations=rotations, positions=positions, fps=120.0)


CASES = {
    "dataset2-walk-gz": (lambda: read_bvh(bandai_clip("dataset-2_walk_normal_001.bvh.gz")), 1.0),
    "dataset1-dance-scale0.01": (lambda: read_bvh(bandai_clip("dataset-1_dance-short_normal_001.bvh")), 0.01),
    "cmu-rig-synthetic": (_cmu_moving, 1.0),
}


@pytest.mark.parametrize("case", list(CASES))
def test_written_bvh_imports_in_blender_with_same_joint_positions(case, data_root, tmp_path):
    load, scale = CASES[case]
    motion = load()
    path = tmp_path / "clip.bvh"
    write_bvh(motion, path)
    frames = np.unique(np.linspace(0, motion.num_frames - 1, 5).round().astype(int))
    assert len(frames) == 5

    result = run_blender_script(SCRIPT, path, "--frames", ",".join(map(str, frames)), "--scale", scale)

    # The conversion we apply is the one the importer used, and it ended up baked into the bones.
    np.testing.assert_allclose(result["axis_conversion"], Y_UP_TO_Z_UP, atol=1e-12)
    np.testing.assert_allclose(result["matrix_world"], np.eye(4), atol=1e-6)
    assert result["settings"]["global_scale"] == scale
    names = motion.skeleton.names
    assert set(result["heads"]) == set(names), "Blender's bones are not our joints"

    ours = motion.world()[1][frames] @ Y_UP_TO_Z_UP.T  # (5, J, 3), file units, Blender axes
    theirs = np.stack([np.asarray(result["heads"][n]) for n in names], axis=1) / scale
    error = np.linalg.norm(theirs - ours, axis=-1)
    f, j = np.unravel_index(np.argmax(error), error.shape)
    # The clip must really move between sampled frames, or matching positions would prove little.
    spread = np.ptp(ours, axis=0).max()
    assert spread > 100 * TOLERANCE, f"{case}: joints hardly move ({spread:.4f}); the check would be vacuous"
    assert error.max() < TOLERANCE, (
        f"{case}: Blender disagrees with our forward kinematics: worst joint {names[j]!r} at BVH frame "
        f"{frames[f]} (Blender frame {result['blender_frames'][f]}): error {error.max():.6g} > {TOLERANCE}; "
        f"ours {ours[f, j]}, Blender {theirs[f, j]}; {int((error >= TOLERANCE).sum())} of {error.size} over"
    )
    print(f"{case}: max joint position error {error.max():.3g} file units over {error.size} joint-frames")
