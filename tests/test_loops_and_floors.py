"""What the learned stylizer does before its network sees a clip (issue 16): a loop is sampled as a
circle (core.stylize.diffusion.loop_order) and every clip stands on the canonical floor
(core.retarget.grounding), on real game-loop cuts, whole takes and foreign captures."""

from __future__ import annotations

import numpy as np
import pytest

from core.ops.features import HEIGHT, motion_to_features
from core.retarget.grounding import FLOOR_PERCENTILE, canonical_floor, floor_offset, grounded, lowest_foot_heights
from core.runtime import to_canonical
from core.stylize.diffusion import LOOP_PAD, grounded_features, loop_order
from training.evaluation.generalization_clips import clip_motion
from training.evaluation.generalization_sets import entry_motions, load_generalization_set


def _canonical_features(rig_motion) -> np.ndarray:
    return motion_to_features(to_canonical(rig_motion))[0]


@pytest.fixture(scope="module")
def loops():
    """The content clips of the short-cycles set: 24-40-frame loops cut at a heel strike."""
    return [entry_motions(e)[0] for e in load_generalization_set("short_cycles")]


def test_every_game_loop_is_sampled_as_a_circle(loops):
    for rig_motion in loops:
        features = _canonical_features(rig_motion)
        order = loop_order(features)
        assert order is not None
        frames = len(features)
        assert len(order) == frames + 2 * LOOP_PAD
        # the clip itself in the middle, each end continued by the other
        np.testing.assert_array_equal(order[LOOP_PAD : LOOP_PAD + frames], np.arange(frames))
        assert order[LOOP_PAD - 1] == frames - 1 and order[LOOP_PAD + frames] == 0


def test_a_take_that_does_not_close_is_not_a_loop(clips):
    for name in ("walk", "elderly_run"):
        features = motion_to_features(clips[name])[0]
        assert loop_order(features) is None
        # nor a loop cut half a step short
        assert loop_order(features[:45]) is None


def test_foreign_captures_stand_on_the_canonical_floor():
    """Character Creator CMU files put the feet about a metre below the file's origin; grounded, the
    clip's floor is where the canonical rig's feet stand at rest, and the stylizer's features say so."""
    entry = next(e for e in load_generalization_set("foreign") if e.content.path.endswith("005_01.bvh.gz"))
    motion = to_canonical(clip_motion(entry.content))
    offset = floor_offset(motion)
    assert 60 < offset < 120
    floor = np.percentile(lowest_foot_heights(grounded(motion)), FLOOR_PERCENTILE)
    assert floor == pytest.approx(canonical_floor(), abs=1e-6)
    features, _, lift = grounded_features(motion)
    assert lift == offset
    np.testing.assert_allclose(features[:, HEIGHT], motion_to_features(motion)[0][:, HEIGHT] + offset, atol=1e-9)


def test_bandai_takes_already_stand_on_it(clips):
    for motion in clips.values():
        assert abs(floor_offset(motion)) < 2.0
