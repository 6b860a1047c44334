"""What users copy from the docs works: every `sluice ...` command line shown in docs/*.md and
README.md names a command and options that exist, and every YAML snippet that is a whole
Workflow (native or FuseML), Codeset or WorkflowRun is valid as it stands."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from controller.api.crds import all_crds
from controller.cli.commands_runs import LIST_COMMAND
from controller.cli.main import command
from controller.spec import SpecError, load_workflow_text

REPO = Path(__file__).resolve().parents[1]
PAGES = sorted([*REPO.glob("docs/*.md"), REPO / "README.md"])
FENCED = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
INLINE = re.compile(r"`(sluice [^`]*)`")
# groups that hand anything not naming a subcommand to a default one (`sluice runs [RUN]`)
DEFAULT_SUBCOMMAND = {"runs": LIST_COMMAND}
# kind -> the CRD file whose schema a snippet of that kind must satisfy
RESOURCE_CRDS = {"Codeset": "codesets.yaml", "WorkflowRun": "workflowruns.yaml"}


def _where(page: Path, text: str, offset: int) -> str:
    return f"{page.relative_to(REPO)}:{text.count(chr(10), 0, offset) + 1}"


def _command_lines() -> Iterator[tuple[str, str]]:
    """(page:line, command) for each shell line in a fenced block and each inline `sluice ...`."""
    for page in PAGES:
        text = page.read_text()
        fenced = [(m.start(2), m.group(2)) for m in FENCED.finditer(text)]
        for start, body in fenced:
            for n, line in enumerate(body.splitlines()):
                shell = line.strip().removeprefix("$ ")
                if shell.startswith("sluice "):
                    offset = start + sum(len(x) + 1 for x in body.splitlines()[:n])
                    yield _where(page, text, offset), shell.split(" #")[0]
        for match in INLINE.finditer(text):
            if not any(start <= match.start() < start + len(body) for start, body in fenced):
                yield _where(page, text, match.start()), match.group(1)


def _words(line: str) -> list[str]:
    # a synopsis's brackets, ellipses and alternatives are notation, not words
    return re.sub(r"[\[\]\\|]|\.\.\.", " ", line).split()


def _options(cmd: Any) -> set[str]:
    names = {"-h", "--help"}
    for param in cmd.params:
        names |= {*param.opts, *param.secondary_opts}
    return names


def _check(line: str) -> list[str]:
    """What in LINE does not exist: an unknown command, or options the command does not have."""
    words = _words(line)[1:]
    cmd = command()
    while hasattr(cmd, "commands") and words and not words[0].startswith("-"):
        if words[0].endswith(":") or words[0].startswith(
            "<"
        ):  # output: `sluice runs: ...`, `sluice <version>`
            return []
        if words[0] not in cmd.commands and cmd.name not in DEFAULT_SUBCOMMAND:
            return [f"no command {words[0]!r}"]
        cmd = cmd.commands[words.pop(0)] if words[0] in cmd.commands else cmd
        if cmd.name in DEFAULT_SUBCOMMAND and not (words and words[0] in cmd.commands):
            cmd = cmd.commands[DEFAULT_SUBCOMMAND[cmd.name]]
    if words and words[0].endswith(":"):
        return []
    known = _options(cmd)
    flags = [w for w in words if w.startswith("-") and w != "--" and not re.match(r"-[\d.]", w)]
    shown = {name for flag in flags for name in flag.split("=")[0].rstrip(",:").split("/")}
    return [f"{cmd.name} has no option {name}" for name in sorted(shown - known)]


COMMAND_LINES = list(_command_lines())


def test_the_docs_show_commands() -> None:
    # the extraction finds what it is meant to: a synopsis, an example and an inline mention
    lines = {line for _, line in COMMAND_LINES}
    assert "sluice runs prune --keep 5" in {line.strip() for line in lines}
    assert len(COMMAND_LINES) > 150


def test_every_sluice_command_line_in_the_docs_exists() -> None:
    wrong = [
        f"{where}: {line.strip()}: {problem}" for where, line in COMMAND_LINES for problem in _check(line)
    ]
    assert not wrong, "\n".join(wrong)


def test_a_mistyped_option_or_command_is_caught() -> None:
    assert _check("sluice run x.yaml --container") == ["run has no option --container"]
    assert _check("sluice runs --cluster -A --namespaces ml") == ["list has no option --namespaces"]
    assert _check("sluice sumbit sum-of-two") == ["no command 'sumbit'"]
    assert _check("sluice runs prune --keep 5") == []


def _yaml_documents() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for page in PAGES:
        text = page.read_text()
        for match in FENCED.finditer(text):
            if match.group(1) not in ("yaml", "yml", ""):
                continue
            try:
                documents = list(yaml.safe_load_all(match.group(2)))
            except yaml.YAMLError:
                assert match.group(1) == "", f"{_where(page, text, match.start(2))}: not YAML"
                continue
            for document in documents:
                if isinstance(document, dict):
                    yield _where(page, text, match.start(2)), match.group(2), document


def _is_workflow(document: dict[str, Any]) -> bool:
    native = document.get("kind") == "Workflow" and str(document.get("apiVersion", "")).startswith(
        "sluice.dev/"
    )
    fuseml = "apiVersion" not in document and {"name", "steps"} <= document.keys()
    return native or fuseml


WORKFLOWS = [(where, body) for where, body, doc in _yaml_documents() if _is_workflow(doc)]
RESOURCES = [(where, doc) for where, _, doc in _yaml_documents() if doc.get("kind") in RESOURCE_CRDS]


@pytest.mark.parametrize(("where", "body"), WORKFLOWS, ids=[where for where, _ in WORKFLOWS])
def test_every_whole_workflow_in_the_docs_validates(where: str, body: str) -> None:
    documents = [d for d in yaml.safe_load_all(body) if isinstance(d, dict) and _is_workflow(d)]
    for document in documents:
        try:
            load_workflow_text(yaml.safe_dump(document), where)
        except SpecError as exc:
            pytest.fail("\n".join(d.format() for d in exc.diagnostics))


@pytest.mark.parametrize(("where", "document"), RESOURCES, ids=[where for where, _ in RESOURCES])
def test_every_codeset_and_workflowrun_in_the_docs_fits_its_crd(where: str, document: dict[str, Any]) -> None:
    crd = all_crds()[RESOURCE_CRDS[document["kind"]]]
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    errors = [
        f"$.{'.'.join(map(str, e.path))}: {e.message}"
        for e in jsonschema.Draft7Validator(schema).iter_errors(document)
    ]
    assert not errors, f"{where}: " + "; ".join(errors)


def test_the_docs_hold_whole_workflows_and_resources() -> None:
    assert len(WORKFLOWS) >= 5 and {d["kind"] for _, d in RESOURCES} == set(RESOURCE_CRDS)
