"""Command line: ``python -m core stylize content.bvh style.bvh -o out.bvh [options]``.

Rigs are detected from the BVH bone names (core.retarget.matching.rig_for_skeleton); the pipeline
is core.runtime's, the one the server runs. The model is the shipped model config (core.stylize.loading.SHIPPED_CONFIG:
weights/stylizer.json beside the core package, in the repo and in the add-on zip alike) unless
``--config`` or ``--stylizer`` says otherwise. Exit status 0 on success, 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys

from .stylize.loading import SHIPPED_CONFIG


def _pairs(text: str, what: str) -> dict[str, str]:
    out = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"{what}: expected name=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def _load(path: str):
    from .io.bvh import read_bvh
    from .retarget.matching import rig_for_skeleton
    from .retarget.rig import RigError
    from .runtime import RigMotion

    motion = read_bvh(path)
    try:
        rig = rig_for_skeleton(motion.skeleton, name=path)
    except RigError as e:
        raise RigError(f"{path}: unknown rig: {e}") from None
    return RigMotion(rig, motion)


def stylize_command(args) -> int:
    from .io.bvh import write_bvh
    from .runtime import stylize_rig_motion
    from .stylize.request import GROUPS

    weights = {}
    for group, value in _pairs(args.weights or "", "--weights").items():
        if group not in GROUPS:
            raise ValueError(f"--weights: unknown body group {group!r}; groups are {', '.join(GROUPS)}")
        try:
            weights[group] = float(value)
        except ValueError:
            raise ValueError(f"--weights: {group}={value!r} is not a number") from None
    group_paths = {}
    for item in args.group_reference or []:
        for group, path in _pairs(item, "--group-reference").items():
            if group not in GROUPS:
                raise ValueError(f"--group-reference: unknown body group {group!r}; groups are {', '.join(GROUPS)}")
            group_paths[group] = path
    options = {}
    for key, value in _pairs(args.option or "", "--option").items():
        if value.lower() in ("true", "false"):
            options[key] = value.lower() == "true"
            continue
        try:
            options[key] = float(value)
        except ValueError:
            options[key] = value
    # the explicit flags win over the same key given with --option
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
    content = _load(args.content)
    reference = _load(args.style)
    groups = {g: _load(p) for g, p in group_paths.items()}
    if args.stylizer is not None:
        stylizer = args.stylizer
    else:
        from .stylize.loading import load_stylizer

        stylizer = load_stylizer(args.config or SHIPPED_CONFIG)
    out = stylize_rig_motion(content, reference, groups, weights, options, stylizer)
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
    st.add_argument("--weights", help="per-group style weights, e.g. root=0,left_arm=1.5 (default 1)")
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
    st.add_argument("--option", help="stylizer options, e.g. max_ratio=3 (the flags above win over these)")
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
