"""The generalization sets (issue 15): reproducible, drawn from the right clips, and their transforms
do what they say (in place stays put, cycles close, foreign clips stay on their rig and fps)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest

from core.io.bvh import read_bvh
from core.motion.canonical import PELVIS, PLACEMENT_ROOT
from core.retarget.matching import check_sides
from core.runtime import to_canonical
from training.data.index import load_index
from training.data.split import load_split
from training.evaluation import generalization_clips as C
from training.evaluation import generalization_sets as G

NO_COUNTERPART = ("angry", "chimpira", "giant", "happy", "musical", "not-confident", "proud", "sad")
IN_PLACE_RMS_CM = 2.0  # pelvis planar RMS of an in-place clip (held exactly: 0 up to float error)
TRAVEL_RMS_CM = 20.0  # ... and at least this much in the source of a travelling content


@pytest.fixture(scope="module")
def labels(data_root):
    return {clip.id: clip for clip in load_index()}


@pytest.fixture(scope="module")
def split():
    return {name: set(ids) for name, ids in load_split().items()}


@pytest.fixture(scope="module")
def styles():
    return G.load_styles()


@pytest.fixture(scope="module")
def sets(data_root):
    return {name: G.load_generalization_set(name) for name in G.SETS}


def roles(entry):
    return (("content", entry.content), ("reference", entry.reference))


def distinct(specs):
    return list(dict.fromkeys(specs))


def test_committed_files_equal_a_regenerated_run(data_root):
    for path, text in G.regenerate().items():
        assert path.read_text() == text, f"{path}: run python -m training.evaluation.generalization_sets and commit"


def test_style_halves_are_disjoint_four_and_four_and_partition_dataset1(labels, styles):
    training, unseen = set(styles["training_half"]), set(styles["unseen_half"])
    assert len(training) == len(unseen) == 4 and not training & unseen
    assert training | unseen == set(NO_COUNTERPART)
    dataset2_styles = {c.style for c in labels.values() if c.dataset == "dataset-2"}
    assert set(styles["counterparts"].values()) == dataset2_styles
    parts = styles["clips"]
    dataset1 = {i for i, c in labels.items() if c.dataset == "dataset-1"}
    assert sum(len(ids) for ids in parts.values()) == len(dataset1)
    assert set().union(*map(set, parts.values())) == dataset1
    assert {labels[i].style for i in parts["unseen_style"]} == unseen
    assert all(labels[i].style not in unseen for i in parts["unseen_content"] + parts["trainable"])
    assert {labels[i].content for i in parts["unseen_content"]} == set(styles["unseen_contents"])


def test_every_bandai_clip_is_a_test_take_or_a_dataset1_clip_of_the_right_kind(labels, split, styles, sets):
    dataset1_roles = {"unseen_contents": ("content", "unseen_content"), "unseen_styles": ("reference", "unseen_style")}
    for name, entries in sets.items():
        assert len({e.id for e in entries}) == len(entries)
        for entry in entries:
            for role, spec in roles(entry):
                if spec.source != C.BANDAI:
                    continue
                clip = labels[spec.clip]
                assert (spec.path, spec.dataset, spec.content, spec.style) == (
                    clip.path, clip.dataset, clip.content, clip.style,
                )  # fmt: skip
                if clip.dataset == "dataset-2":
                    assert clip.id in split["test"], (entry.id, role, clip.id)
                else:
                    assert dataset1_roles.get(name, (None,))[0] == role, (entry.id, role, clip.id)
                    assert clip.id in styles["clips"][dataset1_roles[name][1]], (entry.id, clip.id)


def test_unseen_contents_are_absent_from_dataset2_and_balanced(labels, styles, sets):
    dataset2_contents = {c.content for c in labels.values() if c.dataset == "dataset-2"}
    entries = sets["unseen_contents"]
    contents = {e.content.content for e in entries}
    assert contents == set(styles["unseen_contents"]) and not contents & dataset2_contents
    assert {"kick", "punch", "slash", "dash", "walk-back", "bow"} <= contents
    cells = Counter((e.content.content, e.reference.style) for e in entries)
    assert set(cells.values()) == {1} and len(cells) == len(contents) * 7
    assert 60 <= len(entries) <= 100
    assert not {e.content.style for e in entries} & set(styles["unseen_half"])


def test_unseen_style_references_are_balanced_over_styles_and_contents(styles, sets):
    entries = sets["unseen_styles"]
    assert 60 <= len(entries) <= 100
    assert {e.subject for e in entries} == {"reference"}
    by_style = Counter(e.reference.style for e in entries)
    assert set(by_style) == set(styles["unseen_half"]) and len(set(by_style.values())) == 1
    by_cell = Counter((e.reference.style, e.content.content) for e in entries)
    assert len(set(by_cell.values())) == 1 and len(by_cell) == 4 * 10


def test_in_place_contents_do_not_travel_while_their_sources_did(sets):
    entries = sets["in_place"]
    assert {e.content.content for e in entries} >= set(G.IN_PLACE_TRAVELLING)
    assert set(Counter(e.content.style for e in entries).values()) == {len(entries) // 7}
    for entry in entries:
        assert entry.content.in_place and not entry.reference.in_place
        assert entry.reference.style != entry.content.style
        held = C.clip_motion(entry.content).motion
        assert C.pelvis_planar_rms(held) < IN_PLACE_RMS_CM, entry.id
        if entry.content.content in G.IN_PLACE_TRAVELLING:
            source = C.clip_motion(replace(entry.content, in_place=False)).motion
            assert C.pelvis_planar_rms(source) > TRAVEL_RMS_CM, entry.id
    first = C.clip_motion(entries[0].content)
    assert C.pelvis_planar_rms(to_canonical(first)) < IN_PLACE_RMS_CM  # what the stylizer is given


def test_holding_in_place_removes_joint_root_and_pelvis_travel_and_keeps_the_pose(data_root, labels):
    """dataset-1_dash_normal_001 travels on joint_Root as well as on Hips: both must be held."""
    clip = labels["dataset-1_dash_normal_001"]
    motion = C.read_rig_motion(clip.path, C.BANDAI).motion
    root = motion.skeleton.index(PLACEMENT_ROOT)
    assert np.ptp(motion.positions[:, root, C.PLANAR], axis=0).max() > 100
    held = C.hold_pelvis_in_place(motion)
    assert C.pelvis_planar_rms(motion) > TRAVEL_RMS_CM and C.pelvis_planar_rms(held) < 1e-6
    assert np.ptp(held.positions[:, root, C.PLANAR], axis=0).max() == 0
    np.testing.assert_allclose(C.body_relative_positions(held), C.body_relative_positions(motion), atol=1e-6)
    np.testing.assert_array_equal(held.rotations, motion.rotations)
    pelvis = motion.skeleton.index(PELVIS)
    np.testing.assert_allclose(held.world_of([pelvis])[1][..., 1], motion.world_of([pelvis])[1][..., 1], atol=1e-9)


def test_every_short_cycle_closes_and_has_game_loop_length(sets):
    entries = sets["short_cycles"]
    assert Counter(e.content.in_place for e in entries) == {False: len(entries) // 2, True: len(entries) // 2}
    cycles = distinct(replace(e.content, in_place=False) for e in entries)
    cells = Counter((c.content, c.style) for c in cycles)
    assert set(cells.values()) == {G.CYCLES_PER_CELL} and len(cells) == len(G.CYCLE_CONTENTS) * 7
    low, high = C.CYCLE_FRAMES
    for cycle in cycles:
        assert cycle.cut == "cycle" and low <= cycle.num_frames <= high, cycle.clip
        start, stop = cycle.frames
        relative = C.body_relative_positions(C.clip_motion(replace(cycle, frames=(start, stop + 1))).motion)
        seam = C.cycle_seam(relative, 0, cycle.num_frames)
        assert seam <= C.SEAM_MAX_STEPS and seam == pytest.approx(cycle.seam_steps, abs=1e-4), cycle.clip
        assert C.cycle_seam(relative, 0, cycle.num_frames // 2) > 2 * C.SEAM_MAX_STEPS, "half a cycle must not close"
    for entry in entries:
        assert entry.reference.content == entry.content.content and entry.reference.style != entry.content.style


def test_a_crop_takes_the_most_active_window(data_root, labels):
    """A still clip with one moving stretch: the window holds the stretch."""
    rig_motion = C.read_rig_motion(labels["dataset-2_walk_normal_002"].path, C.BANDAI)
    motion = rig_motion.motion
    frames = np.zeros(motion.num_frames, dtype=int)
    frames[100:130] = np.arange(100, 130)
    still = replace(rig_motion, motion=motion.with_arrays(motion.rotations[frames], motion.positions[frames]))
    start, stop = C.most_active_window(still, 60)
    assert stop - start == 60 and start <= 100 and stop >= 131


def test_long_clips_are_cropped_to_the_stated_maximum(sets):
    for entries in sets.values():
        for entry in entries:
            for _, spec in roles(entry):
                assert 0 <= spec.frames[0] < spec.frames[1]
                if spec.cut == "crop":
                    assert spec.num_frames == round(C.MAX_CLIP_SECONDS * spec.fps), spec.path


def readme_evaluation_clips(root) -> set[str]:
    """The non-Bandai clips the data README reserves for evaluation, read here independently."""
    listed = (root / "motion" / "cmu_iclone_ccbase" / "EVALUATION.txt").read_text().split()
    cmu = {f"motion/cmu_iclone_ccbase/{name}" for name in listed if name.endswith(".bvh.gz")}
    makehuman = {
        path.relative_to(root).as_posix()
        for path in (root / "motion" / "makehuman_cc0").glob("*.bvh")
        if read_bvh(path).num_frames > 1  # the one-frame files are poses, not motion
    }
    assert len(cmu) == 15 and len(makehuman) == 2
    return cmu | makehuman


def test_every_foreign_evaluation_clip_appears_as_content_and_as_reference(data_root, sets):
    entries = sets["foreign"]
    expected = readme_evaluation_clips(data_root)
    for role in ("content", "reference"):
        used = Counter(getattr(e, role).path for e in entries if e.subject == role)
        assert set(used) == expected and set(used.values()) == {G.FOREIGN_PAIRS_PER_ROLE}, role
    for entry in entries:
        other = entry.reference if entry.subject == "content" else entry.content
        assert other.source == C.BANDAI and other.dataset == "dataset-2"
    as_content = [e for e in entries if e.subject == "content"]
    for path in expected:
        assert len({e.reference.style for e in as_content if e.content.path == path}) == G.FOREIGN_PAIRS_PER_ROLE


def test_a_foreign_clip_loads_on_its_own_rig_and_frame_rate(data_root, sets):
    specs = distinct(e.subject_clip() for e in sets["foreign"])
    assert {s.fps for s in specs} == {60.0, 24.0}
    for spec in specs:
        rig_motion = C.clip_motion(spec)
        native = read_bvh(data_root / spec.path)
        assert rig_motion.motion.fps == native.fps == spec.fps
        assert rig_motion.motion.skeleton.names == native.skeleton.names == rig_motion.rig.skeleton.names
        assert rig_motion.rig.up_axis == spec.up_axis and rig_motion.motion.num_frames == spec.num_frames
        check_sides(rig_motion.rig, rig_motion.motion)  # the stored up axis puts the sides right
    zombie = next(s for s in specs if s.path.endswith("zombieWalk1.bvh"))
    assert to_canonical(C.clip_motion(zombie)).num_frames == zombie.frames_at_feature_rate()


def test_bandai_clips_load_as_the_file_on_the_canonical_rig(data_root, labels):
    clip = labels["dataset-2_walk_normal_002"]
    spec = C.ClipSpec(C.BANDAI, clip.path, 30.0, (10, 50), clip=clip.id)
    rig_motion = C.clip_motion(spec)
    assert rig_motion.rig.name == "bandai" and rig_motion.motion.num_frames == 40 and rig_motion.motion.fps == 30
    native = read_bvh(data_root / clip.path)
    np.testing.assert_allclose(rig_motion.motion.world()[1], native.slice(10, 50).world()[1], atol=1e-9)


def test_self_reference_runs_once_per_distinct_subject_clip(sets):
    for name, entries in sets.items():
        selves = G.self_reference_entries(entries)
        assert all(e.content == e.reference for e in selves)
        assert [e.content for e in selves] == distinct(e.subject_clip() for e in entries), name
    entry = G.self_reference_entries(sets["short_cycles"])[0]
    content, reference = G.entry_motions(entry)
    assert content is reference


def test_the_suite_fits_its_time_budget():
    counts = [json.loads(G.set_path(name).read_text())["counts"] for name in G.SETS]
    assert sum(c["stylized_frames_30fps"] for c in counts) <= G.BUDGET_FRAMES
