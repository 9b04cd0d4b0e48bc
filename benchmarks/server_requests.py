"""What the server benchmarks share: real clips as a rig motion the way the add-on sends them,
a stylize request run to completion through the add-on's ``ServerClient`` + ``StylizeJob``, timing
loops and the seconds format of the tables."""

from __future__ import annotations

import sys
import time

import numpy as np

from core import protocol as P
from core.io.bvh import read_bvh
from core.ops.resample import resample
from core.retarget.matching import rig_for_skeleton
from core.runtime import RigMotion
from training.data.paths import REPO_ROOT, bandai_root

sys.path.insert(0, str(REPO_ROOT / "blender_addon"))  # client/job as plain modules (no bpy package)
import client as C
import job as J

__all__ = ["C", "J", "format_seconds", "rig_motion", "run_job", "stylize_request", "times"]


def rig_motion(name: str, frames: int | None = None, fps: float | None = None) -> RigMotion:
    """A Bandai clip by file name, resampled to ``fps`` (if given) and cut to ``frames``, with
    float32 arrays (what goes over the wire)."""
    m = read_bvh(bandai_root() / name.split("_", 1)[0] / "data" / name)
    if fps is not None:
        m = resample(m, fps)
    if frames is not None and m.num_frames < frames:
        raise SystemExit(f"{name}: {m.num_frames} frames at {m.fps:g} fps, fewer than {frames}")
    rot = m.rotations[:frames].astype(np.float32).astype(np.float64)
    pos = m.positions[:frames].astype(np.float32).astype(np.float64)
    return RigMotion.from_arrays(rig_for_skeleton(m.skeleton), rot, pos, m.fps)


def stylize_request(content: RigMotion, style: RigMotion, weights: dict):
    wire = [(m.rig.to_json(), m.motion.fps, m.motion.rotations, m.motion.positions) for m in (content, style)]
    return P.stylize_request(None, *wire, weights=weights)


def run_job(client, request, timeout: float) -> dict:
    """One stylize request through the add-on's job, waited for; its result arrays."""
    job = J.StylizeJob()
    job.start(client, request)
    assert job.wait(0.001, timeout=timeout) == J.DONE, job.describe_error()
    return job.result


def times(fn, runs: int) -> list[float]:
    """Seconds of ``runs`` calls of ``fn``."""
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def format_seconds(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"
