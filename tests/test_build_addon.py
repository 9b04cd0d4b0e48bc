"""build_addon.py: the zip's contents, reproducibility, version check, and a real install in bpy 5.0.1.

The Blender tests install the zip both ways (legacy add-on install + enable, and extension install)
into FRESH user resources (a temporary folder; ~/.config/blender is never touched), then check inside
Blender that the add-on is enabled, its operator, panel and preferences are registered, `core` loads
as the add-on's subpackage (no top-level `core`, no torch), and disabling unregisters it again.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib

import build_addon
from build_addon import PACKAGE, BuildError, build
from tests.blender_runner import blender_python, run_blender_script
from training.data.paths import REPO_ROOT

INSTALL_SCRIPT = Path(__file__).parent / "blender" / "install_addon.py"
MANIFEST = REPO_ROOT / "blender_addon" / "blender_manifest.toml"


@pytest.fixture(scope="module")
def built_zip(tmp_path_factory) -> Path:
    try:
        return build(tmp_path_factory.mktemp("dist"))
    except BuildError as e:
        pytest.fail(f"build_addon.build failed on the repo: {e}")


def _expected_entries() -> set[str]:
    """What the zip must hold, listed from the repo independently of build_addon.collect."""
    names = {p.name for p in (REPO_ROOT / "blender_addon").glob("*.py")} | {"blender_manifest.toml", "LICENSE"}
    for p in (REPO_ROOT / "core").rglob("*"):
        rel = p.relative_to(REPO_ROOT)
        if p.is_file() and "__pycache__" not in rel.parts and (p.suffix == ".py" or rel.parent.name == "rigs"):
            names.add(rel.as_posix())
    config = json.loads((REPO_ROOT / "weights" / "stylizer.json").read_text())
    names.add("weights/stylizer.json")
    if config.get("weights"):
        rel = Path(config["weights"])
        names.add((rel if rel.parts[0] == "weights" else Path("weights") / rel).as_posix())
    for key in ("denoiser", "encoders"):  # checkpoint stems: <stem>.safetensors and <stem>.json
        if key in config:
            names |= {f"weights/{config[key]}.safetensors", f"weights/{config[key]}.json"}
    return {f"{PACKAGE}/{n}" for n in names}


MAX_ZIP_BYTES = 30 * 1024 * 1024  # what a Blender add-on download may reasonably weigh


def test_zip_carries_the_shipped_model_and_stays_small(built_zip):
    """The shipped config's checkpoints (both files of each stem) are in, and the zip stays < 30 MB."""
    config = json.loads((REPO_ROOT / "weights" / "stylizer.json").read_text())
    with zipfile.ZipFile(built_zip) as zf:
        names = set(zf.namelist())
        for key in ("denoiser", "encoders"):
            if key in config:
                for suffix in (".safetensors", ".json"):
                    name = f"{PACKAGE}/weights/{config[key]}{suffix}"
                    assert name in names, f"{name} ({key!r} of the shipped config) is not in the zip"
                    assert zf.read(name) == (REPO_ROOT / "weights" / f"{config[key]}{suffix}").read_bytes()
    size = built_zip.stat().st_size
    print(f"{built_zip.name}: {size / 2**20:.2f} MiB")
    assert size < MAX_ZIP_BYTES, f"the add-on zip weighs {size / 2**20:.1f} MiB, over 30 MiB"


def test_zip_holds_addon_core_config_and_licence_only(built_zip):
    version = tomllib.loads(MANIFEST.read_text())["version"]
    assert built_zip.name == f"motion_style_transfer-{version}.zip"
    with zipfile.ZipFile(built_zip) as zf:
        names = zf.namelist()
        assert zf.testzip() is None
        licence = zf.read(f"{PACKAGE}/LICENSE").decode()
        init = zf.read(f"{PACKAGE}/__init__.py").decode()
    assert set(names) == _expected_entries(), (
        f"unexpected: {sorted(set(names) - _expected_entries())}; missing: {sorted(_expected_entries() - set(names))}"
    )
    for bad in ("__pycache__", ".pyc", "/tests/", "/training/", "judges", "/.venv"):
        assert not [n for n in names if bad in n], f"{bad!r} must not be in the add-on zip"
    assert f"{PACKAGE}/core/retarget/rigs/mixamo.bvh" in names
    assert "bl_info" in init
    for needle in ("MIT License", "CC BY-NC 4.0", "Bandai Namco Research", "arXiv:2306.08861", "non-commercial"):
        assert needle.lower() in licence.lower(), f"LICENSE lacks {needle!r}"


def test_zip_is_reproducible_and_sorted(built_zip, tmp_path):
    # A second build, through the command line in another process, gives the same bytes.
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "build_addon.py"), "--out", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    again = tmp_path / built_zip.name
    assert str(again) in proc.stdout
    assert again.read_bytes() == built_zip.read_bytes()
    with zipfile.ZipFile(built_zip) as zf:
        infos = zf.infolist()
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    assert {i.date_time for i in infos} == {build_addon.ZIP_DATE}
    assert {i.external_attr >> 16 for i in infos} == {0o100644}


