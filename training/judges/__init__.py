"""Independent style and content judges of the evaluation harness (DESIGN §7).

``load_judge(kind)`` for kind in KINDS gives a Judge with ``labels``, ``predict_proba``,
``predict`` and ``embed`` over lists of canonical feature arrays (F, 134). Train them with
``python -m training.judges``. Their networks and weights are their own: never share them with
the stylization encoders, or the judges stop being independent.
"""

from training.judges.api import Judge, load_judge
from training.judges.config import KINDS

__all__ = ["KINDS", "Judge", "load_judge"]
