"""Fixtures for compiler tests: example workflows, a FuseML extension registry, tekton-lint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from controller.compiler import CodesetSource, ExtensionRegistry, compile_run
from controller.spec import load_workflow
from controller.spec.extension_files import read_extension_files
from controller.spec.model import Workflow
from tests.compiler import tektonlint
from tests.compiler.upstream import UpstreamSchemas, shared

PROJECT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden"
EXTENSIONS = HERE / "extensions"
STAGES_IMAGE = "ghcr.io/sluice-dev/sluice-stages:0.1.0"
PINNED = "4f1c0a7e9b2d3c5a6e8f0b1d2c3a4e5f6a7b8c9d"

# Every example workflow shipped with Sluice, plus the compiler's own test workflows.
EXAMPLES: dict[str, Path] = {
    **{p.stem: p for p in sorted((PROJECT / "workflows").glob("*.yaml"))},
    **{p.stem: p for p in sorted((HERE / "workflows").glob("*.yaml"))},
}


def codesets_for(workflow: Workflow) -> dict[str, CodesetSource]:
    """A pinned repository per codeset input; the first one with a credentials Secret."""
    return {
        declared.name: CodesetSource(
            f"https://github.com/example/{declared.name}.git",
            PINNED,
            "git-credentials" if index == 0 else None,
        )
        for index, declared in enumerate(workflow.codeset_inputs)
    }


def compile_example(name: str, registry: ExtensionRegistry, **overrides: Any) -> dict[str, Any]:
    workflow = load_workflow(str(EXAMPLES[name]))
    options: dict[str, Any] = {
        "codesets": codesets_for(workflow),
        "extensions": registry,
        "stages_image": STAGES_IMAGE,
    }
    options.update(overrides)
    return compile_run(workflow, **options)


@pytest.fixture(scope="session")
def registry() -> ExtensionRegistry:
    return ExtensionRegistry.from_sources(read_extension_files([EXTENSIONS]))


@pytest.fixture(scope="session")
def upstream() -> UpstreamSchemas:
    return shared()


@pytest.fixture(scope="session")
def tekton_lint() -> Any:
    """tekton-lint, installed into .tools/node on first use (npm); its problems for a PipelineRun."""
    tektonlint.ensure_installed()
    return tektonlint.lint_pipelinerun
