"""The committed evaluation sets: reproducible, test-split only, the right kind of pairs, balanced."""

from __future__ import annotations

from collections import Counter

import pytest

from core.stylize.request import GROUPS, StyleRequest
from training.data.index import load_index
from training.data.split import load_split
from training.evaluation import pairs as P

STYLES = ("active", "elderly", "exhausted", "feminine", "masculine", "normal", "youthful")
CONTENTS = (
    "raise-up-both-hands", "raise-up-left-hand", "raise-up-right-hand", "run", "walk", "walk-turn-left",
    "walk-turn-right", "wave-both-hands", "wave-left-hand", "wave-right-hand",
)  # fmt: skip


@pytest.fixture(scope="module")
def labels(data_root):
    return {clip.id: clip for clip in load_index()}


@pytest.fixture(scope="module")
def split():
    return load_split()


@pytest.mark.parametrize("name", P.SETS)
def test_committed_files_equal_a_regenerated_run(labels, split, name):
    text = P.to_json(P.make_set(name, list(labels.values()), split))
    assert P.set_path(name).read_text() == text, "run python -m training.evaluation.pairs and commit"


@pytest.mark.parametrize("name", P.SETS)
def test_every_clip_is_a_dataset2_test_take_and_labels_match(labels, split, name):
    test = set(split["test"])
    pairs = P.load_pairs(name)
    assert len({p.id for p in pairs}) == len(pairs)
    assert len({(p.source, p.reference) for p in pairs}) == len(pairs)
    for p in pairs:
        for clip_id in p.clip_ids():
            assert clip_id in test and labels[clip_id].dataset == "dataset-2", clip_id
        source, reference = labels[p.source], labels[p.reference]
        assert (source.content, source.style) == (p.source_content, p.source_style)
        assert (reference.content, reference.style) == (p.reference_content, p.target_style)


def test_cross_pairs_differ_in_content_and_style(labels):
    for p in P.load_pairs("cross"):
        source, reference = labels[p.source], labels[p.reference]
        assert source.content != reference.content and source.style != reference.style, p.id


def test_same_pairs_share_content_and_differ_in_style(labels):
    for p in P.load_pairs("same"):
        source, reference = labels[p.source], labels[p.reference]
        assert source.content == reference.content and source.style != reference.style, p.id


@pytest.mark.parametrize("name", P.SETS)
def test_every_style_and_content_is_covered_and_balanced(name):
    pairs = P.load_pairs(name)
    assert len(pairs) == 140
    cells = Counter((p.target_style, p.source_content) for p in pairs)
    assert set(cells) == {(s, c) for s in STYLES for c in CONTENTS}
    assert set(cells.values()) == {2}
    assert set(Counter(p.source_style for p in pairs)) == set(STYLES)
    if name == "cross":
        assert set(Counter(p.reference_content for p in pairs)) == set(CONTENTS)


@pytest.mark.parametrize("name", P.SETS)
def test_body_group_entries_are_valid(labels, name):
    pairs = P.load_pairs(name)
    grouped = [p for p in pairs if p.variant != "full"]
    assert 20 <= len(grouped) <= 30
    assert {p.variant for p in grouped} == set(P.VARIANTS) - {"full"}
    assert set(Counter(p.target_style for p in grouped).values()) == {P.GROUP_VARIANTS_PER_STYLE}
    assert sum(bool(p.weights) for p in grouped) >= 10 and sum(bool(p.group_references) for p in grouped) >= 10
    for p in pairs:
        if p.variant == "full":
            assert not p.weights and not p.group_references and not p.group_styles
            continue
        assert set(p.weights) <= set(GROUPS) and all(w >= 0 for w in p.weights.values())
        assert set(p.group_references) <= set(GROUPS)
        assert set(p.group_styles) == set(GROUPS)
        assert any(p.weights.get(g, 1.0) > 0 for g in GROUPS)
        for group in GROUPS:
            weight = p.weights.get(group, 1.0)
            clip = labels[p.group_references.get(group, p.reference)]
            assert p.style_of(group) == (None if weight == 0 else clip.style), (p.id, group)
        for group, clip_id in p.group_references.items():
            clip, source = labels[clip_id], labels[p.source]
            assert clip.style not in (source.style, p.target_style), p.id
            if name == "cross":
                assert clip.content != source.content, p.id
            else:
                assert clip.content == source.content, p.id
        if p.variant in ("upper_body", "arms_only"):
            assert p.weights and not p.group_references and p.weights["root"] == 0


def test_pairs_build_stylizer_requests(data_root):
    cross = P.load_pairs("cross")
    pair = next(p for p in cross if p.variant == "mixed_references_no_torso")
    motions = P.clip_motions(pair.clip_ids())
    request = pair.request(motions.__getitem__)
    assert isinstance(request, StyleRequest)
    assert request.weight("torso") == 0 and request.weight("left_arm") == 1
    assert request.reference_for("left_leg") is motions[pair.group_references["left_leg"]]
    assert request.options["content_label"] == pair.source_content
    assert request.options["group_style_labels"]["root"] == pair.group_styles["root"]
    assert request.content.num_frames > 0 and request.content.fps == 30.0
