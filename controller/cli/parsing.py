"""Command-line parsing click does not do by itself.

`sluice predict NAME -5 -7`: click reads any word starting with `-` as an option, so a negative
number given as a value fails with `No such option: -5` (three-body inputs are mostly negative).
`NumbersAsValues` commands read such words as values: before click parses, every option the
command knows (with its value) is moved in front of a `--`, and the values follow it in their
order. A word that starts with `-` and is neither a known option nor a number stays an option,
so click still reports a mistyped one.
"""

from __future__ import annotations

import re
from typing import Any

import typer.core

NEGATIVE_NUMBER = re.compile(r"-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?|-(inf|infinity|nan)", re.IGNORECASE)


def _takes_value(params: list[Any]) -> dict[str, bool]:
    """Every option name of the command -> whether a value follows it. (typer carries its own
    copy of click: its parameters are recognised by what they have, not by class.)"""
    names: dict[str, bool] = {}
    for param in params:
        if getattr(param, "param_type_name", "") != "option":
            continue
        flag = bool(getattr(param, "is_flag", False) or getattr(param, "count", False))
        for name in param.opts:
            names[name] = not flag
        for name in getattr(param, "secondary_opts", []):
            names[name] = False
    return names


def values_after_options(args: list[str], params: list[Any]) -> list[str]:
    """`args` with every known option first, then `--`, then the values (negative numbers too)."""
    known = _takes_value(params)
    options: list[str] = []
    values: list[str] = []
    i = 0
    while i < len(args):
        word = args[i]
        if word == "--":
            values.extend(args[i + 1 :])
            break
        name = word.split("=", 1)[0]
        if word.startswith("-") and name in known:
            options.append(word)
            if known[name] and "=" not in word and i + 1 < len(args):
                options.append(args[i + 1])
                i += 1
        elif word.startswith("-") and not NEGATIVE_NUMBER.fullmatch(word):
            options.append(word)  # an unknown option: click says so
        else:
            values.append(word)
        i += 1
    return [*options, "--", *values] if values else options


class NumbersAsValues(typer.core.TyperCommand):
    """A command whose values may be negative numbers (`-5`, `-0.25`, `-1e3`)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return list(super().parse_args(ctx, values_after_options(args, self.get_params(ctx))))
