"""``python -m training.contrastive train --config training/configs/contrastive.toml [--out DIR] [--resume]``
(also under ``torchrun --nproc_per_node=N``); see training/contrastive/train.py."""

import sys

from training.contrastive.train import main

if __name__ == "__main__":
    sys.exit(main())
