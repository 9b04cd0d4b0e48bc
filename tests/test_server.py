"""core.server as a real subprocess on pipes (no mocks), and the `python -m core stylize` command."""

from __future__ import annotations

import io
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO_ROOT, bandai_clip, tiny_diffusion_config

from core import protocol as P
from core.io.bvh import read_bvh
from core.motion.canonical import JOINT_NAMES
from core.ops.rotations import quat_conj, quat_mul
from core.retarget.matching import rig_for_skeleton
from core.runtime import STAGES, RigMotion, stylize_rig_motion
from core.stylize.baselines import GROUP_LOCAL_JOINTS

TIMEOUT = 20.0
CONTENT = "dataset-2_walk_normal_001.bvh.gz"
STYLE = "dataset-1_walk_angry_001.bvh"


class ServerProcess:
    """``python -m core.server`` on pipes, with a reader thread that queues its replies. Without
    --config or --stylizer it runs ``--stylizer statistics`` (fast, and the library's default), not the
    server's own default (the shipped learned model)."""

    def __init__(self, *args, log=None):
        if "--config" not in args and "--stylizer" not in args:
            args = ("--stylizer", "statistics", *args)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "core.server", "--device", "cpu", "--log-level", "WARNING", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log if log is not None else subprocess.DEVNULL,
            cwd=REPO_ROOT,
        )
        self.replies: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        while True:
            try:
                self.replies.put(P.read_message(self.proc.stdout, types=P.REPLY_TYPES))
            except P.Closed:
                self.replies.put(None)
                return
            except Exception as e:  # noqa: BLE001  a corrupt reply: the test fails on it
                self.replies.put(("corrupt", e))
                return

    def send(self, header, arrays=None):
        P.write_message(self.proc.stdin, header, arrays)

    def send_raw(self, data: bytes):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def recv(self, timeout=TIMEOUT):
        try:
            item = self.replies.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no reply from the server within {timeout} s") from None
        assert not (isinstance(item, tuple) and item[0] == "corrupt"), f"corrupt reply: {item[1]}"
        return item

    def hello(self):
        self.send(P.hello_request())
        header, _ = self.recv()
        assert header["type"] == "hello", header
        return header

    def until_final(self, timeout=TIMEOUT):
        """(progress headers, final header, arrays) of one request."""
        progress = []
        while True:
            item = self.recv(timeout)
            assert item is not None, "server closed during a request"
            header, arrays = item
            if header["type"] != "progress":
                return progress, header, arrays
            progress.append(header)

    def close(self, timeout=10.0) -> int:
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def server():
    s = ServerProcess()
    s.hello()
    yield s
    s.send({"type": "shutdown"})
    assert s.proc.wait(10) == 0


@pytest.fixture(scope="module")
def clips(data_root):
    content = read_bvh(bandai_clip(CONTENT))
    style = read_bvh(bandai_clip(STYLE))

    def f32(m):  # what goes over the wire
        return m.with_arrays(
            m.rotations.astype(np.float32).astype(np.float64), m.positions.astype(np.float32).astype(np.float64)
        )

    return RigMotion(rig_for_skeleton(content.skeleton), f32(content)), RigMotion(
        rig_for_skeleton(style.skeleton), f32(style)
    )


def _wire(rm: RigMotion, rotations=None):
    m = rm.motion
    return rm.rig.to_json(), m.fps, m.rotations if rotations is None else rotations, m.positions


def _angle(a, b):
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    d = quat_mul(quat_conj(a), b)
    return 2 * np.arctan2(np.linalg.norm(d[..., 1:], axis=-1), np.abs(d[..., 0]))


def test_handshake_reports_version_and_device(server):
    header = server.hello()
    assert header["version"] == P.PROTOCOL_VERSION
    assert header["device"] == "cpu" and header["stylizer"] == "statistics"
    assert header["pid"] == server.proc.pid


def test_stylize_over_the_protocol_equals_the_library(server, clips):
    content, style = clips
    weights = {"root": 0.5, "left_arm": 1.5}
    header, arrays = P.stylize_request("walk", _wire(content), _wire(style), weights=weights)
    server.send(header, arrays)
    progress, final, out = server.until_final()
    assert final["type"] == "result" and final["id"] == "walk", final
    steps = len(STAGES)
    stages = [p for p in progress if p["total"] == steps]  # the others: pieces within a stage (Job.part)
    assert [p["step"] for p in stages] == list(range(steps)) and [p["stage"] for p in stages] == list(STAGES)
    fractions = [p["step"] / p["total"] for p in progress]
    assert fractions == sorted(fractions) and len(progress) > steps  # rising, with the stylizer's steps
    expected = stylize_rig_motion(content, style, weights=weights)
    assert out["rotations"].shape == content.motion.rotations.shape and final["fps"] == content.motion.fps
    assert _angle(out["rotations"].astype(np.float64), expected.rotations).max() < 1e-5
    np.testing.assert_allclose(out["translations"], expected.positions, atol=1e-3)
    assert _angle(expected.rotations, content.motion.rotations).max() > 0.05  # it did restyle


