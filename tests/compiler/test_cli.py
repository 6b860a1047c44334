"""`sluice compile` and `sluice deploy-manifest` as a user runs them."""

from __future__ import annotations

import subprocess
import sys

import yaml

from tests.compiler.conftest import PINNED, PROJECT


def sluice(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controller.cli.main", *args],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_compile_prints_the_pipelinerun(upstream):
    done = sluice("compile", "workflows/sum-of-two.yaml", "--input", "samples=500", "--namespace", "ml")
    assert done.returncode == 0, done.stderr
    run = yaml.safe_load(done.stdout)
    assert run["kind"] == "PipelineRun" and run["metadata"]["namespace"] == "ml"
    assert {"name": "samples", "value": "500"} in run["spec"]["params"]
    assert upstream.errors(run) == []
    again = sluice("compile", "workflows/sum-of-two.yaml", "--input", "samples=500", "--namespace", "ml")
    assert again.stdout == done.stdout


# the FuseML example with its codeset given by URL
COMPILE_FUSEML = (
    "compile",
    "workflows/fuseml-mlflow-e2e.yaml",
    "--codeset=mlflow-codeset=https://github.com/fuseml/examples.git",
)


def test_compile_fuseml_with_codeset_and_extensions():
    done = sluice(
        *COMPILE_FUSEML,
        f"--codeset-revision=mlflow-codeset={PINNED}",
        "--extensions=tests/compiler/extensions",
        "--input=predictor=1.0",
    )
    assert done.returncode == 0, done.stderr
    run = yaml.safe_load(done.stdout)
    assert run["metadata"]["labels"]["sluice.dev/revision"] == PINNED
    assert {"name": "predictor", "value": "1.0"} in run["spec"]["params"]  # a string input keeps its text


def test_invalid_input_is_reported_with_file_line_and_path():
    done = sluice("compile", "workflows/three-body.yaml", "--input", "epochs=lots")
    assert done.returncode == 1
    assert done.stderr.startswith("workflows/three-body.yaml:")
    assert "$.inputs.epochs: input 'epochs' must be an integer" in done.stderr
    assert "Traceback" not in done.stderr


def test_unresolvable_extension_is_a_clear_error():
    done = sluice(*COMPILE_FUSEML, "--extensions=tests/compiler/extensions/kserve")
    assert done.returncode == 1
    assert "step 'trainer': extension selector 'mlflow-tracking'" in done.stderr


def test_usage_errors_exit_2():
    assert sluice("compile", "workflows/sum-of-two.yaml", "--input", "samples").returncode == 2
    assert sluice("compile", "workflows/sum-of-two.yaml", "--codeset-revision", f"x={PINNED}").returncode == 2
    assert (
        sluice("deploy-manifest", "--target", "triton", "--name", "m", "--model-uri", "s3://b/m").returncode
        == 2
    )


def test_deploy_manifest(upstream):
    done = sluice(
        "deploy-manifest", "--target=seldon-v1", "--name=sum", "--model-uri=s3://b/m", "--namespace=ml"
    )
    assert done.returncode == 0, done.stderr
    manifest = yaml.safe_load(done.stdout)
    assert manifest["kind"] == "SeldonDeployment"
    assert upstream.errors(manifest) == []
    bad = sluice("deploy-manifest", "--target", "kserve", "--name", "Bad_Name", "--model-uri", "s3://b/m")
    assert bad.returncode == 1 and "DNS-1035" in bad.stderr
