"""Benchmark of bone mapping detection (core.retarget.matching): median time to detect the mapping
of a 200-bone rig and build its Rig (rig_for_skeleton), by preset, by name and by structure.

The rigs are the bundled Mixamo rest skeleton (65 bones, fingers) with twist, IK, hair, skirt and
face bones added up to 200: under its Mixamo names (the preset), under names no preset knows (a
``_l``/``_r`` suffix convention: names and hierarchy) and under meaningless ``Bone.NNN`` names (the
structure). Target: 50 ms each.

Run from the repository root: ``python -m benchmarks.bench_rig_detection [--runs 50]``.
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks.bench_foundation import median_seconds
from core.motion.skeleton import Skeleton
from core.retarget.matching import detect_mapping, rig_for_skeleton
from core.retarget.presets import bundled_rig

BONES = 200


def _with_distractors(skeleton: Skeleton, total: int) -> Skeleton:
    """The skeleton with twist bones halfway along each limb bone, an IK bone on each hand and foot
    under the root, and hair, skirt and face chains of short bones until it has ``total`` bones."""
    names, parents, offsets = list(skeleton.names), list(skeleton.parents), list(skeleton.offsets)

    def add(name, parent, offset):
        names.append(name)
        parents.append(parent)
        offsets.append(np.asarray(offset, dtype=np.float64))

    def index(plain):
        return next(i for i, n in enumerate(names) if n.endswith(":" + plain) or n == plain)

    world = bundled_rig("mixamo").rest_world()[1]
    for side in ("Left", "Right"):
        for limb, child in (("Arm", "ForeArm"), ("ForeArm", "Hand"), ("UpLeg", "Leg"), ("Leg", "Foot")):
            add(f"{side}{limb}Twist", index(side + limb), offsets[index(side + child)] / 2)
        for end in ("Hand", "Foot"):
            add(f"IK_{side}{end}", 0, world[index(side + end)] - world[0])
    anchors = [index("Head"), index("Spine2"), index("Hips")]
    rng = np.random.default_rng(0)
    chain = 0
    while len(names) < total:
        parent = anchors[chain % len(anchors)]
        for link in range(min(4, total - len(names))):
            add(f"Extra{chain}_{link}", parent, rng.normal(0, 2.0, 3))
            parent = len(names) - 1
        chain += 1
    return Skeleton(tuple(names), tuple(parents), np.array(offsets))


def rigs() -> dict[str, Skeleton]:
    mixamo = _with_distractors(bundled_rig("mixamo").skeleton, BONES)
    plain = [n.split(":")[-1] for n in mixamo.names]
    suffixed = [n.replace("Left", "") + "_l" if n.startswith("Left") else
                n.replace("Right", "") + "_r" if n.startswith("Right") else n.lower() for n in plain]
    return {
        "preset (mixamo)": mixamo,
        "names": Skeleton(tuple(suffixed), mixamo.parents, mixamo.offsets),
        "structure (Bone.NNN)": Skeleton(tuple(f"Bone.{i:03d}" for i in range(BONES)), mixamo.parents, mixamo.offsets),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args(argv)
    print(f"{'rig':<22} {'bones':>5} {'found by':<28} {'detect ms':>9} {'detect + Rig ms':>15}")
    for label, skeleton in rigs().items():
        result = detect_mapping(skeleton)
        how = ", ".join(f"{v} {list(result.found_by.values()).count(v)}" for v in sorted(set(result.found_by.values())))
        t_detect = median_seconds(lambda s=skeleton: detect_mapping(s), args.runs)
        t_rig = median_seconds(lambda s=skeleton: rig_for_skeleton(s), args.runs)
        print(f"{label:<22} {skeleton.num_joints:>5} {how:<28} {t_detect * 1e3:>9.1f} {t_rig * 1e3:>15.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