def test_group_weight_zero_keeps_the_source_arm(server, clips):
    content, style = clips
    header, arrays = P.stylize_request(1, _wire(content), _wire(style), weights={"left_arm": 0.0})
    server.send(header, arrays)
    _, final, out = server.until_final()
    assert final["type"] == "result"
    arm = [content.rig.bone(JOINT_NAMES[j]) for j in GROUP_LOCAL_JOINTS["left_arm"]]
    got = out["rotations"][:, arm].astype(np.float64)
    assert _angle(got, content.motion.rotations[:, arm]).max() < 1e-5
    right = [content.rig.bone(JOINT_NAMES[j]) for j in GROUP_LOCAL_JOINTS["right_arm"]]
    assert _angle(out["rotations"][:, right].astype(np.float64), content.motion.rotations[:, right]).max() > 0.01


def test_per_group_reference_and_all_weights_zero(server, clips, data_root):
    content, style = clips
    other = read_bvh(bandai_clip("dataset-1_walk_chimpira_001.bvh"))
    other = RigMotion(rig_for_skeleton(other.skeleton), other)
    zero = {g: 0.0 for g in P.GROUPS}
    header, arrays = P.stylize_request(2, _wire(content), _wire(style), {"right_arm": _wire(other)}, zero)
    server.send(header, arrays)
    _, final, out = server.until_final()
    assert final["type"] == "result"
    np.testing.assert_array_equal(out["rotations"], content.motion.rotations.astype(np.float32))
    np.testing.assert_array_equal(out["translations"], content.motion.positions.astype(np.float32))
    header, arrays = P.stylize_request(3, _wire(content), _wire(style), {"right_arm": _wire(other)})
    server.send(header, arrays)
    _, final, out = server.until_final()
    expected = stylize_rig_motion(content, style, {"right_arm": other})
    assert _angle(out["rotations"].astype(np.float64), expected.rotations).max() < 1e-5


def test_cancel_stops_the_job_and_the_server_goes_on(server, clips):
    content, style = clips
    header, arrays = P.stylize_request("slow", _wire(content), _wire(style), options={"step_delay": 0.5})
    server.send(header, arrays)
    first, _ = server.recv()
    assert first["type"] == "progress" and first["step"] == 0
    server.send({"type": "cancel", "id": "slow"})
    progress, final, _ = server.until_final()
    assert final["type"] == "error" and final["kind"] == "cancelled" and final["id"] == "slow", final
    assert len(progress) < 4
    # a cancel without an id stops whatever runs
    header["id"] = "slow2"
    server.send(header, arrays)
    server.send({"type": "cancel"})
    _, final, _ = server.until_final()
    assert final["kind"] == "cancelled"
    header, arrays = P.stylize_request("after", _wire(content), _wire(style))
    server.send(header, arrays)
    assert server.until_final()[1]["type"] == "result"


def _bad_rig(rig_json: str) -> dict:
    rig = json.loads(rig_json)
    rig["mapping"]["Hand_L"] = "NoSuchBone"
    return rig


@pytest.mark.parametrize("case", ["wrong_joints", "unknown_bone", "bad_rig_json", "unknown_group_option"])
def test_bad_requests_get_errors_and_the_server_keeps_serving(server, clips, case):
    content, style = clips
    m = content.motion
    rig, fps, rot, tr = _wire(content)
    if case == "wrong_joints":
        rot, tr = rot[:, :20], tr[:, :20]
    elif case == "unknown_bone":
        rig = _bad_rig(rig)
    elif case == "bad_rig_json":
        rig = {"name": "x", "mapping": {}}
    options = {"max_ratio": 0.5} if case == "unknown_group_option" else {}
    header, arrays = P.stylize_request("bad", (rig, fps, rot, tr), _wire(style), options=options)
    server.send(header, arrays)
    _, final, _ = server.until_final()
    assert final["type"] == "error" and final["kind"] == "bad_request", final
    assert final["id"] == "bad" and final["message"] and final["traceback"]
    if case == "unknown_bone":
        assert "NoSuchBone" in final["message"]
    assert m.num_frames and server.hello()["version"] == P.PROTOCOL_VERSION


@pytest.mark.parametrize("value", ["big", [2], None])
def test_a_stylizer_option_of_the_wrong_type_is_a_bad_request(server, clips, value):
    content, style = clips
    server.send(*P.stylize_request("option", _wire(content), _wire(style), options={"max_ratio": value}))
    _, final, _ = server.until_final()
    assert final["kind"] == "bad_request" and "option max_ratio must be a number >= 1" in final["message"], final


