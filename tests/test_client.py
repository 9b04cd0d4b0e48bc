"""The add-on's server client and job object (blender_addon/client.py, job.py) against real
``python -m core.server`` subprocesses and real Bandai clips; the fault tests of issue 5. The
"garbage" and "version" runtimes are tiny real programs launched in place of the server."""

from __future__ import annotations

import os
import signal
import statistics
import sys
import textwrap
import time

import numpy as np
import pytest
from conftest import REPO_ROOT, bandai_clip

sys.path.insert(0, str(REPO_ROOT / "blender_addon"))  # client/job as plain modules (no bpy package)
import client as C
import job as J

from core import protocol as P
from core.io.bvh import read_bvh
from core.ops.rotations import quat_conj, quat_mul
from core.retarget.matching import rig_for_skeleton
from core.runtime import RigMotion, stylize_rig_motion

CONTENT = "dataset-1_walk-back_not-confident_001.bvh"  # 364 frames, cut to 300
STYLE = "dataset-1_walk_angry_001.bvh"
SERVER_ARGS = ("--device", "cpu", "--log-level", "INFO", "--stylizer", "statistics")  # fast; the library's default


def _rig_motion(name, frames=None):
    m = read_bvh(bandai_clip(name))
    rot, pos = m.rotations[:frames], m.positions[:frames]
    # what goes over the wire is float32
    rot, pos = rot.astype(np.float32).astype(np.float64), pos.astype(np.float32).astype(np.float64)
    return RigMotion.from_arrays(rig_for_skeleton(m.skeleton), rot, pos, m.fps)


def _wire(rm: RigMotion):
    return rm.rig.to_json(), rm.motion.fps, rm.motion.rotations, rm.motion.positions


def _angle(a, b):
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    d = quat_mul(quat_conj(a), b)
    return 2 * np.arctan2(np.linalg.norm(d[..., 1:], axis=-1), np.abs(d[..., 0]))


def _gone(pid) -> bool:
    """True when no process (not even an unreaped zombie) has this pid."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _wait_dead(pid, timeout=5.0):
    """Until the process has exited (a zombie awaiting its reaper counts as dead)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            return
        if stat[stat.rindex(")") + 2] in "ZX":
            return
        time.sleep(0.001)
    raise AssertionError(f"process {pid} still alive {timeout} s after the signal")


def _server_children() -> list[int]:
    """pids of live child processes of this test process (from /proc)."""
    me, out = os.getpid(), []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == me:
            out.append(int(d))
    return out


@pytest.fixture(scope="module")
def clips(data_root):
    return _rig_motion(CONTENT, 300), _rig_motion(STYLE)


def _request(clips, rid=None, **options):
    content, style = clips
    return P.stylize_request(rid, _wire(content), _wire(style), weights={"left_arm": 1.5}, options=options)


def _client(tmp_path, **kw):
    return C.ServerClient(sys.executable, SERVER_ARGS, log_path=tmp_path / "server.log", core_dir=REPO_ROOT, **kw)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    c = _client(tmp_path_factory.mktemp("client"), timeout=30.0)
    c.start()
    yield c
    c.stop()


def _run(client, request) -> J.StylizeJob:
    job = J.StylizeJob()
    job.start(client, request)
    job.wait(0.005, timeout=60)
    return job


def test_stylize_through_client_and_job_equals_the_library(client, clips):
    content, style = clips
    job = J.StylizeJob()
    assert job.state == J.PENDING
    job.start(client, _request(clips, "walk"))
    seen = [(job.progress, job.state)]
    while job.update() == J.RUNNING:
        seen.append((job.progress, job.state))
        time.sleep(0.001)
    assert job.state == J.DONE, job.describe_error()
    progress = [p for p, _ in seen] + [job.progress]
    assert progress[0] == 0.0 and progress[-1] == 1.0 and progress == sorted(progress)
    expected = stylize_rig_motion(content, style, weights={"left_arm": 1.5})
    rot, tr = job.result["rotations"], job.result["translations"]
    assert rot.shape == (300, 22, 4) and job.result["fps"] == content.motion.fps
    assert _angle(rot.astype(np.float64), expected.rotations).max() < 1e-5
    np.testing.assert_allclose(tr, expected.positions, rtol=1e-5, atol=1e-4)
    assert np.abs(rot - expected.rotations.astype(np.float32)).max() < 1e-5
    assert _angle(expected.rotations, content.motion.rotations).max() > 0.05  # it did restyle
    # warm end-to-end latency of a 300-frame clip through client + job
    times = []
    for i in range(5):
        t = time.perf_counter()
        j = _run(client, _request(clips))
        times.append(time.perf_counter() - t)
        assert j.state == J.DONE
    print(f"\nwarm end-to-end stylize, 300 frames, through client+job: median {statistics.median(times) * 1e3:.0f} ms")


