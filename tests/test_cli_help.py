"""Every command's help at 80 columns, as `COLUMNS=80 sluice CMD --help` prints it: types as words,
whole words, no stray spaces, defaults shown, nothing wider than the terminal."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from controller.cli.main import command

REPO = Path(__file__).resolve().parents[1]
WIDTH = 80


def _commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found = [(path, group)]
    for name, sub in sorted(getattr(group, "commands", {}).items()):
        found += _commands(sub, (*path, name))
    return found


COMMANDS = _commands(command())


def _help(path: tuple[str, ...]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "controller.cli.main", *path, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, "COLUMNS": str(WIDTH), "TERM": "dumb"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done.stdout


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_every_command_is_listed() -> None:
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"", "run", "validate", "compile", "predict", "endpoints stop"} <= names


@pytest.mark.parametrize("path", [path for path, _ in COMMANDS], ids=lambda p: " ".join(p) or "sluice")
def test_help_reads_well_at_80_columns(path: tuple[str, ...]) -> None:
    cmd = dict(COMMANDS)[path]
    text = _help(path)
    lines = text.splitlines()
    assert all(len(line) <= WIDTH for line in lines), [line for line in lines if len(line) > WIDTH]
    assert lines[0].startswith(" ".join(["Usage: sluice", *path]))
    assert "{" not in lines[0]  # arguments as NAME / [NAME]..., not {name}
    assert not re.search(r"<[a-z][\w\[\], |]*>", text), "types are words (TEXT, PATH), not <list[str]>"
    assert not re.search(r"\w [.,;:](\s|$)", text), "no space before punctuation"
    flat = _flat(text)
    if cmd.help:  # the description, words whole (never cut at a hyphen or mid-word)
        assert _flat(cmd.help.split("\n\n")[0]) in flat
    for param in cmd.params:
        if param.help:
            assert _flat(param.help) in flat, param.help
        if getattr(param, "param_type_name", "") == "argument":
            assert param.metavar.isupper() and param.metavar in text
            continue
        if param.is_flag or param.count:
            continue
        word = re.escape(max(param.opts, key=len)) + r" (?P<type>\S+)"
        shown = re.search(word, text)
        assert shown and re.fullmatch(r"[A-Z][A-Z_=\[\]#]*|\[[^\]]+\]|JSON", shown["type"]), param.opts
        if isinstance(param.show_default, str):
            assert f"[default: ({param.show_default})" in flat
        elif param.default not in (None, [], ()):
            assert f"[default: {param.default}" in flat, param.opts


def test_the_command_list_gives_whole_sentences() -> None:
    text = _help(())
    flat = _flat(text)
    for path, cmd in COMMANDS:
        if len(path) == 1 and cmd.help:
            assert _flat(cmd.help.split("\n\n")[0]) in flat
    assert "..." not in text.split("Commands:")[1]  # nothing cut short