def test_nan_and_malformed_frames_in_sync_get_protocol_errors(server, clips):
    content, style = clips
    header, arrays = P.stylize_request("nan", _wire(content), _wire(style))
    arrays = {k: np.asarray(v, np.float32).copy() for k, v in arrays.items()}
    arrays["content.rotations"][3, 2, 1] = np.nan
    buf = io.BytesIO()
    P.write_message(buf, header, {k: np.nan_to_num(v, nan=7.0) for k, v in arrays.items()})
    raw = buf.getvalue()
    # patch the value back to NaN in the raw payload (the writer refuses to send NaN)
    nan_frame = raw.replace(np.float32(7.0).tobytes(), np.float32(np.nan).tobytes())
    server.send_raw(nan_frame)
    reply, _ = server.recv()
    assert reply["type"] == "error" and reply["kind"] == "protocol" and "NaN" in reply["message"]
    server.send_raw(struct_frame({"type": "stylize", "id": 1, "arrays": [], "nbytes": 0}))
    reply, _ = server.recv()
    assert reply["kind"] == "protocol" and "motions" in reply["message"]
    server.send_raw(struct_frame({"type": "launch", "arrays": [], "nbytes": 0}))
    assert "unknown message type" in server.recv()[0]["message"]
    assert server.hello()["type"] == "hello"


def struct_frame(header: dict, payload: bytes = b"") -> bytes:
    raw = json.dumps(header).encode()
    return len(raw).to_bytes(4, "little") + raw + payload


def test_requests_before_hello_are_refused():
    s = ServerProcess()
    s.send_raw(struct_frame({"type": "cancel", "arrays": [], "nbytes": 0}))
    header, arrays = P.stylize_request(
        5,
        (json.dumps({}), 30.0, np.ones((1, 1, 4)), np.zeros((1, 1, 3))),
        (json.dumps({}), 30.0, np.ones((1, 1, 4)), np.zeros((1, 1, 3))),
    )
    s.send(header, arrays)
    reply, _ = s.recv()
    assert reply["kind"] == "handshake" and "hello" in reply["message"]
    s.hello()
    s.send({"type": "shutdown"})
    assert s.proc.wait(10) == 0


def test_version_mismatch_is_a_clear_error():
    s = ServerProcess()
    s.send(P.hello_request(version=P.PROTOCOL_VERSION + 98))
    reply, _ = s.recv()
    assert reply["type"] == "error" and reply["kind"] == "version"
    assert str(P.PROTOCOL_VERSION + 98) in reply["message"] and str(P.PROTOCOL_VERSION) in reply["message"]
    assert s.recv() is None
    assert s.proc.wait(10) == 3


def test_shutdown_and_end_of_input_exit_zero():
    s = ServerProcess()
    s.hello()
    s.send({"type": "shutdown"})
    assert s.recv() is None and s.proc.wait(10) == 0
    s = ServerProcess()
    s.hello()
    assert s.close() == 0


def test_stray_prints_never_reach_the_protocol(tmp_path):
    """Anything written to fd 1 or sys.stdout inside the server lands in the log, not the pipe."""
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115  closed below
    code = (
        "import os, sys, runpy; sys.argv=['core.server','--device','cpu','--stylizer','statistics'];"
        "import core.server as s; real=s._protect_stdout;"
        "s._protect_stdout=lambda: (lambda o: (print('garbage'), os.write(1, b'more garbage'), o)[2])(real());"
        "sys.exit(s.main())"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, cwd=REPO_ROOT
    )
    P.write_message(proc.stdin, P.hello_request())
    header, _ = P.read_message(proc.stdout)
    assert header["type"] == "hello"
    P.write_message(proc.stdin, {"type": "shutdown"})
    assert proc.wait(10) == 0
    log.close()
    text = (tmp_path / "server.log").read_text()
    assert "garbage" in text and "more garbage" in text


# --- fuzzing a live server ----------------------------------------------------------------------


def _predict_wait(data: bytes) -> bool:
    """Whether the server, given these bytes and an open stdin, would sit waiting for more."""
    stream = io.BytesIO(data)
    while True:
        try:
            P.read_message(stream, types=P.REQUEST_TYPES)
        except P.Closed:
            return False
        except P.ProtocolError as e:
            if "truncated" in str(e):
                return True
            if not e.in_sync:
                return False


