"""Shared test fixtures: where the real data lives and a few real clips."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_ROOT = Path(os.environ.get("MST_DATA", REPO_ROOT.parent / "shared" / "data"))
BANDAI_ROOT = DATA_ROOT / "bandai-namco"


def bandai_clip(name: str) -> Path:
    """Path of a real Bandai Namco clip by file name (dataset inferred from the prefix)."""
    dataset = name.split("_", 1)[0]
    return BANDAI_ROOT / dataset / "data" / name


@pytest.fixture(scope="session")
def data_root() -> Path:
    if not BANDAI_ROOT.is_dir():
        pytest.fail(f"real motion data not found at {BANDAI_ROOT}; set MST_DATA to the shared data folder")
    return DATA_ROOT


@pytest.fixture(scope="session")
def walk_clip(data_root) -> Path:
    return bandai_clip("dataset-2_walk_normal_001.bvh.gz")
