"""Benchmark of the foot-contact cleanup stage (core.ops.cleanup, issue 5): median time to clean a
stylized real clip, against the statistics stylizer run alongside on the same clip (the stage it
follows in the runtime), and the contact skate it removes.

Run from the repository root: ``python -m benchmarks.bench_cleanup [--runs 20]``.
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks.bench_foundation import median_seconds
from core.io.bvh import read_bvh
from core.ops.cleanup import clean_foot_contacts, detect_contacts
from core.ops.features import FEATURE_FPS
from core.ops.resample import resample
from core.stylize.baselines import StatisticsStylizer
from core.stylize.request import StyleRequest
from tests.test_cleanup import PAIRS  # the pairs the tests measure the skate ratio on
from training.data.paths import bandai_root, data_root


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args(argv)
    root = bandai_root(data_root())

    def load(name):
        return resample(read_bvh(root / name.split("_", 1)[0] / "data" / name), FEATURE_FPS)

    print(
        f"{'content':<22} {'style':<22} {'frames':>6} {'cleanup ms':>10} {'stylize ms':>10} "
        f"{'contact skate before':>20} {'after':>6} {'clamped':>7}"
    )
    for content_name, style_name in PAIRS:
        content, style = load(content_name), load(style_name)
        request = StyleRequest(content, style)
        out = StatisticsStylizer().stylize(request)
        contacts = detect_contacts(content)
        _, report = clean_foot_contacts(out, contacts)
        t_clean = median_seconds(lambda o=out, c=content: clean_foot_contacts(o, detect_contacts(c)), args.runs)
        t_style = median_seconds(lambda r=request: StatisticsStylizer().stylize(r), args.runs)
        before = np.mean(list(report.contact_skate_before.values()))
        after = np.mean(list(report.contact_skate_after.values()))
        print(
            f"{content_name[10:-7]:<22} {style_name[10:].split('.')[0]:<22} {out.num_frames:>6} "
            f"{t_clean * 1e3:>10.1f} {t_style * 1e3:>10.1f} {before:>20.3f} {after:>6.3f} "
            f"{sum(report.clamped_frames.values()):>7}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