def _in_sync_frames(count: int, seed: int) -> list[bytes]:
    """Whole frames with bad content: random types and fields, stylize requests with NaN, shapes
    that disagree with the rig, broken rigs, unknown groups, bad weights and options."""
    from core.retarget.presets import canonical_rig

    rng = np.random.default_rng(seed)
    rig = json.loads(canonical_rig().to_json())
    out = []
    for _ in range(count):
        kind = rng.integers(0, 3)
        if kind == 0:
            header = {"type": str(rng.choice(list(P.MESSAGE_TYPES) + ["zz", ""])), "arrays": [], "nbytes": 0}
            for key in rng.choice(
                ["id", "version", "step", "total", "kind", "motions", "fps"], size=rng.integers(0, 4)
            ):
                header[str(key)] = [1, "x", None, 2.5, -1, [], {}, P.PROTOCOL_VERSION][int(rng.integers(8))]
            if header["type"] == "hello" and header.get("version") != P.PROTOCOL_VERSION:
                header["version"] = P.PROTOCOL_VERSION  # a mismatch ends the session by design
            out.append(struct_frame(header))
            continue
        frames, joints = int(rng.integers(1, 4)), 22
        motion_rig = json.loads(json.dumps(rig))
        if rng.random() < 0.3:
            motion_rig["mapping"]["Hand_L"] = "Missing"
        if rng.random() < 0.2:
            motion_rig["skeleton"]["parents"] = [5] * 22
        if rng.random() < 0.3:
            joints = int(rng.integers(1, 30))
        rot = rng.normal(size=(frames, joints, 4)).astype(np.float32)
        tr = rng.normal(size=(frames, joints, 3)).astype(np.float32)
        if rng.random() < 0.3:
            rot[0, 0, int(rng.integers(4))] = [np.nan, np.inf, -np.inf][int(rng.integers(3))]
        weights = {str(rng.choice(list(P.GROUPS) + ["tail"])): float(rng.normal())}
        header = {
            "type": "stylize",
            "id": int(rng.integers(100)),
            "weights": weights,
            "options": {"max_ratio": float(rng.normal())},
            "motions": {
                k: {"rig": motion_rig, "fps": float(rng.choice([30.0, 0.0, 24.0]))} for k in ("content", "reference")
            },
        }
        arrays = {
            "content.rotations": rot,
            "content.translations": tr,
            "reference.rotations": rot,
            "reference.translations": tr,
        }
        header["arrays"] = [{"name": k, "shape": list(v.shape)} for k, v in arrays.items()]
        header["nbytes"] = sum(v.nbytes for v in arrays.values())
        out.append(struct_frame(header, b"".join(v.tobytes() for v in arrays.values())))
    return out


def test_fuzz_live_server_answers_or_closes_cleanly():
    """1,000 frames: a quarter random / truncated / oversized / bit-flipped (most of which lose the
    stream position, so the server answers and exits, and is restarted), the rest whole frames with
    bad content (answered with an error while the session goes on)."""
    from test_protocol import fuzz_frames

    n = int(os.environ.get("FUZZ_N", "1000"))
    rng = np.random.default_rng(7)
    frames = fuzz_frames(n // 4, seed=99) + _in_sync_frames(n - n // 4, seed=98)
    frames = [frames[i] for i in rng.permutation(len(frames))]
    spare = ServerProcess()
    s, restarts, errors = None, 0, 0
    start = time.perf_counter()
    pids = []
    for i, frame in enumerate(frames):
        if s is None:
            s, spare = spare, ServerProcess()  # a spare starts while this one works
            pids.append(s.proc.pid)
            s.hello()
        buf = io.BytesIO()
        P.write_message(buf, P.hello_request(id=f"probe-{i}"))
        probe_bytes = buf.getvalue()
        wait = _predict_wait(frame + probe_bytes)
        try:
            s.send_raw(frame + probe_bytes)
            if wait:  # it waits for the rest of a frame: the client gives up and closes
                s.proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        closed = False
        while True:
            item = s.recv(timeout=10.0)
            if item is None:
                closed = True
                break
            header, _ = item
            assert header["type"] in ("error", "hello", "progress", "result"), header
            errors += header["type"] == "error"
            if header["type"] == "hello" and header.get("id") == f"probe-{i}":
                break
        if closed:
            code = s.proc.wait(10)
            assert code in (0, 2, 3), (i, code)
            s.close()
            s, restarts = None, restarts + 1
    for proc in (s, spare):
        if proc is not None:
            assert proc.close() == 0
    assert restarts > n // 10 and errors > n // 2, (restarts, errors)
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}")
    print(
        f"fuzz: {len(frames)} frames, {errors} error replies, {restarts} restarts, {time.perf_counter() - start:.1f} s"
    )


# --- kill / restart -----------------------------------------------------------------------------


def _children_running_server() -> list[int]:
    me = str(os.getpid())
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        ppid = stat.rsplit(")", 1)[1].split()[1]
        if ppid == me and b"core.server" in cmd:
            found.append(int(entry))
    return found


def test_kill_restart_cycles_leave_no_stray_processes(clips):
    before = set(_children_running_server())  # the module's shared server
    content, style = clips
    header, arrays = P.stylize_request("k", _wire(content), _wire(style), options={"step_delay": 5})
    pids = []
    for cycle in range(20):
        s = ServerProcess()
        pids.append(s.proc.pid)
        s.hello()
        s.send(header, arrays)
        assert s.recv()[0]["type"] == "progress"  # killed mid-request
        s.proc.send_signal(signal.SIGKILL if cycle % 2 else signal.SIGTERM)
        assert s.proc.wait(10) != 0
        assert s.recv() is None
        s.proc.stdin.close()
        s.proc.stdout.close()
    assert set(_children_running_server()) == before
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}"), pid
    s = ServerProcess()  # and the next one works
    s.hello()
    assert s.close() == 0


# --- timings and the command line ---------------------------------------------------------------


