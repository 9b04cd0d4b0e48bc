"""Issue 14 for the runtime server: nothing a request holds takes it down, makes it grow without
bound, or comes back as garbage. Real server subprocesses on pipes (tools/fuzz_server.py), the
in-process Server for stylizers that misbehave, and the add-on's client for heartbeats."""

from __future__ import annotations

import os
import sys
import threading
import time

import numpy as np
import pytest
from conftest import REPO_ROOT

from core import protocol as P
from core.server import Server
from tools.fuzz_server import MAX_RSS_BYTES, Generator, Session, _frame, run

sys.path.insert(0, str(REPO_ROOT / "blender_addon"))  # the client as a plain module (no bpy package)
import client as C


@pytest.fixture(scope="module")
def session():
    s = Session()
    yield s
    assert s.close() == 0


def _request(frames=60, fps=30.0, groups=(), **fields):
    """A valid stylize request (header, arrays) of synthetic takes on the canonical rig."""
    gen = Generator(1)
    motions, arrays = {}, {}
    for key in ("content", "reference", *(f"reference:{g}" for g in groups)):
        rotations, translations = gen.motion(frames, fps)
        motions[key] = {"rig": gen.rig, "fps": fps}
        arrays[f"{key}.rotations"], arrays[f"{key}.translations"] = rotations, translations
    return {"type": "stylize", "id": "t", "motions": motions, "weights": {}, "options": {}} | fields, arrays


def test_fuzzed_requests_are_all_answered_and_memory_stays_bounded():
    figures = run(300, seed=0)  # raises, naming the request, on any unanswered or wrong answer
    print(f"\nfuzz: {figures}")
    assert figures["answered"] == 300 and figures["exit"] == 0
    assert figures["kinds"]["result"] >= 30 and figures["kinds"]["bad_request"] >= 30
    assert figures["peak_rss_mb"] * 1e6 <= MAX_RSS_BYTES


@pytest.mark.parametrize("key", ["content", "reference", "reference:left_arm"])
def test_a_slow_rate_that_spans_hours_is_refused_up_front_naming_the_motion(session, key):
    header, arrays = _request(groups=("left_arm",))
    header["motions"][key]["fps"] = 0.01  # 60 frames 100 s apart: 98 min, 177,001 frames at 30 fps
    t = time.perf_counter()
    reply, _ = session.ask(_frame(header, arrays))
    assert time.perf_counter() - t < 5.0
    assert reply["type"] == "error" and reply["kind"] == "bad_request" and reply["id"] == "t", reply
    assert reply["message"] == (
        f"RequestError: motion {key!r}: 60 frames at 0.01 fps is 98.3 min; stylize at most 60 min at once "
        "(cut the take, or check its frame rate)"
    )
    assert session.peak_rss() <= MAX_RSS_BYTES


def test_a_request_over_the_memory_bound_is_refused_naming_the_largest_motion_first():
    small = Session("--stylizer", "statistics", "--max-request-mb", "100")
    try:
        header, arrays = _request(groups=("left_arm",))
        header["motions"]["reference"]["fps"] = 0.05  # 60 frames 20 s apart: 35,401 frames at 30 fps
        reply, _ = small.ask(_frame(header, arrays))
        message = reply["message"]
        assert reply["kind"] == "bad_request" and message.startswith("RequestError: request too large"), reply
        assert "over the server's 100.0 MiB" in message
        figures = (
            "motion 'reference': 60 frames of 22 bones at 0.05 fps (19.7 min), 35401 frames at the pipeline's 30 fps"
        )
        assert message.index("motion '") == message.index(figures)
    finally:
        assert small.close() == 0


def test_a_take_under_four_frames_at_the_feature_rate_is_refused_naming_the_motion(session):
    header, arrays = _request(frames=3)
    reply, _ = session.ask(_frame(header, arrays))
    assert reply["kind"] == "bad_request", reply
    assert reply["message"] == (
        "RequestError: motion 'content': 3 frame(s) at 30 fps is 3 at 30 fps; the stylizer needs at least 4 "
        "(0.13 s): use a longer take"
    )


