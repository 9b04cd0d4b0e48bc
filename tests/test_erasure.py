"""Linear concept erasure (core/models/erasure.py) on real codes: per-window feature statistics of
real dataset-2 takes, where style and content are both linearly readable before erasure."""

from __future__ import annotations

import numpy as np
import pytest

from core.models.erasure import apply_eraser, fit_leace
from training.data.cache import load_cache
from training.data.split import load_split
from training.data.windows import WindowSampler
from training.evaluation.probes import fit_linear_probe


def _codes(ids, cache, styles, contents):
    """Per-window mean and std of the raw features, with style and content label indices."""
    sampler = WindowSampler(cache, ids, 60, 30, style_names=styles, content_names=contents)
    batch = sampler.get(np.arange(len(sampler)))
    f = batch["features"].astype(np.float64)
    return np.concatenate([f.mean(axis=1), f.std(axis=1)], axis=1), batch["style"], batch["content"]


@pytest.fixture(scope="module")
def real_codes(data_root):
    cache = load_cache(progress=False)
    split = load_split()
    d2 = {c.id: c for c in cache.clips if c.dataset == "dataset-2"}
    names = (sorted({c.style for c in d2.values()}), sorted({c.content for c in d2.values()}))
    train = [c for c in split["train"] if c in d2][::3]
    test = [c for c in split["test"] if c in d2][::2]
    return _codes(train, cache, *names), _codes(test, cache, *names)


def _accuracy(train_x, train_y, test_x, test_y):
    probe = fit_linear_probe(train_x, train_y)
    return float((probe.predict(test_x) == test_y).mean())


def test_erasing_style_leaves_a_linear_probe_at_chance_and_keeps_content(real_codes):
    (x, style, content), (tx, tstyle, tcontent) = real_codes
    before_style = _accuracy(x, style, tx, tstyle)
    before_content = _accuracy(x, content, tx, tcontent)
    eraser = fit_leace(x, style)
    ex, etx = apply_eraser(x, eraser), apply_eraser(tx, eraser)
    majority = np.bincount(tstyle).max() / len(tstyle)
    after_style = _accuracy(ex, style, etx, tstyle)
    after_content = _accuracy(ex, content, etx, tcontent)
    print(
        f"style {before_style:.3f} -> {after_style:.3f} (majority {majority:.3f}); content {before_content:.3f} -> {after_content:.3f}"
    )
    assert before_style > 0.6 and before_content > 0.8  # both readable before
    assert after_style < majority + 0.1  # erased on held-out takes too
    assert after_content > before_content - 0.1  # the rest of the code is kept


def test_eraser_is_a_low_rank_affine_map(real_codes):
    (x, style, _), _ = real_codes
    eraser = fit_leace(x, style)
    rank = np.linalg.matrix_rank(eraser["projection"].astype(np.float64), tol=1e-4)
    assert rank <= len(np.unique(style)) - 1
    # erasing twice changes nothing more; the class means coincide after erasure
    once = apply_eraser(x, eraser)
    np.testing.assert_allclose(apply_eraser(once, eraser), once, atol=1e-3 * np.abs(x).max())
    means = np.stack([once[style == k].mean(axis=0) for k in np.unique(style)])
    assert np.abs(means - means.mean(axis=0)).max() < 1e-3 * np.abs(x).max()


def test_sequences_are_erased_step_by_step(real_codes):
    (x, style, _), _ = real_codes
    eraser = fit_leace(x, style)
    sequence = np.stack([x[:50], x[50:100], x[100:150]], axis=1)  # (50, 3, D)
    erased = apply_eraser(sequence, eraser)
    np.testing.assert_allclose(erased.mean(axis=1), apply_eraser(sequence.mean(axis=1), eraser), atol=1e-3)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="two classes"):
        fit_leace(np.zeros((4, 3)), np.zeros(4))
    with pytest.raises(ValueError, match="one label each"):
        fit_leace(np.zeros((4, 3)), np.zeros(5))


def test_keep_spares_the_other_label(real_codes):
    """Erasing content while keeping style: the style probe keeps its accuracy (a plain erasure
    takes the style directions shared with content along)."""
    (x, style, content), (tx, tstyle, tcontent) = real_codes
    kept = fit_leace(x, content, keep=style)
    plain = fit_leace(x, content)
    kept_style = _accuracy(apply_eraser(x, kept), style, apply_eraser(tx, kept), tstyle)
    plain_style = _accuracy(apply_eraser(x, plain), style, apply_eraser(tx, plain), tstyle)
    kept_content = _accuracy(apply_eraser(x, kept), content, apply_eraser(tx, kept), tcontent)
    before_content = _accuracy(x, content, tx, tcontent)
    print(f"style kept {kept_style:.3f} vs plain {plain_style:.3f}; content {before_content:.3f} -> {kept_content:.3f}")
    assert kept_style >= plain_style - 0.02
    assert kept_content < before_content - 0.3  # content still mostly erased


def test_the_shipped_style_codes_of_every_body_group_carry_no_linear_content(data_root):
    """Issue 16: every code the denoiser reads meets the leakage limits. The group codes are erased
    as one vector (core.models.encoders.erase_codes): a linear content read-out of any one group,
    fitted on training windows, stays near chance (0.10) on test windows, and style stays readable."""
    from core.models.encoders import load_encoders
    from training.data.paths import REPO_ROOT

    encoders = load_encoders(REPO_ROOT / "weights" / "encoders" / "contrastive")
    assert "groups" in encoders.erasers
    cache = load_cache(progress=False)
    split = load_split()
    d2 = {c.id: c for c in cache.clips if c.dataset == "dataset-2"}
    names = (sorted({c.style for c in d2.values()}), sorted({c.content for c in d2.values()}))

    def windows(ids):
        sampler = WindowSampler(cache, ids, 60, 30, style_names=names[0], content_names=names[1])
        batch = sampler.get(np.arange(len(sampler)))
        return encoders.encode(batch["features"])["groups"], batch["style"], batch["content"]

    (x, style, content), (tx, tstyle, tcontent) = (
        windows([c for c in split[part] if c in d2][::step]) for part, step in (("train", 4), ("test", 1))
    )
    for g in range(x.shape[1]):
        assert _accuracy(x[:, g], content, tx[:, g], tcontent) <= 0.30
        assert _accuracy(x[:, g], style, tx[:, g], tstyle) >= 0.85