def test_cold_start_and_warm_latency(clips, data_root):
    start = time.perf_counter()
    s = ServerProcess()
    s.hello()
    cold = time.perf_counter() - start
    content, style = clips
    m = content.motion
    frames = np.arange(300) % m.num_frames  # a 300-frame clip
    rm = RigMotion(content.rig, m.with_arrays(m.rotations[frames], m.positions[frames]))
    header, arrays = P.stylize_request(0, _wire(rm), _wire(style))
    times = []
    for _ in range(5):
        t = time.perf_counter()
        s.send(header, arrays)
        assert s.until_final()[1]["type"] == "result"
        times.append(time.perf_counter() - t)
    assert s.close() == 0
    warm = float(np.median(times))
    print(f"cold start to hello {cold:.3f} s; warm stylize of 300 frames {warm * 1000:.0f} ms (median of 5)")
    assert cold < 5.0 and warm < 2.0


def test_command_line_stylize(tmp_path, data_root):
    out = tmp_path / "out.bvh"
    cmd = [
        sys.executable,
        "-m",
        "core",
        "stylize",
        str(bandai_clip(CONTENT)),
        str(bandai_clip(STYLE)),
        "-o",
        str(out),
        "--weights",
        "root=0,left_arm=0.5",
        "--group-reference",
        f"right_arm={bandai_clip('dataset-1_walk_chimpira_001.bvh')}",
    ]
    run = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    written, content = read_bvh(out), read_bvh(bandai_clip(CONTENT))
    assert written.skeleton.names == content.skeleton.names
    assert written.num_frames == content.num_frames and written.fps == pytest.approx(content.fps)


def test_command_line_errors_are_clear(tmp_path, data_root):
    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "core", "stylize", *map(str, args)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    broken = tmp_path / "broken.bvh"
    broken.write_text("HIERARCHY\nROOT Hips\n{\n  OFFSET 0 0\n")
    r = run(broken, bandai_clip(STYLE), "-o", tmp_path / "o.bvh")
    assert r.returncode == 2 and "broken.bvh:4" in r.stderr and "Traceback" not in r.stderr
    odd = tmp_path / "odd.bvh"
    odd.write_text(
        "HIERARCHY\nROOT Thing\n{\n  OFFSET 0 0 0\n  CHANNELS 3 Zrotation Xrotation Yrotation\n"
        "  End Site\n  {\n    OFFSET 0 1 0\n  }\n}\nMOTION\nFrames: 1\nFrame Time: 0.033333\n0 0 0\n"
    )
    r = run(odd, bandai_clip(STYLE), "-o", tmp_path / "o.bvh")
    assert r.returncode == 2 and "unknown rig" in r.stderr and "required canonical joints" in r.stderr
    r = run(bandai_clip(CONTENT), bandai_clip(STYLE), "-o", tmp_path / "o.bvh", "--weights", "tail=1")
    assert r.returncode == 2 and "unknown body group 'tail'" in r.stderr


def test_command_line_default_model_and_flags_fill_the_options(tmp_path, data_root, monkeypatch, capsys):
    """With no --config/--stylizer the shipped model config (weights/stylizer.json beside the core
    package) is loaded; --steps/--seed/--no-cleanup/--contact-height/--contact-speed fill the options
    dict (and win over --option)."""
    import core.__main__ as cli
    import core.runtime
    import core.stylize.loading

    assert cli.SHIPPED_CONFIG == core.stylize.loading.SHIPPED_CONFIG == REPO_ROOT / "weights" / "stylizer.json"
    calls = {}
    monkeypatch.setattr(
        core.stylize.loading, "load_stylizer", lambda path: calls.setdefault("config", path) and "model"
    )

    def fake(content, reference, groups, weights, options, stylizer):
        calls.update(options=options, stylizer=stylizer)
        return content.motion

    monkeypatch.setattr(core.runtime, "stylize_rig_motion", fake)
    clips = [str(bandai_clip(CONTENT)), str(bandai_clip(STYLE)), "-o", str(tmp_path / "o.bvh")]
    assert cli.main(["stylize", *clips]) == 0
    assert calls == {"config": cli.SHIPPED_CONFIG, "options": {}, "stylizer": "model"}
    calls.clear()
    flags = ["--steps", "7", "--seed", "11", "--no-cleanup", "--contact-height", "4.5", "--contact-speed", "20"]
    assert cli.main(["stylize", *clips, *flags, "--option", "seed=1,keep_path=false,max_ratio=3"]) == 0
    assert calls["options"] == {
        "steps": 7,
        "seed": 11,
        "foot_cleanup": False,
        "contact_height": 4.5,
        "contact_speed": 20.0,
        "keep_path": False,
        "max_ratio": 3.0,
    }
    calls.clear()
    assert cli.main(["stylize", *clips, "--stylizer", "identity", "--steps", "2"]) == 0
    assert calls == {"options": {"steps": 2}, "stylizer": "identity"}
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        cli.main(["stylize", *clips, "--steps", "many"])
    assert e.value.code == 2 and "--steps: invalid int value" in capsys.readouterr().err


