"""Build the installable Blender add-on zip: ``python build_addon.py [--out dist]``.

Writes ``<out>/motion_style_transfer-<version>.zip``, ONE zip that installs both ways in Blender 4.2+
(checked in real bpy 5.0.1 by tests/test_build_addon.py):

- as an extension: Edit > Preferences > Get Extensions > Install from Disk, or
  ``bpy.ops.extensions.package_install_files(filepath=zip, repo="user_default", enable_on_install=True)``
  (module ``bl_ext.user_default.motion_style_transfer``);
- as a legacy add-on: Preferences > Add-ons > Install from Disk, or
  ``bpy.ops.preferences.addon_install(filepath=zip)`` then ``addon_utils.enable("motion_style_transfer")``
  (module ``motion_style_transfer``).

Layout: everything under one top folder ``motion_style_transfer/`` (the legacy installer refuses an
``__init__.py`` at the top level of the zip; the extension installer accepts the manifest in a single
top folder):

    motion_style_transfer/__init__.py, *.py      the add-on (blender_addon/, bl_info and register())
    motion_style_transfer/blender_manifest.toml  the extension manifest
    motion_style_transfer/core/...               the runtime package, as a subpackage of the add-on
                                                 (its .py files and core/retarget/rigs/*)
    motion_style_transfer/weights/stylizer.json  the model config, plus the files it names (its
                                                 'weights' file; both files of each checkpoint stem
                                                 in 'denoiser' / 'encoders')
    motion_style_transfer/LICENSE                code MIT; weights CC BY-NC 4.0 with attribution

The runtime server runs as ``<runtime python> -m core.server`` with the add-on folder as cwd and
PYTHONPATH, so ``weights/`` sits where it sits in the repo: beside ``core``. Nothing from tests/,
training/, weights/judges/ or any __pycache__ goes in.

The version comes from blender_manifest.toml; the build fails when bl_info["version"] in
blender_addon/__init__.py (read with ast, never imported) says otherwise. The zip is reproducible:
sorted entries, fixed timestamps and permissions, so the same sources give the same bytes.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent
PACKAGE = "motion_style_transfer"
MANIFEST = "blender_manifest.toml"
STYLIZER_CONFIG = "weights/stylizer.json"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip can hold: no build time leaks into the bytes

LICENSE_TEXT = """\
Motion Style Transfer for Blender: licences
============================================

1. Code (the add-on and the bundled `core` package): MIT License

Copyright (c) 2026 Motion Style Transfer contributors

Permission is hereby granted, free of charge, to any person obtaining a copy of this software and
associated documentation files (the "Software"), to deal in the Software without restriction,
including without limitation the rights to use, copy, modify, merge, publish, distribute,
sublicense, and/or sell copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT
NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES
OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN
CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.

2. Model weights (weights/) and any bundled motion clips: CC BY-NC 4.0 (non-commercial use only)

The model weights in weights/ are trained on, and any bundled motion clips are unmodified takes
from, the Bandai Namco Research Motion Dataset:

- (c) 2022 Bandai Namco Research Inc.
- Source: https://github.com/BandaiNamcoResearchInc/Bandai-Namco-Research-Motiondataset
- Paper: Kobayashi et al. 2023, "Motion Capture Dataset for Practical Use of AI-based Motion Editing
  and Stylization", arXiv:2306.08861.
- Licence: Creative Commons Attribution-NonCommercial 4.0 International (CC BY-NC 4.0),
  https://creativecommons.org/licenses/by-nc/4.0/

