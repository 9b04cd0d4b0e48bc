"""The three judges' configurations: which clips, which labels, network and training settings.

- ``style``: the 7 dataset-2 styles; train split for training, val split for model selection
  (best clip-level val accuracy, ties to the lower val loss), reported on the test split.
- ``content``: the 10 dataset-2 contents; same splits.
- ``style_dataset1``: the 15 dataset-1 styles (all of dataset-1 is the unseen-style split). With
  about one take per content x style, it trains on some contents and is tested on the others
  (``DATASET1_TEST_CONTENTS``); there is no validation set, so it trains a fixed number of epochs
  and the last epoch is kept. The normal-only contents (call, punch, slash, kick, respond,
  dance-short) are left out entirely: they would teach "unusual content means normal".

Augmentation: random crops, Gaussian noise, speed change (kept small for the style judges, since
pace is itself a style cue) and, for the dataset-2 judges, left/right mirroring (core.ops.mirror,
content labels swapped through training.data.labels). Without mirroring the judges score 1.0 on
the real test takes but only about 0.8 (style) and 0.73 (content) on the same takes mirrored: they
leaned on the actors' left/right asymmetries, a cue a stylized output need not keep. The dataset-1
judge is not mirrored: a mirrored walk-left is a walk-right, one of its held-out test contents.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

KINDS = ("style", "content", "style_dataset1")

DATASET1_NORMAL_ONLY = ("call", "punch", "slash", "kick", "respond", "dance-short", "dance-long")
# One locomotion, one sideways step, two gestures; each has relatives among the training contents
# (walk/dash, walk-left, bye/bow) but is itself never seen in training.
DATASET1_TEST_CONTENTS = ("run", "walk-right", "byebye", "guide")


@dataclass(frozen=True)
class JudgeConfig:
    kind: str
    dataset: str  # "dataset-1" or "dataset-2"
    target: str  # the label judged: "style" or "content"
    # data
    channels: tuple[str, ...] = ("height", "planar_velocity", "heading_velocity", "rotations_6d")
    window: int = 60  # frames (2 s at 30 fps)
    eval_stride: int = 15  # inference windows
    train_stride: int = 30  # sets the number of training windows per epoch (one per stride of each clip)
    min_windows_per_epoch: int = 0
    exclude_contents: tuple[str, ...] = ()
    test_contents: tuple[str, ...] = ()  # dataset-1: contents held out for testing
    # network
    width: int = 128
    embed_dim: int = 64
    kernel: int = 5
    dropout: float = 0.2
    # training
    seed: int = 0
    epochs: int = 20
    patience: int = 10  # epochs without val improvement before stopping (no val: never stops early)
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-2
    label_smoothing: float = 0.05
    noise_std: float = 0.05  # Gaussian noise, in normalised units
    speed_range: tuple[float, float] = (0.9, 1.1)
    mirror: bool = False  # add left/right mirrored copies of the training clips (content labels swapped)
    balance: bool = True  # draw windows so every class is equally likely
    std_floor: float = 1e-2

    def to_dict(self) -> dict:
        return asdict(self)


DEFAULT_CONFIGS: dict[str, JudgeConfig] = {
    "style": JudgeConfig(
        kind="style", dataset="dataset-2", target="style", epochs=15, speed_range=(0.92, 1.08), mirror=True
    ),
    "content": JudgeConfig(
        kind="content", dataset="dataset-2", target="content", epochs=20, speed_range=(0.8, 1.25), mirror=True
    ),
    "style_dataset1": JudgeConfig(
        kind="style_dataset1",
        dataset="dataset-1",
        target="style",
        epochs=60,
        min_windows_per_epoch=2048,
        speed_range=(0.92, 1.08),
        dropout=0.3,
        exclude_contents=DATASET1_NORMAL_ONLY,
        test_contents=DATASET1_TEST_CONTENTS,
    ),
}


def default_config(kind: str, **overrides) -> JudgeConfig:
    if kind not in DEFAULT_CONFIGS:
        raise ValueError(f"unknown judge kind {kind!r}; expected one of {KINDS}")
    return replace(DEFAULT_CONFIGS[kind], **overrides)
