"""Does the learned stylizer's strength control work? Three checks on the cross evaluation set.

    python -m training.diffusion.strength --config weights/stylizer.json [--limit N] [--out reports/diffusion/strength]

a. style strength: SRA (style judge: share of outputs judged as the target style) and CRA (content
   judge: share judged as the source content) over the "full" pairs with every group at global
   weight 0, 0.5, 1 and 1.5; the SRAs should rise with the weight (``monotonic``: never falls).
b. arms only: weights left_arm = right_arm = 1, every other group 0, over the same pairs: the max
   geodesic angle (rad) between output and source local rotations of the leg joints must be
   <= 1e-5 (the cleanup stage skips legs of weight 0, so it keeps them exact too; the figure is
   recorded before and after cleanup).
c. per-group references: the set's "mixed_references" and "mixed_references_no_torso" pairs
   (the source, reference A of the target style, reference B of a third style and other
   content; DESIGN §7), requested with every weight 1: arms and torso from A, legs and root from B.
   Each part is scored by "the group's judge": the style judge's probability of the part's style on
   a motion whose part comes from the output and everything else from the source. Averaged over
   pairs, P(style_A | arms+torso from the output) against P(style_A | source) and
   P(style_B | legs+root from the output) against P(style_B | source): "moves toward" when the
   output's is higher.

Outputs pass through the product's foot-contact cleanup stage (core.runtime.clean_stylized with
default CleanupSettings and the request's weights) unless ``--no-cleanup``. ``--limit N`` takes
the first N pairs of each check. Writes strength.json and strength.md to ``--out``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shlex
import time
from pathlib import Path

import numpy as np

from core.io.atomic import write_text
from core.motion.canonical import BODY_GROUPS
from core.motion.motion import Motion
from core.ops.features import motion_to_features
from core.ops.rotations import quat_angle
from core.runtime import CleanupSettings, clean_stylized
from core.stylize.baselines import take_groups
from core.stylize.loading import load_stylizer
from core.stylize.request import GROUPS, StyleRequest
from training.data.cache import load_cache
from training.data.paths import REPO_ROOT
from training.evaluate import config_label
from training.evaluation.pairs import clip_motions, load_pairs
from training.judges.api import load_judge

SET = "cross"
STRENGTH_WEIGHTS = (0.0, 0.5, 1.0, 1.5)
ARMS_ONLY = {g: (1.0 if g in ("left_arm", "right_arm") else 0.0) for g in GROUPS}
LEG_GROUPS = ("left_leg", "right_leg")
EXACT_RAD = 1e-5
PART_A = ("left_arm", "right_arm", "torso")  # from reference A (the pair's reference)
PART_B = ("left_leg", "right_leg", "root")  # from reference B (the pair's second reference)
MIXED_VARIANTS = ("mixed_references", "mixed_references_no_torso")
DEFAULT_OUT = REPO_ROOT / "reports" / "diffusion" / "strength"


class Run:
    """The stylizer, the judges and the cleanup stage, shared by the three checks."""

    def __init__(self, stylizer, motions: dict[str, Motion], cleanup: bool):
        self.stylizer = stylizer
        self.motions = motions
        self.cleanup = cleanup
        self.settings = CleanupSettings()
        self.style_judge, self.content_judge = load_judge("style"), load_judge("content")

    def stylize(self, source: str, reference: str, weights: dict, group_references: dict | None = None) -> Motion:
        """The product's stylize + cleanup stages on canonical motion (no label options)."""
        content = self.motions[source]
        request = StyleRequest(
            content,
            self.motions[reference],
            {g: self.motions[c] for g, c in (group_references or {}).items()},
            dict(weights),
        )
        output = self.stylizer.stylize(request)
        if output.num_frames != content.num_frames:
            raise RuntimeError(f"the stylizer returned {output.num_frames} frames for {content.num_frames}")
        return clean_stylized(content, output, weights, self.settings) if self.cleanup else output

    def style_proba(self, motions: list[Motion]) -> np.ndarray:
        return self.style_judge.predict_proba([motion_to_features(m)[0] for m in motions])

    def style_index(self, style: str) -> int:
        return self.style_judge.labels.index(style)


