"""The chart and the operator agree: the rendered command line parses, the rendered environment
configures the ports the probes, Service and Ingress point at."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
import typer.main

from controller.cli.main import app
from tests.helm.conftest import Render, one
from tests.helm.test_render import SCENARIOS, container
from testsupport.processes import run_python

# Prints what the operator would configure itself with, in a fresh interpreter: settings are read
# from the environment at import time.
PROBE = """
import json
from controller import settings
from controller.operator.settings import OperatorConfig
from controller.operator.codesets.tracker import CodesetConfig
operator = OperatorConfig.from_env()
codesets = CodesetConfig.from_env()
print(json.dumps({
    "metrics": [operator.metrics_host, operator.metrics_port],
    "workers": operator.worker_limit,
    "webhooks": [codesets.webhook_host, codesets.webhook_port],
    "fetches": codesets.max_concurrent_fetches,
    "polls": codesets.max_concurrent_polls,
    "git": [
        codesets.limits.ls_remote_timeout, codesets.limits.fetch_timeout, codesets.limits.max_fetch_bytes
    ],
    "stages_image": operator.stages_image,
    "local_git": operator.allow_local_git,
}))
"""


def parse_operator_args(args: list[str]) -> dict[str, Any]:
    """Parse `sluice <args>` with the real CLI, without running the command."""
    root: Any = typer.main.get_command(app)  # typer's own (vendored) click Group
    with root.make_context("sluice", list(args), resilient_parsing=False) as ctx:
        protected = getattr(ctx, "protected_args", None) or getattr(ctx, "_protected_args", [])
        name, command, rest = root.resolve_command(ctx, [*protected, *ctx.args])
        assert name == "operator" and command is not None
        with command.make_context(name, rest, parent=ctx) as sub:
            return dict(sub.params)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_rendered_arguments_are_understood_by_sluice_operator(render: Render, scenario: str) -> None:
    args = container(render(*SCENARIOS[scenario]))["args"]
    params = parse_operator_args(args)
    expected = {
        "default": ["sluice-system"],
        "ingress": ["sluice-system"],
        "namespaced": ["team-vision", "team-forecast"],
        "clusterwide": None,  # every namespace
    }
    assert (params["namespace"] or None) == expected[scenario]
    assert params["peering"] is None  # standalone: the Deployment's single replica is the only one


def test_debug_flag_is_understood(render: Render) -> None:
    params = parse_operator_args(container(render(set_=["operator.logLevel=debug"]))["args"])
    assert params["debug"] is True


@pytest.mark.parametrize(
    "assignments",
    [
        [],
        [
            "metrics.port=9090",
            "webhooks.port=8443",
            "operator.workers=8",
            "operator.git.maxConcurrentFetches=2",
        ],
    ],
    ids=["defaults", "moved"],
)
def test_rendered_environment_configures_the_operator(render: Render, assignments: list[str]) -> None:
    objects = render(set_=assignments)
    operator = container(objects)
    rendered = {item["name"]: item["value"] for item in operator["env"] if "value" in item}
    done = run_python(PROBE, env={"PATH": os.environ.get("PATH", ""), **rendered})
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    ports = {p["name"]: p["containerPort"] for p in operator["ports"]}
    assert seen["metrics"] == ["0.0.0.0", ports["http-metrics"]]
    assert seen["webhooks"] == ["0.0.0.0", ports["http-webhooks"]]
    assert seen["workers"] == int(rendered["SLUICE_OPERATOR_WORKERS"])
    assert seen["fetches"] == int(rendered["SLUICE_CODESET_MAX_FETCHES"])
    assert seen["git"] == [30.0, 120.0, 268435456]
    assert seen["stages_image"] == rendered["SLUICE_STAGES_IMAGE"]
    assert seen["local_git"] is False  # the chart never admits file:// or private Git URLs
    # The Service routes to the ports the operator listens on.
    service = {p["name"]: p["targetPort"] for p in one(objects, "Service")["spec"]["ports"]}
    assert set(service.values()) == set(ports)


def test_disabled_webhooks_turn_the_receiver_off(render: Render) -> None:
    rendered = {
        i["name"]: i["value"]
        for i in container(render(set_=["webhooks.enabled=false"]))["env"]
        if "value" in i
    }
    done = run_python(PROBE, env={"PATH": os.environ.get("PATH", ""), **rendered})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["webhooks"][1] == -1
