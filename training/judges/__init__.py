"""Independent style and content judges of the evaluation harness (DESIGN §7).

``load_judge(kind)`` for kind in ALL_KINDS gives a judge with ``labels``, ``predict_proba`` and
``predict`` over lists of canonical feature arrays (F, 134); the CNN judges (KINDS: a ``Judge``)
also give ``embed``. Beside the CNN, two other families judge the dataset-2 style and content, so
recognition figures do not rest on one network (issue 15): ``knn_*`` (nearest training clips by
per-clip feature statistics, knn.py) and ``seq_*`` (a GRU over joint positions, sequence.py).
Train them with ``python -m training.judges``. Their networks and weights are their own: never
share them with the stylization encoders, or the judges stop being independent.
"""

from pathlib import Path

from training.judges import knn, sequence
from training.judges.api import Judge
from training.judges.api import load_judge as load_cnn_judge
from training.judges.config import KINDS
from training.judges.families import ClipJudge

FAMILY_KINDS = knn.KINDS + sequence.KINDS
ALL_KINDS = KINDS + FAMILY_KINDS


def load_judge(kind: str, weights_dir: Path | str | None = None) -> Judge | ClipJudge:
    """The judge ``kind`` of any family from ``weights_dir`` (default ``weights/judges``)."""
    if kind in knn.KINDS:
        return knn.load_knn_judge(kind, weights_dir)
    if kind in sequence.KINDS:
        return sequence.load_sequence_judge(kind, weights_dir)
    return load_cnn_judge(kind, weights_dir)


__all__ = ["ALL_KINDS", "FAMILY_KINDS", "KINDS", "ClipJudge", "Judge", "load_judge"]
