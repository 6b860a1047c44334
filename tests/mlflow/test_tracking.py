"""Issue 19, fast: models:/ URIs, their validation, the step environment, the import boundary
(the base install and the non-MLflow path never import mlflow), and tracking that is off or
unreachable never failing a step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from controller.executors.local import stepenv
from controller.protocol import parse_model_uri
from tests.mlflow.conftest import needs_mlflow

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("uri", "parsed"),
    [
        ("models:/sum-of-two/3", ("sum-of-two", "3", None)),
        ("models:/sum-of-two@champion", ("sum-of-two", None, "champion")),
        ("models:/team.model_a@prod-2", ("team.model_a", None, "prod-2")),
        ("models:/sum-of-two", None),
        ("models:/sum-of-two/0", None),
        ("models:/sum-of-two/latest", None),
        ("models:/sum-of-two@", None),
        ("models:/a/b/1", None),
        ("models:sum-of-two/1", None),
        ("models:/sum of two/1", None),
    ],
)
def test_model_uris(uri: str, parsed: tuple[str, str | None, str | None] | None) -> None:
    assert parse_model_uri(uri) == parsed


def _validate(tmp_path: Path, model: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "wf.yaml"
    path.write_text(
        textwrap.dedent(f"""\
            apiVersion: sluice.dev/v1alpha1
            kind: Workflow
            metadata: {{name: serve}}
            spec:
              steps:
                - name: deploy
                  uses: sluice/deploy
                  with: {{model: "{model}", target: local}}
            """)
    )
    return subprocess.run(
        [sys.executable, "-m", "controller.cli.main", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_a_registered_model_is_a_valid_deploy_model(tmp_path: Path) -> None:
    assert _validate(tmp_path, "models:/sum-of-two@champion").returncode == 0
    assert _validate(tmp_path, "models:/sum-of-two/2").returncode == 0


def test_a_malformed_model_uri_is_a_spec_error(tmp_path: Path) -> None:
    done = _validate(tmp_path, "models:/sum-of-two")
    assert done.returncode != 0
    assert "with.model" in done.stderr + done.stdout and "models:/NAME/VERSION" in done.stderr + done.stdout


def test_the_step_environment_carries_the_tracking_uri_not_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "secret-token")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-key")
    monkeypatch.delenv("SLUICE_MLFLOW", raising=False)
    env = stepenv.host_env(tmp_path, "wf", "run-1", "default", "run-1-train", None)
    assert env["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:5000"
    assert "MLFLOW_TRACKING_TOKEN" not in env and "AWS_SECRET_ACCESS_KEY" not in env
    monkeypatch.setenv("SLUICE_MLFLOW", "off")
    assert "MLFLOW_TRACKING_URI" not in stepenv.host_env(tmp_path, "wf", "r", "default", "t", None)


@needs_mlflow
def test_without_a_uri_the_store_is_in_the_sluice_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("SLUICE_MLFLOW", raising=False)
    env = stepenv.host_env(tmp_path, "wf", "run-1", "default", "run-1-train", None)
    assert env["MLFLOW_TRACKING_URI"] == f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"


IMPORT_PROBE = """
import atexit, sys
atexit.register(lambda: print("MLFLOW-IMPORTED" if "mlflow" in sys.modules else "NO-MLFLOW", file=sys.stderr))
sys.argv = {argv!r}
import runpy
runpy.run_module({module!r}, run_name="__main__")
"""


def _probe(module: str, argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = IMPORT_PROBE.format(module=module, argv=argv)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env, cwd=ROOT
    )


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


@pytest.mark.parametrize(
    "argv", [["sluice", "--help"], ["sluice", "validate", str(ROOT / "workflows" / "sum-of-two.yaml")]]
)
def test_the_cli_never_imports_mlflow(argv: list[str]) -> None:
    done = _probe("controller.cli.main", argv, _env(MLFLOW_TRACKING_URI="http://127.0.0.1:1"))
    assert "NO-MLFLOW" in done.stderr, done.stderr


def _prepare(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    argv = [
        "prepare",
        "--generator",
        "sum-of-two",
        "--samples",
        "200",
        "--artifacts-dir",
        str(tmp_path / "p"),
    ]
    return _probe("stages.prepare", argv, env)


def test_a_stage_without_a_tracking_uri_does_not_import_mlflow(tmp_path: Path) -> None:
    done = _prepare(tmp_path, _env(SLUICE_HOME=str(tmp_path)))
    assert done.returncode == 0, done.stderr
    assert "NO-MLFLOW" in done.stderr


@needs_mlflow
@pytest.mark.timeout(180)
def test_an_unreachable_tracking_server_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    done = _prepare(tmp_path, _env(SLUICE_HOME=str(tmp_path), MLFLOW_TRACKING_URI="http://127.0.0.1:1"))
    assert done.returncode == 0, done.stderr
    assert "mlflow: warning: tracking is off for this step" in done.stderr
    assert (tmp_path / "p" / "dataset" / "manifest.json").is_file()


def test_promote_without_tracking_sets_nothing_and_succeeds(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.json").write_text(json.dumps({"format": "sluice.model/v1"}))
    result = tmp_path / "version"
    argv = ["promote", "--model", str(model), "--alias", "champion", "--result", f"version={result}"]
    done = _probe("stages.promote", argv, _env(SLUICE_MLFLOW="off"))
    assert done.returncode == 0, done.stderr
    assert "no alias set" in done.stdout and result.read_text() == ""
    assert "NO-MLFLOW" in done.stderr


def test_promote_rejects_an_alias_mlflow_reserves(tmp_path: Path) -> None:
    done = _probe("stages.promote", ["promote", "--model", str(tmp_path), "--alias", "v2"], _env())
    assert done.returncode == 1 and "not latest or vN" in done.stderr