def test_command_line_runs_a_diffusion_config_with_the_flags(tmp_path, data_root, capsys):
    """The real pipeline with a tiny diffusion model: --seed makes it repeatable and changes the
    sample, --no-cleanup turns the contact cleanup off, bad values exit 2 with a clear message."""
    import core.__main__ as cli

    config = tiny_diffusion_config(tmp_path, steps=4)
    content = bandai_clip(CONTENT)

    def run(name, *flags):
        out = tmp_path / f"{name}.bvh"
        code = cli.main(
            ["stylize", str(content), str(bandai_clip(STYLE)), "-o", str(out), "--config", str(config), *flags]
        )
        return code, (read_bvh(out) if code == 0 else capsys.readouterr().err)

    base = ("--steps", "2", "--contact-height", "6", "--contact-speed", "30")
    results = {
        name: run(name, *base, *flags)
        for name, flags in (
            ("a", ("--seed", "5")),
            ("again", ("--seed", "5")),
            ("b", ("--seed", "6")),
            ("raw", ("--seed", "5", "--no-cleanup")),
        )
    }
    assert all(code == 0 for code, _ in results.values())
    a = results["a"][1]
    assert a.skeleton.names == read_bvh(content).skeleton.names and a.num_frames == read_bvh(content).num_frames
    np.testing.assert_array_equal(results["again"][1].rotations, a.rotations)
    assert not np.array_equal(results["b"][1].rotations, a.rotations)
    assert not np.array_equal(results["raw"][1].rotations, a.rotations)  # the cleanup moved the legs
    code, err = run("bad", "--steps", "0")
    assert code == 2 and "option steps must be an integer in [1, 20], got 0" in err
    code, err = run("bad", "--contact-speed", "-1")
    assert code == 2 and "option contact_speed must be a positive number" in err


def test_server_runs_a_diffusion_config(tmp_path, clips):
    """A server on a diffusion model config answers a stylize request with the library's result
    (the model lives on the server's device from load time; requests carry only sampling options)."""
    config = tiny_diffusion_config(tmp_path, steps=4)
    s = ServerProcess("--config", str(config))
    assert s.hello()["stylizer"] == "diffusion"
    content, style = clips
    s.send(*P.stylize_request(0, _wire(content), _wire(style), options={"steps": 2}))
    _, header, arrays = s.until_final(timeout=120)
    assert header["type"] == "result", header
    s.send({"type": "shutdown"})
    assert s.proc.wait(10) == 0
    from core.stylize.loading import load_stylizer

    expected = stylize_rig_motion(content, style, options={"steps": 2}, stylizer=load_stylizer(config))
    np.testing.assert_allclose(arrays["rotations"], expected.rotations, atol=1e-4)


def test_other_rig_at_another_frame_rate(server, clips):
    """A Mixamo-rig clip at 24 fps: the reply is on the Mixamo skeleton with its frame rate and
    frame count, equals the library, and weight-0 and unmapped bones keep the content exactly."""
    from core.ops.resample import resample
    from core.retarget.presets import bundled_rig
    from core.retarget.retarget import retarget

    content, style = clips
    mixamo = bundled_rig("mixamo")
    moved = resample(retarget(content.motion, content.rig, mixamo), 24.0)
    moved = moved.with_arrays(moved.rotations.astype(np.float32), moved.positions.astype(np.float32))
    source = RigMotion(
        mixamo, moved.with_arrays(moved.rotations.astype(np.float64), moved.positions.astype(np.float64))
    )
    weights = {"left_arm": 0.0, "right_leg": 1.5}
    header, arrays = P.stylize_request("mixamo", _wire(source), _wire(style), weights=weights)
    server.send(header, arrays)
    _, final, out = server.until_final()
    assert final["type"] == "result", final
    assert out["rotations"].shape == source.motion.rotations.shape and final["fps"] == 24.0
    expected = stylize_rig_motion(source, style, weights=weights)
    assert _angle(out["rotations"].astype(np.float64), expected.rotations).max() < 1e-5
    mapped = set(mixamo.mapping.values())
    arm = {mixamo.mapping[JOINT_NAMES[j]] for j in GROUP_LOCAL_JOINTS["left_arm"] if JOINT_NAMES[j] in mixamo.mapping}
    kept = [i for i, n in enumerate(mixamo.skeleton.names) if n not in mapped or n in arm]
    assert len(kept) > len(arm)  # the rig has unmapped bones (fingers, twist, end bones)
    np.testing.assert_array_equal(out["rotations"][:, kept], moved.rotations[:, kept])
    driven = [mixamo.bone(j) for j in ("UpperLeg_R", "LowerLeg_R")]
    assert _angle(out["rotations"][:, driven].astype(np.float64), source.motion.rotations[:, driven]).max() > 0.01


# --- fuzzing core.server.Server on real OS pipes, in process -----------------------------------


def _ends_session(data: bytes) -> bool:
    """Whether these bytes, followed by the end of input, end a session before it is over: a frame
    that loses the stream position, a shutdown, a hello of another version, or a cut frame."""
    stream = io.BytesIO(data)
    while True:
        try:
            header, _ = P.read_message(stream, types=P.REQUEST_TYPES)
        except P.Closed:
            return False
        except P.ProtocolError as e:
            if not e.in_sync:
                return True
            continue
        if header["type"] == "shutdown" or (header["type"] == "hello" and header["version"] != P.PROTOCOL_VERSION):
            return True