def style_strength(run: Run, pairs) -> dict:
    """Check a: SRA and CRA of the full pairs at each global weight."""
    rows = []
    for w in STRENGTH_WEIGHTS:
        outputs = [run.stylize(p.source, p.reference, {g: w for g in GROUPS}) for p in pairs]
        features = [motion_to_features(m)[0] for m in outputs]
        proba = run.style_judge.predict_proba(features)
        styles = [run.style_judge.labels[i] for i in proba.argmax(1)]
        contents = run.content_judge.predict(features)
        rows.append(
            {
                "weight": w,
                "sra": float(np.mean([s == p.target_style for s, p in zip(styles, pairs)])),
                "cra": float(np.mean([c == p.source_content for c, p in zip(contents, pairs)])),
                "p_target_style": float(
                    np.mean([proba[k, run.style_index(p.target_style)] for k, p in enumerate(pairs)])
                ),
            }
        )
    sra = [r["sra"] for r in rows]
    return {
        "pairs": len(pairs),
        "weights": list(STRENGTH_WEIGHTS),
        "sra": sra,
        "cra": [r["cra"] for r in rows],
        "p_target_style": [r["p_target_style"] for r in rows],
        "monotonic": all(b >= a for a, b in itertools.pairwise(sra)),
        "strictly_rising": all(b > a for a, b in itertools.pairwise(sra)),
        "rows": rows,
    }


def leg_deviation(source: Motion, output: Motion) -> float:
    """Max geodesic angle (rad) between the output's and the source's leg-joint local rotations."""
    joints = [source.skeleton.index(j) for g in LEG_GROUPS for j in BODY_GROUPS[g]]
    return float(quat_angle(source.rotations[:, joints], output.rotations[:, joints]).max())


def arms_only(run: Run, pairs) -> dict:
    """Check b: arms styled, everything else weight 0: the legs must keep the source's rotations."""
    cleanup, run.cleanup = run.cleanup, False
    try:
        raw = [run.stylize(p.source, p.reference, ARMS_ONLY) for p in pairs]
    finally:
        run.cleanup = cleanup
    cleaned = [
        clean_stylized(run.motions[p.source], m, ARMS_ONLY, run.settings) if cleanup else m for p, m in zip(pairs, raw)
    ]
    before = [leg_deviation(run.motions[p.source], m) for p, m in zip(pairs, raw)]
    after = [leg_deviation(run.motions[p.source], m) for p, m in zip(pairs, cleaned)]
    return {
        "pairs": len(pairs),
        "weights": ARMS_ONLY,
        "max_leg_rotation_rad": max(after),
        "max_leg_rotation_rad_before_cleanup": max(before),
        "threshold_rad": EXACT_RAD,
        "passed": max(after) <= EXACT_RAD,
        "cleanup_changed_legs": any(a != b for a, b in zip(before, after)),
        "per_pair": [{"id": p.id, "before_cleanup": b, "after_cleanup": a} for p, b, a in zip(pairs, before, after)],
    }


def per_group_references(run: Run, pairs) -> dict:
    """Check c: arms + torso from reference A, legs + root from reference B; the group judges."""
    rows = []
    for p in pairs:
        second = p.group_references[PART_B[0]]
        style_b = p.group_styles[PART_B[0]]
        output = run.stylize(p.source, p.reference, {g: 1.0 for g in GROUPS}, {g: second for g in PART_B})
        source = run.motions[p.source]
        proba = run.style_proba(
            [source, take_groups(source, output, PART_A), take_groups(source, output, PART_B), output]
        )
        a, b = run.style_index(p.target_style), run.style_index(style_b)
        rows.append(
            {
                "id": p.id,
                "source_style": p.source_style,
                "style_a": p.target_style,
                "style_b": style_b,
                "reference_a": p.reference,
                "reference_b": second,
                "p_a_source": float(proba[0, a]),
                "p_a_arms_output": float(proba[1, a]),
                "p_a_output": float(proba[3, a]),
                "p_b_source": float(proba[0, b]),
                "p_b_legs_output": float(proba[2, b]),
                "p_b_output": float(proba[3, b]),
            }
        )

    def side(style: str, part, key_out: str, key_src: str) -> dict:
        out = float(np.mean([r[key_out] for r in rows]))
        src = float(np.mean([r[key_src] for r in rows]))
        return {
            "groups": list(part),
            "style": style,
            "p_output": out,
            "p_source": src,
            "moves_toward": out > src,
            "share_pairs_higher": float(np.mean([r[key_out] > r[key_src] for r in rows])),
        }

    return {
        "pairs": len(rows),
        "arms": side("A (the pair's reference)", PART_A, "p_a_arms_output", "p_a_source"),
        "legs": side("B (the second reference)", PART_B, "p_b_legs_output", "p_b_source"),
        "rows": rows,
    }


