"""Model configs (issue 5): core.stylize.loading in process, and real ``python -m core.server``
subprocesses launched through the add-on's client with broken and good ``--config`` files."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO_ROOT, bandai_clip

sys.path.insert(0, str(REPO_ROOT / "blender_addon"))  # client/job as plain modules (no bpy package)
import client as C
import job as J

from core import protocol as P
from core.io.bvh import read_bvh
from core.retarget.matching import rig_for_skeleton
from core.runtime import RigMotion
from core.server import EXIT_CONFIG
from core.stylize import baselines
from core.stylize.loading import ModelConfigError, load_stylizer

SHIPPED = REPO_ROOT / "weights" / "stylizer.json"
SERVER_ARGS = ("--device", "cpu", "--log-level", "INFO")


def _write(tmp_path, name, content) -> str:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


# --- core.stylize.loading -------------------------------------------------------------------------


def test_shipped_config_is_the_diffusion_stylizer():
    """weights/stylizer.json is the learned stylizer, its checkpoints named as stems beside it; it is
    the CLI's and the server's default (core.stylize.loading.SHIPPED_CONFIG)."""
    from core.stylize.diffusion import DiffusionStylizer
    from core.stylize.loading import SHIPPED_CONFIG

    assert SHIPPED_CONFIG == SHIPPED
    data = json.loads(SHIPPED.read_text())
    assert data["stylizer"] == "diffusion" and "weights" not in data and "CC BY-NC 4.0" in data["description"]
    assert (data["denoiser"], data["encoders"]) == ("diffusion/denoiser", "encoders/contrastive")
    for stem in (data["denoiser"], data["encoders"]):
        for suffix in (".safetensors", ".json"):
            assert (SHIPPED.parent / f"{stem}{suffix}").is_file(), f"{stem}{suffix} is missing beside {SHIPPED}"
    stylizer = load_stylizer(SHIPPED)
    assert isinstance(stylizer, DiffusionStylizer) and stylizer.name == "diffusion"


@pytest.mark.parametrize(
    "name, content, match",
    [
        (None, None, "does not exist"),
        ("bad.json", "{not json", "not valid JSON"),
        ("list.json", [1, 2], "must be a JSON object"),
        ("nostylizer.json", {"weights": "w.safetensors"}, "needs a 'stylizer' field"),
        ("unknown.json", {"stylizer": "diffusion-v9"}, r"unknown stylizer 'diffusion-v9'.*'identity', 'statistics'"),
        (
            "noweights.json",
            {"stylizer": "statistics", "weights": "gone.safetensors"},
            "gone.safetensors' does not exist",
        ),
        ("weightstype.json", {"stylizer": "statistics", "weights": 3}, "'weights' must be a path"),
        ("setting.json", {"stylizer": "identity", "max_ratio": 3}, r"takes no settings.*max_ratio"),
    ],
)
def test_config_problems_name_the_file_and_the_problem(tmp_path, name, content, match):
    path = str(tmp_path / "missing.json") if name is None else _write(tmp_path, name, content)
    with pytest.raises(ModelConfigError, match=match) as err:
        load_stylizer(path)
    assert path in str(err.value) and isinstance(err.value, ValueError)


def test_folder_and_weights_given_to_a_stylizer_without_weights(tmp_path):
    with pytest.raises(ModelConfigError, match="is a folder"):
        load_stylizer(tmp_path)
    from safetensors.numpy import save_file

    save_file({"w": np.zeros(3, np.float32)}, str(tmp_path / "w.safetensors"))
    path = _write(tmp_path, "c.json", {"stylizer": "statistics", "weights": "w.safetensors"})
    with pytest.raises(ModelConfigError, match="'statistics' takes no weights, but the config names 'w.safetensors'"):
        load_stylizer(path)


class _Learned:
    """A stand-in for a stylizer with weights (the learned model of issue 7)."""

    name = "learned-test"

    def __init__(self, settings, tensors, device, folder):
        self.settings, self.tensors, self.device, self.folder = settings, tensors, device, folder

    @classmethod
    def from_config(cls, settings, tensors, device, folder):
        if "steps" not in settings:
            raise KeyError("steps")
        return cls(settings, tensors, device, folder)

    def stylize(self, request):
        return request.content


def test_weights_are_loaded_with_safetensors_relative_to_the_config(tmp_path, monkeypatch):
    from safetensors.numpy import save_file

    monkeypatch.setitem(baselines.STYLIZERS, _Learned.name, _Learned)
    (tmp_path / "model").mkdir()
    tensors = {"layer.weight": np.arange(6, dtype=np.float32).reshape(2, 3)}
    save_file(tensors, str(tmp_path / "model" / "net.safetensors"))
    config = {"stylizer": _Learned.name, "weights": "model/net.safetensors", "steps": 8, "description": "x"}
    stylizer = load_stylizer(_write(tmp_path, "learned.json", config), device="cuda")
    assert stylizer.settings == {"steps": 8} and stylizer.device == "cuda"
    assert stylizer.folder == tmp_path  # the config's own folder, for relative paths in settings
    np.testing.assert_array_equal(stylizer.tensors["layer.weight"], tensors["layer.weight"])
    # a stylizer refusing its settings, and a corrupt weights file
    with pytest.raises(ModelConfigError, match="refused it: KeyError"):
        load_stylizer(_write(tmp_path, "nosteps.json", {"stylizer": _Learned.name}))
    (tmp_path / "model" / "net.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage")
    with pytest.raises(ModelConfigError, match="not a readable safetensors file"):
        load_stylizer(_write(tmp_path, "learned.json", config))


# --- the server with a model config ---------------------------------------------------------------


def _client(tmp_path, config, **kw):
    return C.ServerClient(
        sys.executable, SERVER_ARGS, log_path=tmp_path / "server.log", core_dir=REPO_ROOT, config=config, **kw
    )


BROKEN = {
    "missing": (None, "does not exist"),
    "bad_json": ('{"stylizer": "statistics",', "not valid JSON"),
    "unknown_stylizer": ({"stylizer": "diffusion-v9"}, "unknown stylizer 'diffusion-v9'"),
    "missing_weights": ({"stylizer": "statistics", "weights": "nets/gone.safetensors"}, "does not exist"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_config_is_a_config_error_with_status_4_then_a_good_config_works(tmp_path, case):
    content, match = BROKEN[case]
    path = str(tmp_path / "nowhere.json") if content is None else _write(tmp_path, f"{case}.json", content)
    c = _client(tmp_path, path, start_timeout=30)
    with pytest.raises(C.ServerError) as err:
        c.start()
    e = err.value
    assert e.kind == "config" and e.exit_code == EXIT_CONFIG, (e.kind, e.exit_code, str(e))
    assert match in e.message and path in e.message
    if case == "missing_weights":
        assert "nets/gone.safetensors" in e.message
    assert match in e.log_tail  # logged to stderr too
    assert c.child is None
    # the same client, pointed at a good config, starts and stylizes
    c.config = str(SHIPPED)
    info = c.start()
    assert info["stylizer"] == "diffusion" and info["config"] == str(SHIPPED)
    assert c.stop() == 0


def test_requests_before_hello_and_unknown_stylizer_name_get_config_errors(tmp_path):
    """A raw session with a broken config: a stylize before the hello is answered with the config
    error (the server waits for the hello), the hello too, then exit 4. ``--stylizer nope`` alike."""
    path = _write(tmp_path, "bad.json", "[")
    for args in (["--config", path], ["--stylizer", "nope"]):
        proc = subprocess.Popen(
            [sys.executable, "-m", "core.server", "--device", "cpu", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=REPO_ROOT,
        )
        one = (json.dumps({}), 30.0, np.ones((1, 1, 4)), np.zeros((1, 1, 3)))
        P.write_message(proc.stdin, *P.stylize_request(7, one, one))
        P.write_message(proc.stdin, P.hello_request(id="h"))
        first, _ = P.read_message(proc.stdout, types=P.REPLY_TYPES)
        second, _ = P.read_message(proc.stdout, types=P.REPLY_TYPES)
        assert first["kind"] == "config" and first["id"] == 7
        assert second["kind"] == "config" and second["id"] == "h"
        assert ("not valid JSON" if "--config" in args else "unknown stylizer 'nope'") in second["message"]
        with pytest.raises(P.Closed):
            P.read_message(proc.stdout, types=P.REPLY_TYPES)
        assert proc.wait(10) == EXIT_CONFIG
        assert second["message"] in proc.stderr.read().decode()
        proc.stdin.close()
        proc.stdout.close()
        proc.stderr.close()


def test_stylizer_and_config_are_mutually_exclusive():
    out = subprocess.run(
        [sys.executable, "-m", "core.server", "--stylizer", "statistics", "--config", str(SHIPPED)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=False,
        cwd=REPO_ROOT,
        timeout=60,
    )
    assert out.returncode == 1 and b"not allowed with argument" in out.stderr and out.stdout == b""


@pytest.fixture(scope="module")
def request_300(data_root):
    def motion(name, frames=None):
        m = read_bvh(bandai_clip(name))
        rot = m.rotations[:frames].astype(np.float32).astype(np.float64)
        pos = m.positions[:frames].astype(np.float32).astype(np.float64)
        return RigMotion.from_arrays(rig_for_skeleton(m.skeleton), rot, pos, m.fps)

    content = motion("dataset-1_walk-back_not-confident_001.bvh", 300)
    style = motion("dataset-1_walk_angry_001.bvh")
    wire = [(m.rig.to_json(), m.motion.fps, m.motion.rotations, m.motion.positions) for m in (content, style)]
    return P.stylize_request(None, *wire, weights={"left_arm": 1.5, "root": 0.5})


def test_shipped_config_is_the_default_and_deterministic(tmp_path, request_300):
    """A server given neither --stylizer nor --config runs the shipped diffusion config: its result
    equals the one of ``--config weights/stylizer.json`` bit for bit, and a second request to the
    same server gives the same bits again (the sampler is seeded per request)."""
    results = {}
    for label, config in (("default", None), ("config", "weights/stylizer.json")):
        c = _client(tmp_path, None, start_timeout=60)
        if config:
            c.args += ["--config", config]  # relative to the server's cwd (core_dir): the repo root
        with c:
            info = c.start()
            assert info["stylizer"] == "diffusion"
            assert info["config"] == str(SHIPPED)  # the default reports the shipped config it loaded
            for run in ("", " again") if label == "default" else ("",):
                job = J.StylizeJob()
                job.start(c, request_300)
                assert job.wait(0.005, timeout=120) == J.DONE, job.describe_error()
                results[label + run] = job.result
    for other in ("config", "default again"):
        for key in ("rotations", "translations"):
            np.testing.assert_array_equal(results[other][key], results["default"][key])
        assert results[other]["fps"] == results["default"]["fps"]


def test_command_line_takes_a_model_config(tmp_path, data_root):
    """``python -m core stylize --config`` runs the shipped model as the server does; a missing
    config is a clear error with exit status 2."""
    content, style = bandai_clip("dataset-2_walk_normal_001.bvh.gz"), bandai_clip("dataset-2_walk_elderly_001.bvh.gz")
    outputs = {}
    for name, extra in (("config", ["--config", str(SHIPPED)]), ("default", [])):
        out = tmp_path / f"{name}.bvh"
        cmd = [sys.executable, "-m", "core", "stylize", str(content), str(style), "-o", str(out), *extra]
        run = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False)
        assert run.returncode == 0, run.stderr
        outputs[name] = read_bvh(out)
    np.testing.assert_array_equal(outputs["config"].rotations, outputs["default"].rotations)
    cmd = [sys.executable, "-m", "core", "stylize", str(content), str(style), "-o", str(tmp_path / "x.bvh")]
    run = subprocess.run(
        [*cmd, "--config", str(tmp_path / "none.json")], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert run.returncode == 2 and "none.json: the file does not exist" in run.stderr