class PipeSession:
    """A core.server.Server serving in a thread on two os.pipe()s, as the real process does on its
    stdin/stdout; the test is the client on the other ends."""

    def __init__(self, log, stylizer="statistics"):
        from core.server import Server

        in_r, self.in_w = os.pipe()
        out_r, out_w = os.pipe()
        self.instream, self.outstream = os.fdopen(in_r, "rb"), os.fdopen(out_w, "wb")
        self.replies_in = os.fdopen(out_r, "rb")
        self.server = Server(self.instream, self.outstream, stylizer, "cpu", log)
        self.code = None
        self.replies: queue.Queue = queue.Queue()
        self.threads = [
            threading.Thread(target=self._serve, name="fuzz-serve", daemon=True),
            threading.Thread(target=self._read, name="fuzz-replies", daemon=True),
        ]
        for t in self.threads:
            t.start()

    def _serve(self):
        try:
            self.code = self.server.serve()
        finally:
            self.outstream.close()  # the process exits: its stdout closes

    def _read(self):
        while True:
            try:
                self.replies.put(P.read_message(self.replies_in, types=P.REPLY_TYPES))
            except P.Closed:
                self.replies.put(None)
                return
            except Exception as e:  # noqa: BLE001  a reply that is not a valid frame: the test fails on it
                self.replies.put(("corrupt", e))
                return

    def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.in_w, view) :]

    def close_input(self) -> None:
        if self.in_w is not None:
            os.close(self.in_w)
            self.in_w = None

    def recv(self, deadline: float):
        try:
            item = self.replies.get(timeout=max(deadline - time.monotonic(), 0.0))
        except queue.Empty:
            raise AssertionError("no reply and no close within the per-frame timeout") from None
        assert not (isinstance(item, tuple) and item[0] == "corrupt"), f"corrupt reply: {item[1]}"
        return item

    def finish(self, deadline: float) -> None:
        """Close the client's end, and check that every thread of the session has ended in time."""
        self.close_input()
        threads = self.threads + [self.server.reader_thread]
        for t in threads:
            t.join(max(deadline - time.monotonic(), 0.0))
        alive = [t.name for t in threads if t.is_alive()]
        assert not alive, f"threads still running: {alive}"
        self.instream.close()
        self.replies_in.close()


class _BuggyStylizer:
    """A stylizer with a bug: it reads a table it never filled (a KeyError inside stylize)."""

    name = "buggy"

    def __init__(self):
        self.tables = {}

    def stylize(self, request):
        return self.tables["walk"]


def test_a_stylizer_bug_is_internal_and_a_bad_rig_is_bad_request(clips):
    """In one session: a KeyError raised inside the stylizer is answered as ``internal``, with the
    stylizer's name, its traceback and a log record, not blamed on the request; a bad rig is a
    ``bad_request``; the server answers the next message after each."""
    import logging

    records = []
    log = logging.getLogger("buggy-server")
    log.propagate, log.level = False, logging.INFO
    handler = logging.Handler()
    handler.emit = records.append
    log.addHandler(handler)
    session = PipeSession(log, _BuggyStylizer())
    content, style = clips
    rig, fps, rot, tr = _wire(content)

    def final_reply(header, arrays=None):
        session.send(_frame_bytes(header, arrays))
        while True:
            reply, _ = session.recv(time.monotonic() + TIMEOUT)
            if reply["type"] != "progress":
                return reply

    try:
        assert final_reply(P.hello_request())["type"] == "hello"
        bug = final_reply(*P.stylize_request("bug", _wire(content), _wire(style)))
        assert bug["type"] == "error" and bug["kind"] == "internal" and bug["id"] == "bug", bug
        assert "'buggy'" in bug["message"] and "KeyError" in bug["message"]
        assert "in stylize" in bug["traceback"] and 'self.tables["walk"]' in bug["traceback"]
        assert any(r.levelno == logging.ERROR and r.exc_info and "'bug'" in r.getMessage() for r in records)
        assert final_reply(P.hello_request(id="after-bug"))["id"] == "after-bug"
        bad = final_reply(*P.stylize_request("rig", (_bad_rig(rig), fps, rot, tr), _wire(style)))
        assert bad["type"] == "error" and bad["kind"] == "bad_request" and "NoSuchBone" in bad["message"], bad
        for options in ({"step_delay": "slow"}, {"contact_speed": -1}, {"foot_cleanup": "yes"}):
            reply = final_reply(*P.stylize_request("options", _wire(content), _wire(style), options=options))
            assert reply["kind"] == "bad_request" and next(iter(options)) in reply["message"], reply
        assert final_reply(P.hello_request(id="after-bad"))["id"] == "after-bad"
        session.send(_frame_bytes({"type": "shutdown"}))
        assert session.recv(time.monotonic() + TIMEOUT) is None
    finally:
        session.finish(time.monotonic() + TIMEOUT)
        log.removeHandler(handler)
    assert session.code == 0


