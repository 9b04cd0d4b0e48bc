"""Model configs: the JSON file that chooses the stylizer (and its weights) the server runs.

A model config is a JSON object::

    {
      "stylizer": "statistics",            # a name in known_stylizers() (required)
      "weights": "stylizer.safetensors",   # optional: a safetensors file, relative to the JSON's folder
      "description": "...",                # free text, ignored (so is "comment")
      ...                                  # any other key: a setting of the stylizer
    }

``load_stylizer(path)`` turns it into a ready stylizer object; ``SHIPPED_CONFIG`` is the shipped one
(weights/stylizer.json beside the core package), the default of the CLI and the server. A stylizer class that takes weights
or settings implements ``from_config(settings: dict, tensors: dict[str, np.ndarray] | None,
device: str, folder: Path)`` (``folder``: the config's own folder, which relative paths in
settings are resolved against); one without it takes neither (given weights or a setting, the config is refused),
and is built with no arguments. Weights are read with ``safetensors.numpy`` (never pickle); the
stylizer moves them to its device itself.

Every problem raises ``ModelConfigError`` (a ValueError) whose message names the file and the
exact problem: missing file, not JSON, not an object, no or unknown stylizer (with the known list),
weights file missing or unreadable, a setting the stylizer does not take.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from .baselines import STYLIZERS as BASELINES

SHIPPED_CONFIG = Path(__file__).resolve().parents[2] / "weights" / "stylizer.json"
"""The shipped model config: weights/stylizer.json beside the core package, in the repo and in the
add-on zip alike; the model of the CLI and the server when neither --config nor --stylizer is given."""
METADATA_KEYS = ("description", "comment")
# name -> (module in this package, class): imported on demand, since they need torch and the
# baselines only numpy
LEARNED = {"diffusion": (".diffusion", "DiffusionStylizer")}


def known_stylizers() -> list[str]:
    return sorted((*BASELINES, *LEARNED))


def stylizer_class(name: str):
    """The class of a known stylizer name (known_stylizers())."""
    if name in LEARNED:
        module, class_name = LEARNED[name]
        return getattr(importlib.import_module(module, __package__), class_name)
    return BASELINES[name]


class ModelConfigError(ValueError):
    """A model config that cannot be turned into a stylizer; the message names the file and the problem."""


def stylizer_by_name(name: str, where: str = "--stylizer"):
    """A stylizer built from its name alone (no weights, no settings); ModelConfigError when unknown."""
    if name not in known_stylizers():
        raise ModelConfigError(f"{where}: unknown stylizer {name!r}; known stylizers: {known_stylizers()}")
    cls = stylizer_class(name)
    if hasattr(cls, "from_config"):
        raise ModelConfigError(f"{where}: the stylizer {name!r} needs its weights: give a model config instead")
    return cls()


def load_stylizer(path, device: str = "cpu"):
    """The stylizer object a model config describes (see the module doc); raises ModelConfigError."""
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise ModelConfigError(f"model config {path}: the file {what}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ModelConfigError(f"model config {path}: cannot be read: {e}") from None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as e:
        raise ModelConfigError(f"model config {path}: not valid JSON: {e}") from None
    if not isinstance(config, dict):
        raise ModelConfigError(f"model config {path}: must be a JSON object, found {type(config).__name__}")
    name = config.get("stylizer")
    if not isinstance(name, str) or not name:
        raise ModelConfigError(f"model config {path}: needs a 'stylizer' field naming one of {known_stylizers()}")
    if name not in known_stylizers():
        raise ModelConfigError(f"model config {path}: unknown stylizer {name!r}; known stylizers: {known_stylizers()}")
    cls = stylizer_class(name)
    settings = {k: v for k, v in config.items() if k not in ("stylizer", "weights", *METADATA_KEYS)}
    weights = config.get("weights")
    tensors = None
    if weights is not None:
        if not isinstance(weights, str) or not weights:
            raise ModelConfigError(f"model config {path}: 'weights' must be a path (a string), found {weights!r}")
        weights_path = path.parent / weights
        if not weights_path.is_file():
            raise ModelConfigError(
                f"model config {path}: the weights file {weights!r} does not exist (looked for {weights_path})"
            )
        if not hasattr(cls, "from_config"):
            raise ModelConfigError(
                f"model config {path}: the stylizer {name!r} takes no weights, but the config names {weights!r}"
            )
        tensors = _read_safetensors(path, weights_path)
    if not hasattr(cls, "from_config"):
        if settings:
            raise ModelConfigError(
                f"model config {path}: the stylizer {name!r} takes no settings, but the config has {sorted(settings)}"
            )
        return cls()
    try:
        return cls.from_config(settings, tensors, device, path.parent)
    except ModelConfigError:
        raise
    except (KeyError, TypeError, ValueError, OSError) as e:
        raise ModelConfigError(
            f"model config {path}: the stylizer {name!r} refused it: {type(e).__name__}: {e}"
        ) from None


def _read_safetensors(config: Path, weights_path: Path) -> dict:
    try:
        from safetensors.numpy import load_file
    except ImportError as e:  # the runtime environment lacks safetensors
        raise ModelConfigError(f"model config {config}: cannot read {weights_path}: {e}") from None
    try:
        return load_file(str(weights_path))
    except Exception as e:  # noqa: BLE001  safetensors raises its own error types for a corrupt file
        raise ModelConfigError(
            f"model config {config}: the weights file {weights_path} is not a readable safetensors file: {e}"
        ) from None
