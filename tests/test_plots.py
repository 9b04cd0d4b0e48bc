"""Plots for people (training.plots) on real clips: files decode, GIFs have the right frames, timing
and size, strips are not blank and show both body sides, and the bundled example clips are intact."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.io.bvh import read_bvh
from tests.conftest import REPO_ROOT, bandai_clip
from training import plots
from training.plots import animate_gif, gif_frame_indices, joint_side, stick_figure_strip

EXAMPLES = REPO_ROOT / "examples"
EXAMPLE_CLIPS = sorted((EXAMPLES / "clips").glob("*.bvh"))
MB = 1024 * 1024


def _rgb(color: str) -> np.ndarray:
    return np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)])


def _pixels_near(img: np.ndarray, color: str, tol: int = 40) -> int:
    return int((np.abs(img.astype(int) - _rgb(color)).max(-1) < tol).sum())


def _gif_frames(path: Path) -> tuple[list[np.ndarray], list[int]]:
    frames, durations = [], []
    with Image.open(path) as im:
        for k in range(im.n_frames):
            im.seek(k)
            frames.append(np.asarray(im.convert("RGB")))
            durations.append(im.info["duration"])
    return frames, durations


@pytest.fixture(scope="module")
def walk(walk_clip):
    return read_bvh(walk_clip)


def test_strip_of_a_real_walk_is_a_readable_png(walk, tmp_path):
    out = stick_figure_strip(walk, None, tmp_path / "strip.png", frames=6, titles="walk · normal · take 1")
    assert out.is_file() and out.stat().st_size > 10_000
    with Image.open(out) as im:
        assert im.format == "PNG"
        img = np.asarray(im.convert("RGB"))
    h, w, _ = img.shape
    assert 600 <= w <= 2000 and 250 <= h <= 800, (w, h)
    gray = img.mean(-1)
    assert gray.std() > 15  # not blank
    ink = (gray < 200).mean()
    assert 0.005 < ink < 0.25, ink  # drawn figures on a white page, not a filled block
    # Left limbs blue and right limbs orange, both clearly present in every figure row.
    assert _pixels_near(img, plots.LEFT_COLOR) > 1500
    assert _pixels_near(img, plots.RIGHT_COLOR) > 1500


def test_strip_side_view_geometry_is_upright_and_walks_left_to_right(walk):
    (clip,) = plots._prepare(walk, None, None, None, None, "y", 0.0)
    right, up, _ = clip.basis("side")
    assert clip.travels
    head = clip.positions[:, walk.skeleton.index("Head")]
    toes = clip.positions[:, [walk.skeleton.index("Toes_L"), walk.skeleton.index("Toes_R")]]
    assert np.all(head @ up > (toes @ up).max(-1) + 100)  # upright: head a metre above the toes
    pelvis_x = clip.positions[:, clip.pelvis] @ right
    assert pelvis_x[-1] - pelvis_x[0] > 300  # the walk runs to screen right, metres of it


def test_gif_of_a_real_walk_has_real_time_frames(walk, walk_clip, tmp_path):
    out = animate_gif(walk, None, tmp_path / "walk.gif", fps=15, titles="walk")
    assert out.is_file()
    # dataset-2_walk_normal_001: 273 frames at 30 fps last 272/30 s; at 15 fps that is source frames
    # 0, 2, ..., 272 -> 137 GIF frames.
    expected = math.floor((walk.num_frames - 1) / walk.fps * 15) + 1
    assert walk.num_frames == 273 and expected == 137
    assert len(gif_frame_indices(walk.num_frames, walk.fps, 15)) == expected
    frames, durations = _gif_frames(out)
    assert len(frames) == expected
    assert sum(durations) == pytest.approx(expected / 15 * 1000, abs=10)  # plays in real time
    assert all(d in (60, 70) for d in durations)
    h, w, _ = frames[0].shape
    assert w <= 600 and h <= 400
    assert out.stat().st_size < 2 * MB * (walk.num_frames / 300)  # < 2 MB per 10 s
    # The figure moves: poses a second apart differ, and each frame has ink on white.
    assert np.abs(frames[0].astype(int) - frames[15].astype(int)).sum() > 0
    assert all(f.mean(-1).std() > 10 for f in frames[::20])
    assert _pixels_near(frames[30], plots.LEFT_COLOR) > 100 and _pixels_near(frames[30], plots.RIGHT_COLOR) > 100


def test_gif_of_ten_seconds_stays_under_2_mb(data_root, tmp_path):
    motion = read_bvh(bandai_clip("dataset-2_walk_elderly_015.bvh.gz")).slice(0, 301)  # exactly 10.0 s
    out = animate_gif(motion, None, tmp_path / "ten.gif", fps=15)
    with Image.open(out) as im:
        assert im.n_frames == 151
    assert out.stat().st_size < 2 * MB, out.stat().st_size


def test_side_by_side_gif_holds_the_shorter_clip(walk, data_root, tmp_path):
    run = read_bvh(bandai_clip("dataset-2_run_active_044.bvh.gz"))  # 78 frames, 2.6 s
    single = animate_gif(run, None, tmp_path / "run.gif", fps=10)
    pair = animate_gif([walk, run], None, tmp_path / "pair.gif", fps=10, titles=["walk", "run"])
    with Image.open(single) as a, Image.open(pair) as b:
        assert a.n_frames == math.floor(77 / 30 * 10) + 1
        assert b.n_frames == math.floor((walk.num_frames - 1) / 30 * 10) + 1  # the longer clip sets the length
        assert b.size[0] > a.size[0]
    frames, _ = _gif_frames(pair)
    half = frames[0].shape[1] // 2
    # After the run ends its panel holds the last pose while the walk panel keeps moving.
    late_a, late_b = frames[-10], frames[-1]
    assert np.array_equal(late_a[40:-60, half + 5 :], late_b[40:-60, half + 5 :])
    assert not np.array_equal(late_a[40:-60, :half], late_b[40:-60, :half])


def test_any_rig_plots_from_positions_and_parents(data_root, tmp_path):
    cmu = read_bvh(data_root / "cmu-skeleton" / "rest.bvh")  # 31 joints, CMU names, one frame
    _, world = cmu.world()
    strip = stick_figure_strip(world, cmu.skeleton.parents, tmp_path / "cmu.png", frames=3, names=cmu.skeleton.names,
                               units="CMU units", ground=None, view="both")
    with Image.open(strip) as im:
        img = np.asarray(im.convert("RGB"))
    assert img.mean(-1).std() > 10
    assert _pixels_near(img, plots.LEFT_COLOR) > 200 and _pixels_near(img, plots.RIGHT_COLOR) > 200
    # Without names every bone is grey, and Z-up input gives the same picture as Y-up.
    y_up = world[..., [0, 1, 2]]
    z_up = np.stack([world[..., 0], -world[..., 2], world[..., 1]], -1)
    a = stick_figure_strip(y_up, cmu.skeleton.parents, tmp_path / "a.png", frames=1, ground=None, titles="rig")
    b = stick_figure_strip(z_up, cmu.skeleton.parents, tmp_path / "b.png", frames=1, ground=None, titles="rig", up="z")
    with Image.open(a) as ia, Image.open(b) as ib:
        pa, pb = np.asarray(ia.convert("RGB")), np.asarray(ib.convert("RGB"))
    assert _pixels_near(pa, plots.LEFT_COLOR) == 0
    assert pa.shape == pb.shape and np.abs(pa.astype(int) - pb.astype(int)).mean() < 1.0


def test_bad_input_is_a_clear_error(walk, tmp_path):
    with pytest.raises(ValueError, match="parents"):
        stick_figure_strip(np.zeros((4, 3, 3)), None, tmp_path / "x.png")
    with pytest.raises(ValueError, match="joints but"):
        stick_figure_strip(np.zeros((4, 3, 3)), (-1, 0), tmp_path / "x.png")
    with pytest.raises(ValueError, match="titles"):
        animate_gif([walk, walk], None, tmp_path / "x.gif", titles=["only one"])


@pytest.mark.parametrize(
    "name, side",
    [("Hand_L", "L"), ("Toes_R", "R"), ("mixamorig:LeftArm", "L"), ("RightUpLeg", "R"), ("DEF-thigh.L.001", "L"),
     ("upper_arm.R", "R"), ("LHipJoint", "L"), ("RThumb", "R"), ("lhumerus", "L"), ("Bip01 R Thigh", "R"),
     ("Hips", None), ("joint_Root", None), ("LowerBack", None), ("Head", None), ("Upright", None)],
)
def test_joint_side_from_names(name, side):
    assert joint_side(name) == side


def test_bundled_examples_are_intact_and_attributed(data_root):
    assert len(EXAMPLE_CLIPS) >= 4
    assert sum(p.stat().st_size for p in EXAMPLE_CLIPS) < 2 * MB
    attribution = (EXAMPLES / "ATTRIBUTION.md").read_text()
    assert "CC BY-NC 4.0" in attribution and "Bandai Namco Research" in attribution
    for path in EXAMPLE_CLIPS:
        assert path.name in attribution
        motion = read_bvh(path)
        assert motion.skeleton.num_joints == 22 and motion.fps == 30 and motion.num_frames > 30
        source = bandai_clip(path.name + ".gz")
        with gzip.open(source, "rb") as f:
            assert f.read() == path.read_bytes(), f"{path.name} differs from {source}"
