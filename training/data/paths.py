"""Where the shared data and the local cache live; one rule for training code and tests."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def data_root() -> Path:
    """The shared data folder: ``$MST_DATA`` if set, else ``<repo>/../shared/data``."""
    return Path(os.environ.get("MST_DATA", REPO_ROOT.parent / "shared" / "data"))


def bandai_root(root: Path | None = None) -> Path:
    return (root or data_root()) / "bandai-namco"


def cache_dir() -> Path:
    """Gitignored home of derived files such as the feature cache."""
    return REPO_ROOT / ".cache"