def test_cancel_mid_request_then_next_request_works(client, clips):
    job = J.StylizeJob()
    job.start(client, _request(clips, "slow", step_delay=0.5))
    while job.update() == J.RUNNING and job.progress == 0.0 and not job.stage:
        time.sleep(0.01)
    pid = client.pid
    assert job.cancel() == J.RUNNING
    assert job.wait(0.01, timeout=10) == J.CANCELLED
    assert job.error["kind"] == "cancelled" and job.result is None and job.progress < 1.0
    after = _run(client, _request(clips, "after"))
    assert after.state == J.DONE and client.pid == pid  # same server, no restart


def _drive(driver, esc_at=None, limit=60.0):
    """Tick a ModalDriver as the operator's timer does; press "Esc" at the first tick whose state
    is ``esc_at``. Returns the states seen, in order, without repeats."""
    states, end = [], time.monotonic() + limit
    while time.monotonic() < end:
        state = driver.tick()
        if not states or states[-1] != state:
            states.append(state)
        if state == esc_at and not driver.cancel_wanted:
            driver.cancel()
        if state in J.FINISHED:
            return states
        time.sleep(0.005)
    raise AssertionError(f"the modal driver did not finish in {limit} s: {states}")


def test_modal_driver_cold_start_progress_and_result(tmp_path, clips):
    """The modal operator's path: the launch (a cold start) runs off the UI thread, each tick
    returns at once, and the result equals the blocking path's."""
    client = _client(tmp_path, timeout=30.0)
    try:
        driver = J.ModalDriver(J.StylizeJob(), client, _request(clips, "modal"))
        t0 = time.perf_counter()
        first = driver.tick()
        assert time.perf_counter() - t0 < 0.05  # the tick never waits for the launch
        assert first == J.ModalDriver.STARTING  # the server is still starting in the thread
        states = _drive(driver)
        assert states[-1] == J.DONE and J.RUNNING in states, states
        blocking = _run(client, _request(clips, "blocking"))
        np.testing.assert_array_equal(driver.job.result["rotations"], blocking.result["rotations"])
    finally:
        client.stop()


@pytest.mark.parametrize("esc_at", [J.ModalDriver.STARTING, J.RUNNING])
def test_modal_driver_escape_while_starting_or_running_cancels(tmp_path, clips, esc_at):
    client = _client(tmp_path, timeout=30.0)
    try:
        driver = J.ModalDriver(J.StylizeJob(), client, _request(clips, "esc", step_delay=0.5))
        states = _drive(driver, esc_at=esc_at)
        assert states[-1] == J.CANCELLED and driver.job.error["kind"] == "cancelled", states
        assert driver.job.result is None
        assert _run(client, _request(clips, "after")).state == J.DONE  # the same server goes on
    finally:
        client.stop()


def test_modal_driver_reports_a_launch_failure(tmp_path, clips):
    client = C.ServerClient(str(tmp_path / "no-python"), SERVER_ARGS, log_path=tmp_path / "s.log", core_dir=REPO_ROOT)
    driver = J.ModalDriver(J.StylizeJob(), client, _request(clips))
    assert _drive(driver)[-1] == J.FAILED
    assert driver.job.error["kind"] == "missing_python" and "does not exist" in driver.job.describe_error()