You may share and adapt them for NON-COMMERCIAL purposes only, giving the attribution above and
indicating changes. The MIT licence of the code does not extend to the weights or the clips: motion
made with these weights inherits no commercial right from this package.
"""


class BuildError(Exception):
    """The sources cannot make a consistent add-on zip; the message says what to fix."""


def manifest_version(repo_root: Path = REPO_ROOT) -> str:
    """``version`` of blender_addon/blender_manifest.toml (tomllib, or a plain line match on 3.10)."""
    path = repo_root / "blender_addon" / MANIFEST
    if not path.is_file():
        raise BuildError(f"{path} is missing: the add-on zip needs its extension manifest")
    text = path.read_text(encoding="utf-8")
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        match = re.search(r'^version\s*=\s*"([^"]+)"', text, re.MULTILINE)
        version = match.group(1) if match else None
    else:
        try:
            version = tomllib.loads(text).get("version")
        except tomllib.TOMLDecodeError as e:
            raise BuildError(f"{path} is not valid TOML: {e}") from None
    if not isinstance(version, str) or not re.fullmatch(r"\d+\.\d+\.\d+", version):
        raise BuildError(f"{path}: 'version' must be a string like \"0.1.0\", found {version!r}")
    return version


def bl_info_version(repo_root: Path = REPO_ROOT) -> tuple[int, ...]:
    """``bl_info["version"]`` of blender_addon/__init__.py, read with ast (the module imports bpy)."""
    path = repo_root / "blender_addon" / "__init__.py"
    if not path.is_file():
        raise BuildError(f"{path} is missing: the add-on has no entry point (bl_info, register)")
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in tree.body:
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        if any(isinstance(t, ast.Name) and t.id == "bl_info" for t in targets) and node.value is not None:
            try:
                info = ast.literal_eval(node.value)
            except ValueError:
                raise BuildError(f"{path}: bl_info must be a literal dict") from None
            version = info.get("version") if isinstance(info, dict) else None
            if not (isinstance(version, tuple) and version and all(isinstance(v, int) for v in version)):
                raise BuildError(f"{path}: bl_info['version'] must be a tuple of ints, found {version!r}")
            return version
    raise BuildError(f"{path}: no top-level bl_info dict found")


def check_versions(repo_root: Path = REPO_ROOT) -> str:
    """The manifest version, after checking that bl_info says the same."""
    version = manifest_version(repo_root)
    info = bl_info_version(repo_root)
    if ".".join(map(str, info)) != version:
        raise BuildError(
            f"version mismatch: blender_addon/{MANIFEST} says {version!r} but bl_info['version'] in "
            f"blender_addon/__init__.py says {info!r}; make them equal (e.g. bl_info 'version': "
            f"{tuple(int(v) for v in version.split('.'))!r})"
        )
    return version


def _skip(path: Path) -> bool:
    return "__pycache__" in path.parts or path.suffix in (".pyc", ".pyo") or path.name.startswith(".")


CHECKPOINT_SETTINGS = ("denoiser", "encoders")  # settings naming a checkpoint stem: <stem>.safetensors + <stem>.json


def _weights_source(repo_root: Path, config: Path, key: str, value, suffix: str = "") -> Path:
    """The file a config setting names (relative to the config's folder, plus ``suffix``), checked:
    a relative path inside weights/, never the judges, and present; a BuildError otherwise."""
    if not isinstance(value, str) or not value:
        raise BuildError(f"{config}: {key!r} must be a relative path inside weights/, found {value!r}")
    rel = Path(value)
    weights_root = (repo_root / "weights").resolve()
    source = (config.parent / (value + suffix)).resolve()
    if rel.is_absolute() or weights_root not in source.parents:
        raise BuildError(f"{config}: {key!r} must be a relative path inside weights/, found {value!r}")
    if "judges" in source.relative_to(weights_root).parts:
        raise BuildError(f"{config}: {key!r} names {value!r}; the judges are for evaluation, not the add-on")
    if not source.is_file():
        raise BuildError(f"{config} names {key} {value!r}, but {source} does not exist")
    return source


def _weights_files(repo_root: Path) -> list[tuple[str, Path]]:
    """weights/stylizer.json and the files it names, as (path in the add-on, source): the file of
    ``weights`` and, for each checkpoint stem in ``denoiser`` / ``encoders``, its ``.safetensors``
    and ``.json``.

    The paths are relative to the config's folder, as core.stylize.loading (and the stylizer's
    from_config) reads them; the zip keeps the repo's layout (weights/ beside core/), so the installed
    add-on finds them the same way."""
    config = repo_root / STYLIZER_CONFIG
    if not config.is_file():
        raise BuildError(f"{config} is missing: the add-on zip must carry the model config {STYLIZER_CONFIG}")
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise BuildError(f"{config} is not valid JSON: {e}") from None
    if not isinstance(data, dict) or "stylizer" not in data:
        raise BuildError(f"{config} must be a JSON object with a 'stylizer' field")
    sources = []
    if data.get("weights"):
        sources.append(_weights_source(repo_root, config, "weights", data["weights"]))
    for key in CHECKPOINT_SETTINGS:
        if key in data:
            for suffix in (".safetensors", ".json"):
                sources.append(_weights_source(repo_root, config, key, data[key], suffix))
    files = [(STYLIZER_CONFIG, config)]
    root = repo_root.resolve()
    for source in sources:
        name = source.relative_to(root).as_posix()
        if name not in dict(files):
            files.append((name, source))
    return files


def collect(repo_root: Path = REPO_ROOT) -> dict[str, bytes]:
    """Every entry of the zip: name (under the top folder) -> bytes, before any writing."""
    repo_root = Path(repo_root)
    entries: dict[str, bytes] = {}
    addon = repo_root / "blender_addon"
    for path in sorted(addon.rglob("*.py")) + [addon / MANIFEST]:
        if not _skip(path.relative_to(addon)):
            entries[path.relative_to(addon).as_posix()] = path.read_bytes()
    core = repo_root / "core"
    sources = [p for p in core.rglob("*.py")] + [p for p in (core / "retarget" / "rigs").glob("*") if p.is_file()]
    for path in sorted(sources):
        rel = path.relative_to(repo_root)
        if not _skip(rel):
            entries[rel.as_posix()] = path.read_bytes()
    if "core/__init__.py" not in entries or "core/server.py" not in entries:
        raise BuildError(f"{core} does not look like the core package (no __init__.py or server.py)")
    for name, path in _weights_files(repo_root):
        entries[name] = path.read_bytes()
    entries["LICENSE"] = LICENSE_TEXT.encode("utf-8")
    return entries


def build(out_dir=None, repo_root=REPO_ROOT) -> Path:
    """Build ``<out_dir>/motion_style_transfer-<version>.zip`` (default out_dir: <repo>/dist); its path."""
    repo_root = Path(repo_root)
    version = check_versions(repo_root)
    entries = collect(repo_root)
    out_dir = Path(out_dir) if out_dir is not None else repo_root / "dist"
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{PACKAGE}-{version}.zip"
    tmp = target.with_suffix(".zip.part")
    with zipfile.ZipFile(tmp, "w") as zf:
        for name in sorted(entries):
            info = zipfile.ZipInfo(f"{PACKAGE}/{name}", date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, whatever the building OS: same bytes everywhere
            info.external_attr = 0o100644 << 16  # regular file, rw-r--r--
            zf.writestr(info, entries[name], compresslevel=9)
    tmp.replace(target)
    return target


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=None, help="output folder (default: dist/ in the repo)")
    args = parser.parse_args(argv)
    try:
        path = build(args.out)
    except BuildError as e:
        print(f"build_addon: error: {e}", file=sys.stderr)
        return 1
    with zipfile.ZipFile(path) as zf:
        count = len(zf.namelist())
    print(f"{path} ({count} files, {path.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
