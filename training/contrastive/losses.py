"""The contrastive losses of the encoders (DESIGN §6), as plain functions of codes and queues.

Every loss here except :func:`orthogonality` is a mean of per-sample terms whose negatives come from
a MoCo queue, not from the rest of the batch: a batch split across DDP ranks gives exactly the
per-sample terms of the undivided batch, so the distributed run optimises the same objective.
:func:`orthogonality` needs batch statistics; the trainer feeds it the all-gathered global batch
(:func:`training.contrastive.moco.gather_batch`).

Shapes: ``q`` (B, D) queries and ``k`` (B, D) their positive keys, both L2-normalised; ``queue``
(K, D) L2-normalised negatives (keys of earlier batches, from the momentum encoder).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def info_nce(
    q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, temperature: float, exclude: torch.Tensor | None = None
) -> torch.Tensor:
    """MoCo InfoNCE: -log softmax of the positive among [positive, queue] (mean over the batch).

    ``exclude`` (B, K) bool drops queue entries from a query's negatives (with in-batch negatives,
    its own key)."""
    none = torch.zeros(len(q), queue.shape[0], dtype=torch.bool, device=q.device)
    return multi_positive_nce(q, k, queue, none, temperature, exclude)


def multi_positive_nce(
    q: torch.Tensor,
    k: torch.Tensor,
    queue: torch.Tensor,
    queue_positive: torch.Tensor,
    temperature: float,
    exclude: torch.Tensor | None = None,
) -> torch.Tensor:
    """InfoNCE with extra positives in the queue: -log(sum of exp over positives / sum over all).

    ``queue_positive`` (B, K) bool marks the queue entries that count as positives of each query
    (cross-view mined neighbours, or same-style entries for supervised contrast); the own key is
    always a positive. With no queue positives this is :func:`info_nce`.
    """
    positive = (q * k).sum(dim=1, keepdim=True)
    negatives = q @ queue.T
    if exclude is not None:
        negatives = negatives.masked_fill(exclude, float("-inf"))
        queue_positive = queue_positive & ~exclude
    logits = torch.cat([positive, negatives], dim=1) / temperature
    mask = torch.cat([torch.ones_like(positive, dtype=torch.bool), queue_positive], dim=1)
    log_all = torch.logsumexp(logits, dim=1)
    log_pos = torch.logsumexp(logits.masked_fill(~mask, float("-inf")), dim=1)
    return (log_all - log_pos).mean()


def mined_positives(
    key_other: torch.Tensor, queue_other: torch.Tensor, topk: int, exclude: torch.Tensor | None = None
) -> torch.Tensor:
    """CrosSCLR cross-view mining: (B, K) bool, the ``topk`` queue entries most similar to each
    sample's key in the OTHER view. Both views' queues are filled in lockstep (entry j of every
    view's queue is the same window), so these indices are positives in this view's queue too."""
    similarity = key_other @ queue_other.T
    if exclude is not None:
        similarity = similarity.masked_fill(exclude, float("-inf"))
    index = similarity.topk(min(topk, queue_other.shape[0]), dim=1).indices
    mask = torch.zeros_like(similarity, dtype=torch.bool)
    mask = mask.scatter_(1, index, True)
    return mask if exclude is None else mask & ~exclude


def group_info_nce(
    q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, temperature: float, exclude: torch.Tensor | None = None
) -> torch.Tensor:
    """Body-part contrast: InfoNCE per body group, averaged over groups.

    q, k (B, G, D); queue (G, K, D). A group's code of the same clip (other window or other
    augmentation) is its positive; the same group of other clips (the group's queue) are negatives.
    """
    positive = (q * k).sum(dim=2, keepdim=True)  # (B, G, 1)
    negatives = torch.einsum("bgd,gkd->bgk", q, queue)
    if exclude is not None:
        negatives = negatives.masked_fill(exclude[:, None, :], float("-inf"))
    logits = torch.cat([positive, negatives], dim=2) / temperature
    batch, groups = q.shape[:2]
    target = torch.zeros(batch * groups, dtype=torch.long, device=q.device)
    return F.cross_entropy(logits.reshape(batch * groups, -1), target)


def standardise(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Per-dimension zero mean and unit variance over the batch (biased variance)."""
    x = x - x.mean(dim=0, keepdim=True)
    return x / torch.sqrt(x.pow(2).mean(dim=0, keepdim=True) + eps)


def orthogonality(content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """Decorrelation of content and style codes.

    ``content`` (B, Dc) time-pooled content codes, ``style`` (B, Ds) global style codes of the same
    windows. With Z_c, Z_s the batch-standardised codes, C = Z_cᵀ Z_s / B is their (Dc, Ds)
    cross-correlation matrix; the loss is its mean squared entry, ||C||_F² / (Dc·Ds). It is 0 when
    no content dimension is linearly correlated with any style dimension over the batch, and 1 when
    every pair is perfectly correlated. Scale-free: shrinking a code cannot lower it.
    """
    c = standardise(content)
    s = standardise(style)
    cross = c.T @ s / len(c)
    return cross.pow(2).mean()