def test_server_killed_mid_request_reports_exit_code_and_log_then_restarts(client, clips):
    job = J.StylizeJob()
    job.start(client, _request(clips, "doomed", step_delay=0.5))
    while job.update() == J.RUNNING and not job.stage:
        time.sleep(0.01)
    pid = client.pid
    os.kill(pid, signal.SIGKILL)
    assert job.wait(0.01, timeout=10) == J.FAILED
    e = job.error
    assert e["kind"] == "died" and e["exit_code"] == -signal.SIGKILL
    assert "ready in" in e["log_tail"]  # the server's own log lines
    assert "SIGKILL" in job.describe_error() or "-9" in str(e)
    assert _gone(pid) and not client.running
    t = time.perf_counter()
    after = _run(client, _request(clips, "after-kill"))
    assert after.state == J.DONE and client.pid != pid
    print(f"\nrestart + stylize after a kill: {(time.perf_counter() - t) * 1e3:.0f} ms")


def test_a_slow_server_lives_on_heartbeats_and_a_hung_one_times_out_is_killed(tmp_path, clips):
    with _client(tmp_path, timeout=3.0) as c:
        job = J.StylizeJob()
        job.start(c, _request(clips, "hang", step_delay=5.0))  # 5 s between progress messages
        pid = c.pid
        end = time.perf_counter() + 4.5
        while time.perf_counter() < end:  # heartbeats every 2 s keep a working server alive
            assert job.update() == J.RUNNING
            time.sleep(0.05)
        os.kill(pid, signal.SIGSTOP)  # hung: alive, silent
        t = time.perf_counter()
        assert job.wait(0.01, timeout=15) == J.FAILED
        assert 3.0 <= time.perf_counter() - t < 6.0
        assert job.error["kind"] == "timeout" and "3 s" in job.error["message"]
        assert job.error["exit_code"] == -signal.SIGKILL and _gone(pid)
        after = _run(c, _request(clips, "after-hang"))
        assert after.state == J.DONE and c.pid != pid


GARBAGE = """
import os, sys, time
os.write(1, b"Hello from a library that prints to stdout!\\n" * 50)
time.sleep(60)
"""

GARBAGE_AFTER_HELLO = """
import sys, time
from core import protocol as P
P.read_message(sys.stdin.buffer)
P.write_message(sys.stdout.buffer, {"type": "hello", "version": P.PROTOCOL_VERSION, "device": "cpu"})
P.read_message(sys.stdin.buffer)
sys.stdout.buffer.write(b"\\x10\\x00\\x00\\x00not json at all!" + bytes(range(256)))
sys.stdout.buffer.flush()
time.sleep(60)
"""

OLD_VERSION = """
import sys, time
from core import protocol as P
P.read_message(sys.stdin.buffer)
P.write_message(sys.stdout.buffer, {"type": "hello", "version": 99})
time.sleep(60)
"""


def _fake_runtime(tmp_path, name, source, **kw):
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    return C.ServerClient(
        sys.executable, log_path=tmp_path / f"{name}.log", core_dir=REPO_ROOT, pythonpath=[tmp_path], module=name, **kw
    )


def test_garbage_on_stdout_is_a_clear_protocol_error(tmp_path, clips):
    before = set(_server_children())  # the module's shared server
    c = _fake_runtime(tmp_path, "junk_runtime", GARBAGE, start_timeout=10)
    with pytest.raises(C.ServerError) as err:
        c.start()
    assert err.value.kind == "protocol" and "not the protocol" in str(err.value)
    assert c.child is None and set(_server_children()) <= before
    # a job through the same client fails cleanly too
    job = J.StylizeJob()
    assert job.start(c, _request(clips)) == J.FAILED and job.error["kind"] == "protocol"
    # garbage in the middle of a session (after a good handshake)
    c2 = _fake_runtime(tmp_path, "junk_later", GARBAGE_AFTER_HELLO, timeout=10)
    job = J.StylizeJob()
    job.start(c2, _request(clips, "x"))
    assert job.wait(0.01, timeout=15) == J.FAILED
    assert job.error["kind"] == "protocol" and "not valid UTF-8 JSON" in job.error["message"]
    assert c2.child is None and set(_server_children()) <= before
    # the client recovers once it points at a real runtime again
    c2.module, c2.args = "core.server", list(SERVER_ARGS)
    assert _run(c2, _request(clips, "real")).state == J.DONE
    c2.stop()