def measure(
    config, limit: int | None = None, cleanup: bool = True, device: str = "cpu", out: Path | None = None
) -> dict:
    """The three checks of one model config (see the module doc) as a JSON-ready dict."""
    started = time.perf_counter()
    all_pairs = load_pairs(SET)
    full = [p for p in all_pairs if p.variant == "full"][:limit]
    mixed = [p for p in all_pairs if p.variant in MIXED_VARIANTS][:limit]
    cache = load_cache(progress=False)
    motions = clip_motions({c for p in (*full, *mixed) for c in p.clip_ids()}, cache)
    stylizer = load_stylizer(config, device)
    run = Run(stylizer, motions, cleanup)
    result = {
        "config": config_label(config),
        "stylizer": stylizer.name,
        "set": SET,
        "cleanup": cleanup,
        "limit": limit,
        "device": device,
        "command": _command(config, limit, cleanup, device, out),
        "strength": style_strength(run, full),
        "arms_only": arms_only(run, full),
        "per_group": per_group_references(run, mixed),
    }
    result["seconds"] = time.perf_counter() - started
    return result


def _command(config, limit, cleanup, device, out) -> str:
    words = ["python", "-m", "training.diffusion.strength", "--config", config_label(config)]
    if limit:
        words += ["--limit", str(limit)]
    if not cleanup:
        words.append("--no-cleanup")
    if device != "cpu":
        words += ["--device", device]
    if out is not None and Path(out).resolve() != DEFAULT_OUT.resolve():
        words += ["--out", config_label(out)]
    return shlex.join(words)


def markdown(result: dict) -> str:
    s, b, c = result["strength"], result["arms_only"], result["per_group"]
    lines = [
        f"# Strength control of {result['stylizer']} ({result['config']}) on the {result['set']} set",
        "",
        (
            f"Command: `{result['command']}` ({result['seconds']:.0f} s). "
            f"Foot-contact cleanup stage: {'on' if result['cleanup'] else 'off'}."
        ),
        "",
        f"## a. Style strength ({s['pairs']} full pairs, every group at the weight)",
        "",
        "| weight | SRA | CRA | mean P(target style) |",
        "|---|---|---|---|",
        *(f"| {r['weight']:g} | {r['sra']:.2f} | {r['cra']:.2f} | {r['p_target_style']:.3f} |" for r in s["rows"]),
        "",
        (
            f"SRA rises monotonically with the weight: **{'yes' if s['monotonic'] else 'no'}**"
            f" (strictly: {'yes' if s['strictly_rising'] else 'no'})."
        ),
        "",
        f"## b. Arms only ({b['pairs']} full pairs; left_arm = right_arm = 1, other groups 0)",
        "",
        "| max leg-joint rotation change (rad) | before cleanup | after cleanup | threshold | passed |",
        "|---|---|---|---|---|",
        (
            f"| output vs source | {b['max_leg_rotation_rad_before_cleanup']:.1e} | {b['max_leg_rotation_rad']:.1e}"
            f" | {b['threshold_rad']:.0e} | {'yes' if b['passed'] else '**no**'} |"
        ),
        "",
        f"## c. Per-group references ({c['pairs']} mixed-reference pairs; every weight 1)",
        "",
        "Each part scored by the style judge on the source with only that part taken from the output.",
        "",
        "| part | asked style | P(style \\| part from output) | P(style \\| source) | moves toward | pairs higher |",
        "|---|---|---|---|---|---|",
        *(
            f"| {', '.join(side['groups'])} | {side['style']} | {side['p_output']:.3f} | {side['p_source']:.3f}"
            f" | {'yes' if side['moves_toward'] else '**no**'} | {side['share_pairs_higher']:.2f} |"
            for side in (c["arms"], c["legs"])
        ),
        "",
    ]
    return "\n".join(lines)


def write(result: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "strength.json", json.dumps(result, indent=1))
    write_text(out / "strength.md", markdown(result))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="the model config (JSON) of the stylizer")
    parser.add_argument("--limit", type=int, help="only the first N pairs of each check (a quick look)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--device", default="cpu", help="the stylizer's device (default cpu)")
    parser.add_argument(
        "--cleanup", action=argparse.BooleanOptionalAction, default=True,
        help="run the product's foot-contact cleanup stage on every output (default on)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    result = measure(args.config, args.limit, args.cleanup, args.device, args.out)
    write(result, args.out)
    s, b, c = result["strength"], result["arms_only"], result["per_group"]
    print("SRA at weight " + ", ".join(f"{w:g}: {v:.2f}" for w, v in zip(s["weights"], s["sra"])), end="")
    print(f"; monotonic: {s['monotonic']} (strictly rising: {s['strictly_rising']})")
    print("CRA at weight " + ", ".join(f"{w:g}: {v:.2f}" for w, v in zip(s["weights"], s["cra"])))
    print(f"arms only: max leg rotation change {b['max_leg_rotation_rad']:.2e} rad (passed: {b['passed']})")
    for key in ("arms", "legs"):
        side = c[key]
        print(
            f"{key} ({side['style']}): P {side['p_output']:.3f} from output vs {side['p_source']:.3f} source;"
            f" moves toward: {side['moves_toward']}"
        )
    print(f"{result['seconds']:.1f} s; written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
