"""Seldon MLServer, a peer of `python -m benchmarks serve`: its venv and its model folder."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

from benchmarks._serve_processes import PROJECT, free_port

MLSERVER_VERSION = "1.7.1"
MLSERVER_VENV = PROJECT / ".tools" / "mlserver-venv"


def ensure_mlserver(quick: bool) -> tuple[Path | None, str]:
    """(the venv's mlserver command, "") or (None, why not). A full run creates the venv."""
    command = MLSERVER_VENV / "bin" / "mlserver"
    if command.exists():
        return command, ""
    if quick:
        return None, f"MLServer is not installed in {MLSERVER_VENV} (a full run installs it)"
    try:
        tensorflow = "tensorflow-cpu==" + importlib.metadata.version("tensorflow-cpu")
    except importlib.metadata.PackageNotFoundError:
        tensorflow = "tensorflow==" + importlib.metadata.version("tensorflow")
    python = MLSERVER_VENV / "bin" / "python"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(MLSERVER_VENV)], check=True, capture_output=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", f"mlserver=={MLSERVER_VERSION}", tensorflow],
            check=True,
            capture_output=True,
            timeout=1800,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"could not install mlserver=={MLSERVER_VERSION} in {MLSERVER_VENV}: {exc}"
    return (command, "") if command.exists() else (None, f"no {command} after installing MLServer")


def mlserver_command(mlserver: Path, work: Path, model_dir: Path, port: int, model: str) -> list[str]:
    folder = work / "mlserver"
    (folder / model).mkdir(parents=True, exist_ok=True)
    settings = {
        "host": "127.0.0.1",
        "http_port": port,
        "grpc_port": free_port(),
        "metrics_port": free_port(),
        "parallel_workers": 0,  # the model in the server process, as Sluice and KServe have it
        "debug": False,
    }
    model_settings = {
        "name": model,
        "implementation": "benchmarks._mlserver_runtime.KerasRuntime",
        "parameters": {"uri": str(model_dir)},
    }
    (folder / "settings.json").write_text(json.dumps(settings))
    (folder / model / "model-settings.json").write_text(json.dumps(model_settings))
    return [str(mlserver), "start", str(folder)]