def test_protocol_version_mismatch_names_both_versions(tmp_path):
    before = set(_server_children())
    c = _fake_runtime(tmp_path, "old_runtime", OLD_VERSION, start_timeout=10)
    with pytest.raises(C.ServerError) as err:
        c.start()
    assert err.value.kind == "version"
    assert f"version {P.PROTOCOL_VERSION}" in str(err.value) and "version 99" in str(err.value)
    assert c.child is None and set(_server_children()) <= before


def test_missing_runtime_python_is_a_clear_error(tmp_path, clips):
    missing = tmp_path / "no-venv" / "bin" / "python"
    c = C.ServerClient(missing, log_path=tmp_path / "x.log", core_dir=REPO_ROOT)
    with pytest.raises(C.ServerError) as err:
        c.start()
    assert err.value.kind == "missing_python"
    assert str(missing) in str(err.value) and "preferences" in str(err.value) and "Install runtime" in str(err.value)
    job = J.StylizeJob()
    assert job.start(c, _request(clips)) == J.FAILED and str(missing) in job.error["message"]
    for bad in ("", tmp_path):  # unset, and a folder rather than an interpreter
        with pytest.raises(C.ServerError, match="runtime Python") as err:
            C.ServerClient(bad, log_path=tmp_path / "x.log").start()
        assert err.value.kind == "missing_python"


def test_100_kill_restart_cycles_leave_no_stray_processes(tmp_path, clips):
    before = set(_server_children())
    c = _client(tmp_path, timeout=10.0)
    pids, restart = [], []
    small = P.stylize_request(None, *(_wire(m) for m in clips), options={"step_delay": 0.2})
    for i in range(100):
        t = time.perf_counter()
        c.start()
        restart.append(time.perf_counter() - t)
        pids.append(c.pid)
        if i % 20 == 0:  # now and then, kill it in the middle of a request
            job = J.StylizeJob()
            job.start(c, small)
            while job.update() == J.RUNNING and not job.stage:
                time.sleep(0.005)
            assert job.state == J.RUNNING, job.describe_error()
            os.kill(c.pid, signal.SIGKILL)
            assert job.wait(0.005, timeout=10) == J.FAILED and job.error["kind"] == "died"
        else:
            os.kill(c.pid, signal.SIGKILL if i % 2 else signal.SIGTERM)
            _wait_dead(c.pid)
            end = time.monotonic() + 5
            while c.running and time.monotonic() < end:  # the client notices on a poll (idle: no error)
                assert c.poll() == []
                time.sleep(0.001)
    job = _run(c, _request(clips, "survivor"))
    assert job.state == J.DONE
    pids.append(c.pid)
    assert c.stop() == 0
    assert len(set(pids)) == 101 and all(_gone(p) for p in pids)
    assert set(_server_children()) <= before
    print(f"\nserver (re)start incl. handshake: median {statistics.median(restart) * 1e3:.0f} ms over 100 cycles")


def test_client_imports_core_bundled_in_the_addon_package(tmp_path):
    """Inside the installed add-on, core is a subpackage: client.py finds ``.core.protocol`` there
    (the repository layout, with ``core`` top-level, is what every other test here uses)."""
    import importlib
    import shutil

    package = tmp_path / "mst_addon_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    shutil.copy(REPO_ROOT / "blender_addon" / "client.py", package / "client.py")
    shutil.copytree(REPO_ROOT / "core", package / "core", ignore=shutil.ignore_patterns("__pycache__"))
    sys.path.insert(0, str(tmp_path))
    try:
        bundled = importlib.import_module("mst_addon_pkg.client")
        assert bundled.P.__name__ == "mst_addon_pkg.core.protocol"
        assert C.P.__name__ == "core.protocol"
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == "mst_addon_pkg" or m.startswith("mst_addon_pkg.")]:
            del sys.modules[name]
