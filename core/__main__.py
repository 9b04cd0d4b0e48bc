"""Command line: ``python -m core stylize content.bvh style.bvh -o out.bvh [options]``.

Rigs are detected from the BVH bone names (core.retarget.matching.rig_for_skeleton); the pipeline
is core.runtime's, the one the server runs. The model is the shipped model config (core.stylize.loading.SHIPPED_CONFIG:
weights/stylizer.json beside the core package, in the repo and in the add-on zip alike) unless
``--config`` or ``--stylizer`` says otherwise. Exit status 0 on success, 2 on bad input (every
input and the output path are checked before any work, each message naming the input), 1 when
the stylizer returns NaN or infinite values (nothing is written). The result is written
atomically: a failed write leaves an existing file at the output path as it was.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

from .stylize.loading import SHIPPED_CONFIG

# Style weights, as the add-on's sliders allow them: 0 keeps the source, above 1 exaggerates.
MAX_WEIGHT = 4.0


def _pairs(items, what: str) -> dict[str, str]:
    """name=value pairs from every occurrence of a flag, a name given twice refused."""
    out = {}
    for text in items or []:
        for item in filter(None, (t.strip() for t in text.split(","))):
            key, sep, value = item.partition("=")
            if not sep or not key.strip() or not value.strip():
                raise ValueError(f"{what}: expected name=value, got {item!r}")
            if key.strip() in out:
                raise ValueError(f"{what}: {key.strip()!r} is given twice")
            out[key.strip()] = value.strip()
    return out


def _number(what: str, text: str, low: float | None = None, high: float | None = None) -> float:
    """A finite number within [low, high], else a ValueError saying which flag and value."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{what}={text!r} is not a number") from None
    if not math.isfinite(value) or (low is not None and value < low) or (high is not None and value > high):
        span = f" between {low:g} and {high:g}" if low is not None else ""
        raise ValueError(f"{what}={text!r}: expected a finite number{span}")
    return value


def _options(args) -> dict:
    """--option pairs (true/false, finite numbers, else text) and the explicit flags, which win; the
    stylizer and the cleanup check the values' ranges (the contact thresholds refuse NaN and inf)."""
    options = {}
    for key, value in _pairs(args.option, "--option").items():
        if value.lower() in ("true", "false"):
            options[key] = value.lower() == "true"
            continue
        try:
            float(value)
        except ValueError:
            options[key] = value  # a name, not a number
            continue
        options[key] = _number(f"--option {key}", value)
    if args.steps is not None:
        options["steps"] = args.steps
    if args.seed is not None:
        options["seed"] = args.seed
    if args.no_cleanup:
        options["foot_cleanup"] = False
    if args.contact_height is not None:
        options["contact_height"] = args.contact_height
    if args.contact_speed is not None:
        options["contact_speed"] = args.contact_speed
    return options


