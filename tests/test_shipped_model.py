"""The shipped model itself, on a small VALIDATION subset, against thresholds (issue 15).

Every other diffusion test uses a random tiny model, so a regression of the real weights (a bad
retrain, a changed sampler default, a broken loader) would pass them. This one loads
``weights/stylizer.json`` and the committed judges, stylizes 21 ``cross`` pairs built from the val
split (3 per target style, the same construction as the test-split set) and checks the figures the
README reports for the test split, with a margin for the small sample. The test split stays sealed.
"""

from __future__ import annotations

import numpy as np
import pytest

from core.ops.features import motion_to_features
from core.runtime import CleanupSettings, clean_stylized
from core.stylize.loading import load_stylizer
from training.data.index import load_index
from training.data.paths import REPO_ROOT
from training.data.split import load_split
from training.evaluate import pair_request
from training.evaluation import measures
from training.evaluation.pairs import Pair, clip_motions, make_set
from training.judges.api import load_judge

PAIRS_PER_STYLE = 3
# Test-split figures of the shipped model (reports/test_log.md, cross, issue 16's model): SRA 0.76,
# CRA 0.74, contact F1 0.96 after cleanup. On 21 pairs one miss is 0.05, so the floors leave three
# misses of slack.
MIN_SRA, MIN_CRA = 0.60, 0.60
MIN_CONTACT_F1 = 0.85


@pytest.fixture(scope="module")
def val_pairs(cache) -> list[Pair]:
    split = load_split()
    pairs = [Pair(**p) for p in make_set("cross", load_index(), {**split, "test": split["val"]})["pairs"]]
    chosen = []
    for style in sorted({p.target_style for p in pairs}):
        full = [p for p in pairs if p.target_style == style and p.variant == "full"]
        chosen += [full[i] for i in np.linspace(0, len(full) - 1, PAIRS_PER_STYLE).round().astype(int)]
    return chosen


@pytest.fixture(scope="module")
def outputs(val_pairs, cache):
    stylizer = load_stylizer(REPO_ROOT / "weights" / "stylizer.json", "cpu")
    motions = clip_motions({c for p in val_pairs for c in p.clip_ids()}, cache)
    rows = []
    for pair in val_pairs:
        request = pair_request(pair, motions, stylizer)
        raw = stylizer.stylize(request)
        product = clean_stylized(request.content, raw, pair.weights, CleanupSettings())
        rows.append((pair, request.content, raw, product))
    return rows


def test_the_subset_is_val_only_and_covers_every_style(val_pairs):
    split = load_split()
    val = set(split["val"])
    assert all(c in val for p in val_pairs for c in p.clip_ids())
    assert len({p.target_style for p in val_pairs}) == 7 and len(val_pairs) == 7 * PAIRS_PER_STYLE


def test_the_shipped_model_styles_and_keeps_content_on_val(outputs):
    features = [motion_to_features(raw)[0] for _, _, raw, _ in outputs]
    sra = measures.recognition_accuracy(load_judge("style").predict(features), [p.target_style for p, *_ in outputs])
    cra = measures.recognition_accuracy(
        load_judge("content").predict(features), [p.source_content for p, *_ in outputs]
    )
    assert sra >= MIN_SRA and cra >= MIN_CRA, f"SRA {sra:.2f}, CRA {cra:.2f} on {len(outputs)} val pairs"


def test_the_shipped_pipeline_keeps_the_contacts_on_val(outputs):
    f1 = [
        measures.contact_timing_f1(measures.motion_contacts(source), measures.motion_contacts(product))
        for _, source, _, product in outputs
    ]
    assert np.median(f1) >= MIN_CONTACT_F1, f"median contact F1 {np.median(f1):.2f}"
    assert all(np.isfinite(product.rotations).all() for *_, product in outputs)


# Issue 16: what the model does to motion it was not trained on, on a few entries of the
# generalization sets (evaluation clips; the suite runs them all): a clip restyled by itself stays
# itself, raw (the model alone), and a game loop stays a loop.
SELF_SETS = ("short_cycles", "foreign")
SELF_ENTRIES = 3
MAX_SELF_ERROR_PCT = 5.0  # of body height, median; the suite's full sets: see the README
MAX_SEAM_ADDED_CM = 1.5


@pytest.fixture(scope="module")
def selves() -> dict[str, list[dict]]:
    from training.evaluation.generalization_sets import entry_motions, load_generalization_set, self_reference_entries
    from training.evaluation.suite import stylize_entry

    stylizer = load_stylizer(REPO_ROOT / "weights" / "stylizer.json", "cpu")
    return {
        name: [
            stylize_entry(stylizer, *entry_motions(e))
            for e in self_reference_entries(load_generalization_set(name))[:SELF_ENTRIES]
        ]
        for name in SELF_SETS
    }


def test_a_clip_restyled_by_itself_stays_itself(selves):
    from training.evaluation import label_free as L

    for name, runs in selves.items():
        errors = [L.self_reference(m["source"], m["raw"])["joint_error_pct"] for m in runs]
        assert np.median(errors) <= MAX_SELF_ERROR_PCT, f"{name}: raw self-reference error {errors} % of body height"


def test_a_loop_stays_a_loop(selves):
    from training.evaluation import label_free as L

    for m in selves["short_cycles"]:
        for run in ("raw", "product"):
            added = L.loop_seam(m[run]) - L.loop_seam(m["source"])
            assert added <= MAX_SEAM_ADDED_CM, f"{run}: the loop's seam grew by {added:.1f} cm"
