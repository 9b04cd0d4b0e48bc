"""The sealed test split's log: each model version is scored on the test split once (issue 15).

Settings are chosen on val (``python -m training.evaluate --split val``). A learned model's
test-split score is appended to ``reports/test_log.md`` with the commit, the date and the model's
fingerprint (a SHA-256 over its config and every checkpoint file the config names). Scoring the same
version on the same set again is refused unless a reason is given (``--rescore REASON``), which is
logged beside the new figures, so every look at the test split stays on record.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from core.io.atomic import append_text
from training.data.paths import REPO_ROOT
from training.runs import git_commit

TEST_LOG = REPO_ROOT / "reports" / "test_log.md"
HEADER = (
    "# Test-split log\n\n"
    "One row per scoring of a model version on a test-split set (training/evaluation/test_log.py).\n\n"
    "| date | commit | model | fingerprint | set | SRA | CRA | contact F1 | reason |\n"
    "|---|---|---|---|---|---|---|---|---|\n"
)
CHECKPOINT_SUFFIXES = (".json", ".safetensors")


class AlreadyScored(RuntimeError):
    """The model version was scored on this set before."""


def model_fingerprint(config: Path) -> str:
    """SHA-256 (first 16 hex digits) of a model config and of every checkpoint file it names (the
    string values that are path stems beside it), so retrained weights are a new version."""
    config = Path(config)
    digest = hashlib.sha256(config.read_bytes())
    for value in sorted(v for v in json.loads(config.read_text()).values() if isinstance(v, str)):
        for suffix in CHECKPOINT_SUFFIXES:
            path = config.parent / (value + suffix)
            if path.is_file():
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _rows(log: Path) -> list[list[str]]:
    if not log.is_file():
        return []
    lines = log.read_text().splitlines()
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines if line.startswith("| 20")]


def check_unscored(fingerprint: str, set_name: str, reason: str | None, log: Path = TEST_LOG) -> None:
    """Raise AlreadyScored when this version has a row for ``set_name`` and no reason is given."""
    earlier = [r for r in _rows(log) if r[3] == fingerprint and r[4] == set_name]
    if earlier and not reason:
        raise AlreadyScored(
            f"model {fingerprint} was scored on the test set {set_name!r} on {earlier[0][0]} (commit {earlier[0][1]}); "
            "the test split is scored once per model version: choose settings with --split val, or give "
            "--rescore REASON to score it again on the record"
        )


def _short(commit: str | None) -> str:
    if commit is None:
        return "unknown"
    return commit[:12] + ("-dirty" if commit.endswith("-dirty") else "")


def append_score(
    model: str, fingerprint: str, set_name: str, summary: dict, reason: str = "", log: Path = TEST_LOG
) -> None:
    """Append one row: the log only grows, and the append is atomic (no torn last line)."""

    def figure(key: str) -> str:
        value = summary.get(key)
        return "—" if value is None else f"{value:.3f}"

    cells = [
        time.strftime("%Y-%m-%d"), _short(git_commit()), model, fingerprint, set_name,
        figure("sra"), figure("cra"), figure("contact_f1_mean"), reason.replace("|", "/"),
    ]  # fmt: skip
    log.parent.mkdir(parents=True, exist_ok=True)
    append_text(log, ("" if log.is_file() else HEADER) + "| " + " | ".join(cells) + " |\n")