def _check_output(output: str, inputs: dict[str, str]) -> None:
    """Refuse, before any work, an output that is one of the inputs or cannot be written."""
    out = os.path.realpath(output)
    for role, path in inputs.items():
        same = os.path.realpath(path) == out
        if not same and os.path.exists(path) and os.path.exists(output):
            same = os.path.samefile(path, output)
        if same:
            raise ValueError(f"-o {output}: that is the {role} file; write the result to another path")
    if os.path.exists(output) and not os.path.isfile(output):
        raise ValueError(f"-o {output}: is a folder or a device, not a file; give the BVH file to write")
    folder = os.path.dirname(out)
    if not os.path.isdir(folder):
        raise ValueError(f"-o {output}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"-o {output}: folder {folder} is not writable")


def _load(path: str, role: str):
    """A BVH input on its detected rig; every error names the input's role and file."""
    from .io.bvh import BVHError, read_bvh
    from .retarget.matching import check_sides, rig_for_skeleton
    from .retarget.rig import RigError
    from .runtime import RigMotion, check_duration

    try:
        motion = read_bvh(path)
    except BVHError as e:
        raise BVHError(e.path, e.line, f"{e.problem} ({role})") from None
    try:
        rig = rig_for_skeleton(motion.skeleton, name=path, motion=motion)
    except RigError as e:
        raise RigError(f"{role} {path}: unknown rig: {e}") from None
    try:
        check_sides(rig, motion)  # the runtime checks too; here the message can name the file
    except RigError as e:
        raise RigError(f"{role} {path}: {e}") from None
    check_duration(f"{role} {path}", motion.num_frames, motion.fps)
    return RigMotion(rig, motion)


def stylize_command(args) -> int:
    import numpy as np

    from .io.bvh import write_bvh
    from .runtime import stylize_rig_motion
    from .stylize.request import GROUPS

    weights = {}
    for group, value in _pairs(args.weights, "--weights").items():
        if group not in GROUPS:
            raise ValueError(f"--weights: unknown body group {group!r}; groups are {', '.join(GROUPS)}")
        weights[group] = _number(f"--weights {group}", value, 0.0, MAX_WEIGHT)
    group_paths = _pairs(args.group_reference, "--group-reference")
    for group in group_paths:
        if group not in GROUPS:
            raise ValueError(f"--group-reference: unknown body group {group!r}; groups are {', '.join(GROUPS)}")
    options = _options(args)
    roles = {"content": args.content, "style": args.style}
    roles.update({f"group reference {g}": p for g, p in group_paths.items()})
    if args.config:
        roles["model config"] = args.config
    _check_output(args.output, roles)
    content = _load(args.content, "content")
    reference = _load(args.style, "style")
    groups = {g: _load(p, f"group reference {g}") for g, p in group_paths.items()}
    if args.stylizer is not None:
        stylizer = args.stylizer
    else:
        from .stylize.loading import load_stylizer

        stylizer = load_stylizer(args.config or SHIPPED_CONFIG)
    out = stylize_rig_motion(content, reference, groups, weights, options, stylizer)
    if not (np.all(np.isfinite(out.rotations)) and np.all(np.isfinite(out.positions))):
        print(f"error: the result holds NaN or infinite values; nothing was written to {args.output}", file=sys.stderr)
        return 1
    write_bvh(out, args.output)
    print(
        f"wrote {args.output}: {out.num_frames} frames at {out.fps:g} fps on {content.rig.name or 'the rig'}",
        file=sys.stderr,
    )
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core", description="Motion style transfer (no Blender).")
    sub = parser.add_subparsers(dest="command", required=True)
    st = sub.add_parser("stylize", help="stylize a BVH clip with a BVH style reference")
    st.add_argument("content", help="the motion to restyle (.bvh or .bvh.gz)")
    st.add_argument("style", help="the style reference (.bvh or .bvh.gz)")
    st.add_argument("-o", "--output", required=True, help="the BVH file to write")
    st.add_argument("--weights", action="append", help="per-group style weights, e.g. root=0,left_arm=1.5 (default 1)")
    st.add_argument("--group-reference", action="append", help="a group's own reference, e.g. left_arm=angry.bvh")
    model = st.add_mutually_exclusive_group()
    model.add_argument("--stylizer", help="a stylizer by name, e.g. statistics (instead of a model config)")
    model.add_argument(
        "--config",
        help="a model config JSON (the stylizer and its weights; default: the shipped weights/stylizer.json)",
    )
    st.add_argument("--steps", type=int, metavar="N", help="sampling steps of the learned stylizer (option steps)")
    st.add_argument("--seed", type=int, metavar="N", help="random seed of the learned stylizer (option seed)")
    st.add_argument("--no-cleanup", action="store_true", help="skip the foot-contact cleanup (foot_cleanup=false)")
    st.add_argument("--contact-height", type=float, metavar="CM", help="contact height threshold, cm")
    st.add_argument("--contact-speed", type=float, metavar="CMS", help="contact speed threshold, cm/s")
    st.add_argument(
        "--option", action="append", help="stylizer options, e.g. max_ratio=3 (the flags above win over these)"
    )
    args = parser.parse_args(argv)
    from .io.bvh import BVHError
    from .retarget.rig import RigError

    try:
        return stylize_command(args)
    except (BVHError, RigError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