def test_manifest_fields():
    m = tomllib.loads(MANIFEST.read_text())
    assert m["schema_version"] == "1.0.0"
    assert (m["id"], m["version"], m["type"], m["blender_version_min"]) == (PACKAGE, "0.1.0", "add-on", "4.2.0")
    assert m["license"] == ["SPDX:MIT"]
    assert any("CC BY-NC 4.0" in c for c in m["copyright"])
    assert "files" in m["permissions"] and m["tagline"] and m["maintainer"]


def _tree(tmp_path: Path, bl_version="(0, 1, 0)", config=None) -> Path:
    """A minimal source tree for build(): the real manifest and core, a stub __init__.py."""
    root = tmp_path / "src"
    addon = root / "blender_addon"
    (addon / "__pycache__").mkdir(parents=True)
    shutil.copy(MANIFEST, addon / "blender_manifest.toml")
    (addon / "__init__.py").write_text(f'bl_info = {{"name": "x", "version": {bl_version}, "blender": (4, 2, 0)}}\n')
    (addon / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    shutil.copytree(REPO_ROOT / "core", root / "core")
    (root / "weights" / "judges").mkdir(parents=True)
    (root / "weights" / "judges" / "style.safetensors").write_bytes(b"judge")
    (root / "weights" / "stylizer.json").write_text(json.dumps(config or {"stylizer": "statistics"}))
    return root


def test_version_mismatch_fails_with_a_clear_message(tmp_path):
    root = _tree(tmp_path, bl_version="(0, 2, 0)")
    with pytest.raises(BuildError, match=r"version mismatch.*0\.1\.0.*\(0, 2, 0\)"):
        build(tmp_path / "dist", repo_root=root)
    assert not (tmp_path / "dist").exists() or not list((tmp_path / "dist").iterdir())
    (root / "blender_addon" / "__init__.py").unlink()
    with pytest.raises(BuildError, match=r"__init__\.py is missing"):
        build(tmp_path / "dist", repo_root=root)


def test_weights_named_by_the_config_are_carried_and_checked(tmp_path):
    root = _tree(tmp_path, config={"stylizer": "diffusion", "weights": "stylizer.safetensors"})
    with pytest.raises(BuildError, match="stylizer.safetensors.*does not exist"):
        build(tmp_path / "dist", repo_root=root)
    (root / "weights" / "stylizer.safetensors").write_bytes(b"weights")
    with zipfile.ZipFile(build(tmp_path / "dist", repo_root=root)) as zf:
        names = zf.namelist()
    assert f"{PACKAGE}/weights/stylizer.safetensors" in names
    assert not [n for n in names if "judges" in n or "__pycache__" in n]

    (root / "weights" / "stylizer.json").write_text(
        json.dumps({"stylizer": "x", "weights": "judges/style.safetensors"})
    )
    with pytest.raises(BuildError, match="judges"):
        build(tmp_path / "dist", repo_root=root)
    (root / "weights" / "stylizer.json").unlink()
    with pytest.raises(BuildError, match="stylizer.json is missing"):
        build(tmp_path / "dist", repo_root=root)


def test_checkpoint_stems_named_by_the_config_are_carried_and_checked(tmp_path):
    """'denoiser' and 'encoders' name checkpoint stems: both <stem>.safetensors and <stem>.json go in;
    a missing one is named; a stem outside weights/ or in the judges is refused."""
    config = {
        "stylizer": "diffusion",
        "denoiser": "diffusion/denoiser",
        "encoders": "encoders/contrastive",
        "steps": 10,
    }
    root = _tree(tmp_path, config=config)
    with pytest.raises(BuildError, match=r"denoiser.*diffusion/denoiser\.safetensors does not exist"):
        build(tmp_path / "dist", repo_root=root)
    for stem in ("diffusion/denoiser", "encoders/contrastive"):
        (root / "weights" / stem).parent.mkdir(parents=True, exist_ok=True)
        (root / "weights" / f"{stem}.safetensors").write_bytes(b"tensors " + stem.encode())
        (root / "weights" / f"{stem}.json").write_text("{}")
    (root / "weights" / "encoders" / "contrastive.json").unlink()
    with pytest.raises(BuildError, match=r"encoders.*contrastive\.json does not exist"):
        build(tmp_path / "dist", repo_root=root)
    (root / "weights" / "encoders" / "contrastive.json").write_text("{}")
    (root / "weights" / "encoders" / "unrelated.safetensors").write_bytes(b"not named")
    with zipfile.ZipFile(build(tmp_path / "dist", repo_root=root)) as zf:
        names = {n for n in zf.namelist() if n.startswith(f"{PACKAGE}/weights/")}
        assert zf.read(f"{PACKAGE}/weights/diffusion/denoiser.safetensors") == b"tensors diffusion/denoiser"
    assert names == {
        f"{PACKAGE}/weights/{n}"
        for n in (
            "stylizer.json",
            "diffusion/denoiser.safetensors",
            "diffusion/denoiser.json",
            "encoders/contrastive.safetensors",
            "encoders/contrastive.json",
        )
    }
    for key, bad in (("encoders", "judges/style"), ("denoiser", "../core/denoiser"), ("denoiser", "/tmp/denoiser")):
        (root / "weights" / "stylizer.json").write_text(json.dumps({**config, key: bad}))
        with pytest.raises(BuildError, match="judges" if "judges" in bad else "relative path inside weights/"):
            build(tmp_path / "dist", repo_root=root)


@pytest.mark.blender
def test_blender_extension_validator_accepts_the_zip(built_zip):
    """Blender's own `extension validate` (strict, with the extensions.blender.org tag list)."""
    python = blender_python()
    scripts = next((python.parent.parent / "lib").glob("python3*/site-packages/bpy/*/scripts"))
    cli = scripts / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"
    tags = scripts / "modules" / "_bpy_internal" / "extensions" / "tags.py"
    cmd = [str(python), str(cli), "validate", "--valid-tags", str(tags), str(built_zip)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout}\n{proc.stderr}"


def _snapshot(folder: Path) -> dict:
    if not folder.exists():
        return {}
    return {str(p): p.stat().st_mtime_ns for p in folder.rglob("*")}


@pytest.mark.blender
@pytest.mark.parametrize("mode", ["legacy", "extension"])
def test_zip_installs_and_enables_in_blender(built_zip, mode, tmp_path):
    real_user_dir = Path.home() / ".config" / "blender"
    before = _snapshot(real_user_dir)
    root = tmp_path / "blender-user"
    r = run_blender_script(INSTALL_SCRIPT, built_zip, "--mode", mode, user_resources=root)
    assert _snapshot(real_user_dir) == before, "the install touched the real user's Blender folders"

    assert all(Path(p).is_relative_to(root) for p in r["user_resources"].values()), r["user_resources"]
    module = PACKAGE if mode == "legacy" else f"bl_ext.user_default.{PACKAGE}"
    assert r["module"] == module
    assert r["install"] == ["FINISHED"], r.get("install_error")
    assert not r["errors"] and not r.get("enable_errors"), r["errors"] + r.get("enable_errors", [])
    assert r["enabled_in_preferences"] and r["addon_utils_check"] == [True, True]
    folder = Path(r["module_file"]).parent
    assert folder.is_relative_to(root) and folder.name == PACKAGE
    for needed in ("core/protocol.py", "core/retarget/rigs/mixamo.bvh", "weights/stylizer.json", "LICENSE"):
        assert needed in r["installed_files"]

    # core is the add-on's subpackage; nothing named plain `core` exists or got imported; no torch.
    for sub in ("core.protocol", "core.retarget.matching", "client"):
        got = r["imports"][sub]
        assert got["ok"], f"{module}.{sub} does not import inside Blender: {got.get('error')}"
        assert got["name"] == f"{module}.{sub}" and Path(got["file"]).is_relative_to(folder)
    assert r["top_level_core"] == {"in_sys_modules": False, "findable": False}
    assert Path(r["client_core_dir"]) == folder, "client.default_core_dir() must find core inside the add-on"
    assert not r["before"]["torch_in_sys_modules"] and not r["after"]["torch_in_sys_modules"]

    # Registered while enabled (checked through bpy.types: hasattr(bpy.ops.mst, ...) is always True).
    assert not r["before"]["operator"]["rna"]
    assert r["after"]["operator"]["rna"] and r["after"]["operator"]["bpy_types"], r["after"]["operator"]
    assert r["after"]["panel"], "panel VIEW3D_PT_motion_style not registered"
    assert r["preferences_registered"], "add-on preferences (bl_idname = __package__) not registered"
    # ...and gone after disabling.
    assert r.get("disable_error") is None, r.get("disable_error")
    gone = r["after_disable"]
    assert not gone["operator"]["rna"] and not gone["panel"] and not gone["enabled_in_preferences"], gone
    print(f"{mode}: Blender {r['blender_version']}: installed as {module} into {folder}")


def test_runner_fresh_user_resources_env(tmp_path):
    from tests.blender_runner import user_resources_env

    env = user_resources_env(tmp_path / "u")
    assert env["BLENDER_USER_RESOURCES"] == str(tmp_path / "u")
    for key in ("BLENDER_USER_CONFIG", "BLENDER_USER_SCRIPTS", "BLENDER_USER_EXTENSIONS", "BLENDER_USER_DATAFILES"):
        assert Path(env[key]).is_dir() and Path(env[key]).parent == tmp_path / "u"
    assert os.path.commonpath(list(env.values())) == str(tmp_path / "u")
