"""Exact t-SNE (van der Maaten & Hinton 2008) in numpy, for plots of a few thousand codes at most.

No Barnes-Hut: the affinities are the full N x N matrices, so memory and time grow as N^2 (about 1 s
per 100 iterations at N = 1,000 on one core; keep N <= 3,000). Deterministic for a seed: the input
is standardised, the start is the first two principal components (scaled to std 1e-4, signs fixed)
plus a seeded jitter of the same size, and every step is plain float64 numpy.

Settings follow the usual recipe: perplexity 30 (capped at (N - 1) / 3), conditional affinities found
by bisection on the Gaussian precision, symmetrised; early exaggeration 12 for the first 250
iterations with momentum 0.5, then 0.8; learning rate max(N / 12 / 4, 50); per-coordinate gains.

``trustworthiness`` (Venna & Kaski) and ``knn_preservation`` measure how well an embedding keeps
the input's neighbourhoods; the tests use them on well-separated clusters.
"""

from __future__ import annotations

import numpy as np

EARLY_EXAGGERATION = 12.0
EARLY_ITERATIONS = 250


def _squared_distances(x: np.ndarray) -> np.ndarray:
    sq = np.sum(x * x, axis=1)
    d = sq[:, None] + sq[None, :] - 2.0 * (x @ x.T)
    np.maximum(d, 0.0, out=d)
    np.fill_diagonal(d, 0.0)
    return d


def _embedding_distances(y: np.ndarray) -> np.ndarray:
    """Squared distances of low-dimensional points, one outer difference per coordinate (faster
    than the Gram form for 2 columns)."""
    d = np.zeros((len(y), len(y)))
    for column in y.T:
        diff = np.subtract.outer(column, column)
        diff *= diff
        d += diff
    return d


def joint_probabilities(x: np.ndarray, perplexity: float, tol: float = 1e-5, steps: int = 100) -> np.ndarray:
    """Symmetric affinities P (N, N) with each row's conditional distribution at ``perplexity``."""
    d = _squared_distances(np.asarray(x, dtype=np.float64))
    n = d.shape[0]
    target = np.log(perplexity)
    beta = np.ones(n)
    lo = np.full(n, -np.inf)
    hi = np.full(n, np.inf)
    off = ~np.eye(n, dtype=bool)
    # distances relative to each row's nearest neighbour keep exp() from underflowing
    d_rel = d - np.where(off, d, np.inf).min(axis=1, keepdims=True)
    for _ in range(steps):
        p = np.exp(-d_rel * beta[:, None]) * off
        s = np.maximum(p.sum(axis=1), 1e-300)
        entropy = np.log(s) + beta * (d_rel * p).sum(axis=1) / s
        diff = entropy - target
        if np.all(np.abs(diff) < tol):
            break
        too_flat = diff > 0  # entropy too high: sharpen (raise beta)
        lo = np.where(too_flat, beta, lo)
        hi = np.where(too_flat, hi, beta)
        beta = np.where(
            too_flat,
            np.where(np.isinf(hi), beta * 2.0, (beta + hi) / 2.0),
            np.where(np.isinf(lo), beta / 2.0, (beta + lo) / 2.0),
        )
    p = np.exp(-d_rel * beta[:, None]) * off
    p /= np.maximum(p.sum(axis=1, keepdims=True), 1e-300)
    p = (p + p.T) / (2.0 * n)
    return np.maximum(p, 1e-12)


def _pca_start(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    centred = x - x.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    components = vt[:2]
    # fix each component's sign (largest-magnitude loading positive): SVD signs are arbitrary
    signs = np.sign(components[np.arange(len(components)), np.argmax(np.abs(components), axis=1)])
    y = centred @ (components * signs[:, None]).T
    if y.shape[1] < 2:
        y = np.pad(y, ((0, 0), (0, 2 - y.shape[1])))
    y = y / max(float(y[:, 0].std()), 1e-12) * 1e-4
    return y + rng.normal(scale=1e-4, size=y.shape)


def tsne(
    x,
    perplexity: float = 30.0,
    iterations: int = 1000,
    seed: int = 0,
    learning_rate: float | None = None,
) -> np.ndarray:
    """(N, 2) embedding of the rows of ``x`` (N, D). Same input, same seed: the same numbers."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 4:
        raise ValueError(f"t-SNE needs (N >= 4, D) data, got {x.shape}")
    n = x.shape[0]
    scale = x.std(0)
    x = (x - x.mean(0)) / np.where(scale > 1e-12, scale, 1.0)
    perplexity = min(perplexity, (n - 1) / 3.0)
    p = joint_probabilities(x, perplexity)
    rng = np.random.default_rng(seed)
    y = _pca_start(x, rng)
    lr = learning_rate or max(n / EARLY_EXAGGERATION / 4.0, 50.0)
    velocity = np.zeros_like(y)
    gains = np.ones_like(y)
    for it in range(iterations):
        early = it < EARLY_ITERATIONS
        pe = p * EARLY_EXAGGERATION if early else p
        num = _embedding_distances(y)
        num += 1.0
        np.reciprocal(num, out=num)
        np.fill_diagonal(num, 0.0)
        q = num / num.sum()
        np.maximum(q, 1e-12, out=q)
        w = pe - q
        w *= num
        grad = 4.0 * (w.sum(axis=1)[:, None] * y - w @ y)
        momentum = 0.5 if early else 0.8
        same = np.sign(grad) == np.sign(velocity)
        gains = np.where(same, gains * 0.8, gains + 0.2)
        np.maximum(gains, 0.01, out=gains)
        velocity = momentum * velocity - lr * gains * grad
        y = y + velocity
        y = y - y.mean(0)
    return y


def _neighbour_ranks(x: np.ndarray) -> np.ndarray:
    d = _squared_distances(np.asarray(x, dtype=np.float64))
    np.fill_diagonal(d, np.inf)
    order = np.argsort(d, axis=1, kind="stable")
    ranks = np.empty_like(order)
    ranks[np.arange(len(x))[:, None], order] = np.arange(1, len(x) + 1)[None, :]
    return order, ranks


def trustworthiness(x, y, k: int = 5) -> float:
    """1 minus the penalty for embedding neighbours that are not input neighbours (1.0 is perfect)."""
    n = len(x)
    if not 1 <= k < n / 2:
        raise ValueError(f"k must be in [1, n/2), got {k} for n={n}")
    _, ranks_x = _neighbour_ranks(x)
    order_y, _ = _neighbour_ranks(y)
    nearest_y = order_y[:, :k]
    r = ranks_x[np.arange(n)[:, None], nearest_y]
    penalty = np.sum(np.maximum(r - k, 0))
    return float(1.0 - 2.0 / (n * k * (2 * n - 3 * k - 1)) * penalty)


def knn_preservation(x, y, k: int = 10) -> float:
    """Mean share of each point's k input neighbours that are among its k embedding neighbours."""
    order_x, _ = _neighbour_ranks(x)
    order_y, _ = _neighbour_ranks(y)
    shared = [len(set(a[:k]) & set(b[:k])) for a, b in zip(order_x, order_y)]
    return float(np.mean(shared) / k)


def knn_label_agreement(y, labels, k: int = 5) -> float:
    """Share of points whose k embedding neighbours' majority label is their own label."""
    labels = np.asarray(labels)
    order, _ = _neighbour_ranks(y)
    hits = 0
    for i, row in enumerate(order[:, :k]):
        values, counts = np.unique(labels[row], return_counts=True)
        hits += values[np.argmax(counts)] == labels[i]
    return float(hits / len(labels))