def test_a_rate_outside_the_protocol_range_is_refused_with_the_request_id(session):
    header, arrays = _request()
    header["motions"]["content"]["fps"] = 0.001
    reply, _ = session.ask(_frame(header, arrays))
    assert reply["kind"] == "protocol" and reply["id"] == "t" and "[0.01, 1000]" in reply["message"]


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda h, a: h.update(weights={"left_arm": 1e300}), "group weights must be numbers in [0, 10]"),
        (lambda h, a: h.update(weights={"root": 10.5}), "group weights must be numbers in [0, 10]"),
        (
            lambda h, a: a.update({"content.translations": a["content.translations"] * 1e30}),
            "motion 'content': translations",
        ),
        (lambda h, a: h["motions"]["reference"]["rig"]["skeleton"]["offsets"][3].__setitem__(0, 1e300), "rest offsets"),
        (lambda h, a: h["motions"]["content"]["rig"].update(rest_rotations=[[0, 0, 0, 0]] * 22), "rest_rotations"),
    ],
)
def test_values_that_would_overflow_are_bad_requests_and_the_server_goes_on(session, change, words):
    header, arrays = _request()
    change(header, arrays)
    reply, _ = session.ask(_frame(header, arrays))
    assert reply["type"] == "error" and reply["kind"] == "bad_request" and words in reply["message"], reply
    reply, arrays = session.ask(_frame(*_request(weights={"left_arm": 10.0})))
    assert reply["type"] == "result" and arrays["rotations"].shape == (60, 22, 4)


class _Broken:
    """A stylizer whose result holds NaN, or values beyond float32 (inf on the wire)."""

    name = "broken"

    def __init__(self, scale):
        self.scale = scale

    def stylize(self, request):
        m = request.content
        return m.with_arrays(m.rotations * self.scale, m.positions * self.scale)


@pytest.mark.parametrize("scale, words", [(np.nan, "rotations hold"), (1e300, "hold")])
def test_a_non_finite_result_is_an_internal_error_and_never_sent(scale, words):
    (in_r, in_w), (out_r, out_w) = os.pipe(), os.pipe()
    with open(in_r, "rb") as inp, open(in_w, "wb") as req, open(out_r, "rb") as rep, open(out_w, "wb") as out:
        server = Server(inp, out, _Broken(scale))
        thread = threading.Thread(target=server.serve, daemon=True)
        thread.start()
        req.write(_frame(P.hello_request(), {}) + _frame(*_request()))
        req.flush()
        replies = [P.read_message(rep, types=P.REPLY_TYPES)]
        while replies[-1][0]["type"] not in ("result", "error"):
            replies.append(P.read_message(rep, types=P.REPLY_TYPES))
        P.write_message(req, {"type": "shutdown"})
        thread.join(10)
    final, arrays = replies[-1]
    assert [h["type"] for h, _ in replies if h["type"] != "progress"] == ["hello", "error"]
    assert final["kind"] == "internal" and "broken" in final["message"] and words in final["message"], final
    assert final["id"] == "t" and not arrays


def test_heartbeats_keep_a_slow_healthy_job_alive_past_the_client_timeout(tmp_path):
    args = ["--device", "cpu", "--stylizer", "statistics", "--heartbeat", "0.3"]
    client = C.ServerClient(sys.executable, args, log_path=tmp_path / "server.log", core_dir=REPO_ROOT, timeout=1.0)
    with client:
        header, arrays = _request(options={"step_delay": 1.5})  # 1.5 s between replies > the 1 s timeout
        rid = client.submit((header | {"id": None}, arrays))
        seen, deadline = [], time.monotonic() + 60
        while not seen or seen[-1][0]["type"] == "progress":
            assert time.monotonic() < deadline, "no result"
            seen += client.poll(rid)  # raises ServerError(kind timeout) if the server fell silent
            time.sleep(0.02)
        assert [h["type"] for h, _ in seen][-1] == "result" and {h["type"] for h, _ in seen} == {"progress", "result"}
        assert seen[-1][1]["rotations"].shape == (60, 22, 4)


def test_requests_sent_faster_than_served_are_refused_past_the_budget_not_queued():
    """A client that floods the server: what waits is bounded by the request budget; the request
    that would pass it is refused at once, the others still run."""
    s = Session("--stylizer", "statistics", "--max-request-mb", "40")
    try:
        slow, slow_arrays = _request()
        slow["id"], slow["options"] = "slow", {"step_delay": 1.0}
        big, big_arrays = _request(frames=30_000)  # 30,000 frames x 22 bones x 7 float32: 18.5 MB a motion
        frames = [_frame(slow, slow_arrays)]
        for rid in ("queued", "refused"):
            frames.append(_frame(dict(big, id=rid), big_arrays))
        for frame in frames:
            s.proc.stdin.write(frame)
        s.proc.stdin.flush()
        first, _ = s.final(30.0)
        assert first["id"] == "refused" and first["kind"] == "bad_request", first
        assert "MiB of waiting requests" in first["message"] and "send it when a result arrives" in first["message"]
        second, _ = s.final(30.0)
        assert second["id"] == "slow" and second["type"] == "result", second
        third, _ = s.final(30.0)  # admitted, then measured against the budget by check_request
        assert third["id"] == "queued" and "request too large" in third["message"], third
    finally:
        assert s.close() == 0
