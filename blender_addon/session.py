"""The one runtime server of this Blender session, built from the add-on preferences.

The operator and the batch API share it, so the server's cold start (imports, weights) is paid
once; a change of the runtime Python, model config, device or timeout replaces it. It is stopped
when the add-on is disabled or Blender quits.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .client import ServerClient, ServerError

ADDON_DIR = Path(__file__).resolve().parent
_client: ServerClient | None = None
_key: tuple | None = None


def bundled_model_config() -> Path:
    """The model shipped in the add-on (``weights/stylizer.json``); in the repository, its copy."""
    for base in (ADDON_DIR, ADDON_DIR.parent):
        path = base / "weights" / "stylizer.json"
        if path.is_file():
            return path
    return ADDON_DIR / "weights" / "stylizer.json"


def log_path() -> Path:
    return Path(tempfile.gettempdir()) / "motion_style_transfer" / "server.log"


def runtime_python(prefs) -> str:
    """The interpreter to run the server with: the preference, else the installed runtime's."""
    if prefs is not None and prefs.runtime_python:
        return os.path.abspath(os.path.expanduser(prefs.runtime_python))
    from .runtime_install import RuntimeInstaller

    installed = RuntimeInstaller()
    return str(installed.python) if installed.status().state == "ready" else ""


def model_config(prefs) -> Path:
    """The model config the server loads; a missing file is a clear error before any launch."""
    if prefs is not None and prefs.model_config:
        path = Path(os.path.abspath(os.path.expanduser(prefs.model_config)))
        where = "the add-on preferences (Model config)"
    else:
        path = bundled_model_config()
        where = "the add-on install (reinstall the add-on)"
    if not path.is_file():
        raise ServerError(f"the model config {path} does not exist: check {where}", "missing_weights")
    return path


def client(prefs) -> ServerClient:
    """The session's client for these preferences (created, or replaced when they changed)."""
    global _client, _key
    python = runtime_python(prefs)
    config = model_config(prefs)
    device = prefs.device.lower() if prefs is not None else "auto"
    timeout = float(prefs.timeout) if prefs is not None else 120.0
    start_timeout = float(prefs.start_timeout) if prefs is not None else 120.0
    key = (python, str(config), device, timeout, start_timeout)
    if _client is None or key != _key:
        stop()
        _client = ServerClient(
            python,
            ("--device", device, "--config", str(config)),
            log_path=log_path(),
            timeout=timeout,
            start_timeout=start_timeout,
            core_dir=ADDON_DIR if (ADDON_DIR / "core").is_dir() else None,
        )
        _key = key
    return _client


def stop() -> None:
    """Shut the server down (if one runs) and forget the client."""
    global _client, _key
    if _client is not None:
        try:
            _client.stop()
        finally:
            _client, _key = None, None