def test_fuzz_server_on_pipes_answers_or_closes_cleanly_10k_frames():
    """≥ 10,000 fuzz frames through the real Server code on real OS pipes: random, truncated,
    oversized and bit-flipped frames (test_protocol.fuzz_frames) and whole frames with bad content
    (_in_sync_frames). A frame that ends the session goes to a fresh Server: the client sends it
    and a probe hello, then closes its end; serve() must return a documented exit status, after an
    error reply when it is a protocol or version failure. The others go to one long-lived session:
    each is followed by a probe hello that must be answered. Every reply must be a valid reply
    frame, every frame must be settled within PER_FRAME s, and no thread may be left running."""
    # Server, its reader and this test's reply reader share one interpreter here (unlike the real
    # server process): hand the GIL over sooner than the default 5 ms, or every reply waits for it.
    switch = sys.getswitchinterval()
    sys.setswitchinterval(0.0002)
    try:
        _fuzz_server_on_pipes()
    finally:
        sys.setswitchinterval(switch)


def _fuzz_server_on_pipes():
    import logging

    from test_protocol import fuzz_frames

    from core.server import EXIT_STATUSES

    per_frame = 5.0
    log = logging.getLogger("fuzz-server")
    log.propagate, log.level = False, logging.CRITICAL
    n = int(os.environ.get("FUZZ_PIPE_N", "10000"))
    rng = np.random.default_rng(11)
    frames = fuzz_frames(n * 7 // 10, seed=2024, extend_runnable=False) + _in_sync_frames(n - n * 7 // 10, seed=2025)
    frames = [frames[i] for i in rng.permutation(len(frames))]
    threads_before = set(threading.enumerate())
    counts = {"frames": 0, "error replies": 0, "clean closes": 0, "probes answered": 0, "pipeline runs": 0}
    kinds: dict[str, int] = {}
    codes: dict[int, int] = {}
    worst = 0.0
    start = time.perf_counter()
    long_lived = PipeSession(log)
    assert long_lived.send(_frame_bytes(P.hello_request())) is None
    assert long_lived.recv(time.monotonic() + per_frame)[0]["type"] == "hello"
    for i, frame in enumerate(frames):
        t0 = time.monotonic()
        deadline = t0 + per_frame
        probe = _frame_bytes(P.hello_request(id=f"probe-{i}"))
        ends = _ends_session(frame + probe)
        s = PipeSession(log) if ends else long_lived
        if ends:
            s.send(_frame_bytes(P.hello_request()))
        try:
            s.send(frame + probe)
        except BrokenPipeError:
            pass  # the server already answered and closed its end (a real client sees the same)
        if ends:
            s.close_input()  # the client is done: it closes, as one does after a garbled frame
        replies = []
        while True:
            item = s.recv(deadline)
            if item is None:
                break
            header, _ = item
            assert header["type"] in P.REPLY_TYPES, header
            replies.append(header)
            if header["type"] == "hello" and header.get("id") == f"probe-{i}":
                break
        errors = [h for h in replies if h["type"] == "error"]
        counts["pipeline runs"] += any(h["type"] == "progress" for h in replies)
        counts["error replies"] += len(errors)
        for h in errors:
            kinds[h["kind"]] = kinds.get(h["kind"], 0) + 1
        if ends:
            s.finish(deadline)
            assert s.code in EXIT_STATUSES, (i, s.code)
            codes[s.code] = codes.get(s.code, 0) + 1
            if s.code == 2:
                assert errors and errors[-1]["kind"] == "protocol", (i, replies)
            if s.code == 3:
                assert errors and errors[-1]["kind"] == "version", (i, replies)
            counts["clean closes"] += 1
            counts["probes answered"] += any(h.get("id") == f"probe-{i}" for h in replies)
        else:
            assert replies and replies[-1].get("id") == f"probe-{i}", (i, replies)  # the session goes on
            counts["probes answered"] += 1
        counts["frames"] += 1
        worst = max(worst, time.monotonic() - t0)
    long_lived.send(_frame_bytes({"type": "shutdown"}))
    assert long_lived.recv(time.monotonic() + per_frame) is None
    long_lived.finish(time.monotonic() + per_frame)
    assert long_lived.code == 0
    leftover = [t.name for t in set(threading.enumerate()) - threads_before if t.is_alive()]
    assert not leftover, leftover
    elapsed = time.perf_counter() - start
    assert counts["frames"] >= 10_000 or n < 10_000
    assert counts["clean closes"] > n // 10 and counts["error replies"] > n // 2, counts
    print(
        f"\nfuzz on pipes: {counts['frames']} frames, {counts['error replies']} error replies {kinds}, "
        f"{counts['clean closes']} clean closes (exit statuses {codes}), {counts['probes answered']} probes "
        f"answered, {counts['pipeline runs']} stylize pipeline runs, max {worst:.3f} s per frame, "
        f"{elapsed:.1f} s in all"
    )


def _frame_bytes(header: dict, arrays=None) -> bytes:
    buf = io.BytesIO()
    P.write_message(buf, header, arrays)
    return buf.getvalue()
