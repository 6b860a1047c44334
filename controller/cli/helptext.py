"""Help that reads well at 80 columns: value types as words, defaults shown, no markup surprises.

typer prints a parameter's type from its Python annotation (`<list[str]>`, `<bool>`, `<int range>`)
and an argument as `{path} <path>`; its rich panels re-wrap words inside boxes and read `[cores]` in
a help text as markup (leaving "Tasks at a time ."). Sluice prints click's plain help instead
(`rich_markup_mode=None` on the app, `show_default` in its context settings) and, once the
command tree is built, gives every parameter the words click users know: `TEXT`, `PATH`,
`INTEGER`, `NUMBER`, an option's own metavar (`NAME=VALUE`), arguments as `PATH` / `[VALUES]...`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, get_args, get_origin

from typer.core import TyperArgument, TyperOption

# Python type of a value -> the word help shows for it (click's own words).
TYPE_WORDS: dict[Any, str] = {
    str: "TEXT",
    int: "INTEGER",
    float: "NUMBER",
    bool: "BOOLEAN",
    Path: "PATH",
    datetime: "DATETIME",
}


def type_word(param: Any) -> str:
    """The word for one value of `param`: its choices, or its type's word, or TEXT."""
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is not None and getattr(descriptor, "is_choice", False):
        return "[" + "|".join(str(getattr(c, "value", c)) for c in descriptor.choices or ()) + "]"
    annotation = getattr(descriptor, "annotation", str)
    if get_origin(annotation) in (list, tuple):
        annotation = (get_args(annotation) or (str,))[0]
    return TYPE_WORDS.get(annotation, "TEXT")


class _WordsOption(TyperOption):
    def display_type_rich(self, ctx: Any) -> str | None:
        return self.metavar if self.metavar is not None else type_word(self)


class _WordsArgument(TyperArgument):
    def display_type_rich(self, ctx: Any) -> str | None:
        return None  # the argument's name already says it (`PATH`)

    def _usage_display_name(self) -> str:
        name = self.display_name_raw
        name = name if self.required else f"[{name}]"
        return f"{name}..." if self.nargs != 1 else name


def _whole_words() -> None:
    """Wrap help at spaces only: click's wrapper would also cut `seldon-v1` or `in-cluster` at the
    hyphen. (typer's own copy of click wraps its help; nothing else uses that wrapper.)"""
    from typer._click import _textwrap

    # textwrap splits words with `wordsep_re` when breaking on hyphens, at whitespace otherwise
    _textwrap.TextWrapper.wordsep_re = _textwrap.TextWrapper.wordsep_simple_re


def readable(command: Any) -> Any:
    """Give every parameter of `command` and its subcommands the words above; returns `command`."""
    _whole_words()
    for param in getattr(command, "params", []):
        if isinstance(param, TyperOption):
            param.__class__ = _WordsOption  # only the display methods differ
        elif isinstance(param, TyperArgument):
            if param.metavar is None:
                param.metavar = (param.name or "value").upper()
            param.__class__ = _WordsArgument
    for sub in getattr(command, "commands", {}).values():
        if not sub.short_help and sub.help:
            # the whole first paragraph in the command list: click would cut it at 45 characters
            sub.short_help = " ".join(sub.help.split("\n\n")[0].split())
        readable(sub)
    return command
