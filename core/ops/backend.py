"""One array vocabulary for numpy and torch.

Rotation and kinematics code is written once against this small namespace so that the numpy path
(data processing, Blender side) and the torch path (differentiable losses) cannot drift apart.
torch is imported only when a torch tensor is actually passed in.
"""

from __future__ import annotations

import types

import numpy as np


def _numpy_namespace() -> types.SimpleNamespace:
    def one_hot_argmax(x):
        return np.eye(x.shape[-1], dtype=x.dtype)[np.argmax(x, axis=-1)]

    return types.SimpleNamespace(
        name="numpy",
        stack=np.stack,
        cat=np.concatenate,
        atan2=np.arctan2,
        sqrt=np.sqrt,
        clip=np.clip,
        where=np.where,
        sign=np.sign,
        abs=np.abs,
        cos=np.cos,
        sin=np.sin,
        einsum=np.einsum,
        zeros_like=np.zeros_like,
        ones_like=np.ones_like,
        one_hot_argmax=one_hot_argmax,
        asarray=lambda x, like: np.asarray(x, dtype=like.dtype),
        cumsum=lambda x, axis: np.cumsum(x, axis=axis),
    )


def _torch_namespace() -> types.SimpleNamespace:
    import torch

    def one_hot_argmax(x):
        return torch.nn.functional.one_hot(torch.argmax(x, dim=-1), x.shape[-1]).to(x.dtype)

    return types.SimpleNamespace(
        name="torch",
        stack=torch.stack,
        cat=torch.cat,
        atan2=torch.atan2,
        sqrt=torch.sqrt,
        clip=torch.clip,
        where=torch.where,
        sign=torch.sign,
        abs=torch.abs,
        cos=torch.cos,
        sin=torch.sin,
        einsum=torch.einsum,
        zeros_like=torch.zeros_like,
        ones_like=torch.ones_like,
        one_hot_argmax=one_hot_argmax,
        asarray=lambda x, like: torch.as_tensor(np.asarray(x), dtype=like.dtype, device=like.device),
        cumsum=lambda x, axis: torch.cumsum(x, dim=axis),
    )


_NAMESPACES: dict[str, types.SimpleNamespace] = {}


def namespace(x) -> types.SimpleNamespace:
    """The array namespace for ``x``: numpy for ndarrays and scalars, torch for tensors."""
    kind = "numpy" if isinstance(x, (np.ndarray, np.generic, float, int)) else "torch"
    if kind not in _NAMESPACES:
        _NAMESPACES[kind] = _numpy_namespace() if kind == "numpy" else _torch_namespace()
    return _NAMESPACES[kind]
