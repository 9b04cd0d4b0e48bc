"""Leakage probes (DESIGN §7): can a linear classifier read style off content codes, or content
off style codes? Chance accuracy is the goal: the content code should carry no style, the style
code no content.

The probes take plain arrays, so they run on any encoder that exposes codes (the stylization
encoders, a baseline, random features). A probe is multinomial logistic regression on codes
standardised with the training part's statistics, L2-regularised and fitted with scipy's L-BFGS
from zero weights: deterministic, no torch needed. Codes of shape (N, T, D) (a code sequence per
clip or window) are mean-pooled over T first. Train and test parts must be split by take, as the
evaluation split is, or the probe measures memorisation of takes rather than leakage.

``knn_accuracy`` is the nonlinear counterpart (cosine kNN vote): what a linear probe misses, or a
linear eraser leaves, it still finds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp

DEFAULT_L2 = 1e-2
DEFAULT_MAX_ITER = 500


def pool_codes(codes) -> np.ndarray:
    """(N, D) codes: (N, D) as given, (N, T, D) mean-pooled over T, (N,) as one feature."""
    c = np.asarray(codes, dtype=np.float64)
    if c.ndim == 1:
        return c[:, None]
    if c.ndim == 2:
        return c
    if c.ndim == 3:
        return c.mean(axis=1)
    raise ValueError(f"codes must be (N, D) or (N, T, D), got {c.shape}")


@dataclass(frozen=True)
class LinearProbe:
    """A fitted probe: standardisation, weights (D, K), biases (K,) and the class labels."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: np.ndarray
    classes: np.ndarray

    def logits(self, codes) -> np.ndarray:
        return ((pool_codes(codes) - self.mean) / self.scale) @ self.weights + self.bias

    def predict(self, codes) -> np.ndarray:
        return self.classes[np.argmax(self.logits(codes), axis=1)]


def fit_linear_probe(codes, labels, l2: float = DEFAULT_L2, max_iter: int = DEFAULT_MAX_ITER) -> LinearProbe:
    """Multinomial logistic regression: mean cross-entropy + l2/2 |W|^2 (biases free)."""
    x = pool_codes(codes)
    labels = np.asarray(labels)
    if x.shape[0] != labels.shape[0] or x.shape[0] == 0:
        raise ValueError(f"{x.shape[0]} codes for {labels.shape[0]} labels")
    classes, y = np.unique(labels, return_inverse=True)
    mean = x.mean(0)
    scale = x.std(0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    x = (x - mean) / scale
    n, d = x.shape
    k = len(classes)
    onehot = np.zeros((n, k))
    onehot[np.arange(n), y] = 1.0

    def loss(theta):
        w = theta[: d * k].reshape(d, k)
        b = theta[d * k :]
        z = x @ w + b
        log_p = z - logsumexp(z, axis=1, keepdims=True)
        value = -np.sum(onehot * log_p) / n + 0.5 * l2 * np.sum(w * w)
        g = (np.exp(log_p) - onehot) / n
        grad = np.concatenate([(x.T @ g + l2 * w).ravel(), g.sum(0)])
        return value, grad

    if k == 1:  # one class: nothing to learn, always predict it
        return LinearProbe(mean, scale, np.zeros((d, 1)), np.zeros(1), classes)
    theta = minimize(loss, np.zeros(d * k + k), jac=True, method="L-BFGS-B", options={"maxiter": max_iter}).x
    return LinearProbe(mean, scale, theta[: d * k].reshape(d, k), theta[d * k :], classes)


def linear_probe_accuracy(
    train_codes, train_labels, test_codes, test_labels, l2: float = DEFAULT_L2, max_iter: int = DEFAULT_MAX_ITER
) -> float:
    """Test accuracy of a linear probe fitted on the training codes (labels unseen in training
    count as wrong)."""
    probe = fit_linear_probe(train_codes, train_labels, l2, max_iter)
    test_labels = np.asarray(test_labels)
    if test_labels.shape[0] == 0:
        raise ValueError("no test codes")
    return float(np.mean(probe.predict(test_codes) == test_labels))


def chance_accuracy(train_labels, test_labels) -> float:
    """What a probe that learnt nothing scores: always the training part's most frequent class."""
    classes, counts = np.unique(np.asarray(train_labels), return_counts=True)
    majority = classes[np.argmax(counts)]
    return float(np.mean(np.asarray(test_labels) == majority))


def _probe(codes, labels, train, test, l2, max_iter) -> dict:
    codes, labels = pool_codes(codes), np.asarray(labels)
    return {
        "accuracy": linear_probe_accuracy(codes[train], labels[train], codes[test], labels[test], l2, max_iter),
        "chance": chance_accuracy(labels[train], labels[test]),
        "uniform_chance": 1.0 / len(np.unique(labels[train])),
        "num_classes": len(np.unique(labels[train])),
        "num_train": int(train.sum()),
        "num_test": int(test.sum()),
    }


def leakage_report(
    content_codes,
    style_codes,
    content_labels,
    style_labels,
    train_mask,
    test_mask=None,
    l2: float = DEFAULT_L2,
    max_iter: int = DEFAULT_MAX_ITER,
) -> dict:
    """{"style_from_content": ..., "content_from_style": ...}, each with the probe's test
    accuracy next to chance (majority class) and uniform chance (1/K). Row i of every argument
    is one clip or window; ``train_mask`` (and ``test_mask``, default its complement) are
    boolean masks over the rows. Near chance is good; near 1.0 means the code leaks."""
    train = np.asarray(train_mask, dtype=bool)
    test = ~train if test_mask is None else np.asarray(test_mask, dtype=bool)
    n = train.shape[0]
    for name, arr in (
        ("content_codes", content_codes),
        ("style_codes", style_codes),
        ("content_labels", content_labels),
        ("style_labels", style_labels),
        ("test_mask", test),
    ):
        if len(arr) != n:
            raise ValueError(f"{name} has {len(arr)} rows, train_mask {n}")
    if not train.any() or not test.any():
        raise ValueError("both the train and the test part need rows")
    return {
        "style_from_content": _probe(content_codes, style_labels, train, test, l2, max_iter),
        "content_from_style": _probe(style_codes, content_labels, train, test, l2, max_iter),
    }


def knn_accuracy(bank: np.ndarray, bank_labels: np.ndarray, query: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Cosine kNN (majority vote of the k nearest bank codes, ties to the nearest) accuracy."""
    if len(query) == 0 or len(bank) == 0:
        return float("nan")
    b = bank / np.maximum(np.linalg.norm(bank, axis=1, keepdims=True), 1e-8)
    q = query / np.maximum(np.linalg.norm(query, axis=1, keepdims=True), 1e-8)
    nearest = np.argsort(-(q @ b.T), axis=1)[:, :k]
    votes = bank_labels[nearest]
    classes = int(max(bank_labels.max(), labels.max())) + 1
    counts = np.zeros((len(q), classes))
    for j in range(votes.shape[1]):
        counts[np.arange(len(q)), votes[:, j]] += 1.0 + 1e-3 * (k - j)  # ties go to the nearer neighbour
    return float((counts.argmax(axis=1) == labels).mean())
