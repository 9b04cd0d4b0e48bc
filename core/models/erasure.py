"""Linear concept erasure (LEACE, Belrose et al. 2023) for the encoders' codes.

The contrastive objective and the adversaries make E_c carry little style and E_s little content,
but a linear read-out of the unwanted labels can survive. LEACE finds, in closed form, the affine map
closest to the identity (in the whitened metric) after which no linear classifier predicts the label
better than a constant on the fitting data: x' = x - P (x - mean), with P = W^+ U U^T W, W the
whitening of the codes and U an orthonormal basis of W Cov(x, onehot(label)). P has rank at most
(classes - 1), so everything else in the code is kept.

A sequence of codes (E_c) is erased step by step with the same map; the mean over time then equals
the erased mean, which is what the probes and the stylizer's conditioning read. numpy only.
"""

from __future__ import annotations

import numpy as np


def fit_leace(codes, labels, keep=None, eps: float = 1e-6) -> dict[str, np.ndarray]:
    """The eraser of ``labels`` from ``codes`` (N, D): dict(mean (D,), projection (D, D)), float32.

    ``keep``: other labels (N,) whose linear information must survive: the erased subspace is then
    restricted to the part of the ``labels`` directions orthogonal (whitened) to the ``keep`` ones,
    trading a little residual leakage for keeping what the code is for."""
    x = np.asarray(codes, dtype=np.float64)
    labels = np.asarray(labels)
    if x.ndim != 2 or len(x) != len(labels) or len(x) < 2:
        raise ValueError(f"codes must be (N, D) with one label each; got {x.shape} and {labels.shape}")
    classes, y = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        raise ValueError("erasure needs at least two classes")
    mean = x.mean(axis=0)
    xc = x - mean
    z = np.eye(len(classes))[y]
    zc = z - z.mean(axis=0)
    cov_xx = xc.T @ xc / len(x)
    cov_xz = xc.T @ zc / len(x)
    values, vectors = np.linalg.eigh(cov_xx)
    valid = values > eps * max(values.max(), eps)
    root = np.sqrt(values[valid])
    whiten = (vectors[:, valid] / root) @ vectors[:, valid].T
    unwhiten = (vectors[:, valid] * root) @ vectors[:, valid].T
    target = whiten @ cov_xz
    if keep is not None:
        _, k = np.unique(np.asarray(keep), return_inverse=True)
        zk = np.eye(k.max() + 1)[k]
        kept = _basis(whiten @ (xc.T @ (zk - zk.mean(axis=0)) / len(x)), eps)
        target = target - kept @ (kept.T @ target)
    u = _basis(target, eps)
    projection = unwhiten @ u @ u.T @ whiten
    return {"mean": mean.astype(np.float32), "projection": projection.astype(np.float32)}


def _basis(matrix, eps: float) -> np.ndarray:
    """An orthonormal basis of the column space of ``matrix``."""
    u, s, _ = np.linalg.svd(matrix, full_matrices=False)
    return u[:, s > eps * max(s.max(), eps)]


def erase(x, mean, projection):
    """``x`` (..., D) less its fitted label directions: one formula for numpy arrays and torch
    tensors alike (``mean`` and ``projection`` of the same kind)."""
    return x - (x - mean) @ projection.T


def apply_eraser(codes, eraser: dict[str, np.ndarray]) -> np.ndarray:
    """``codes`` (..., D) with the fitted label erased (float32)."""
    return erase(np.asarray(codes, dtype=np.float32), eraser["mean"], eraser["projection"])
