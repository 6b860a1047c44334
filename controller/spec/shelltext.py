"""Where a step's text is read as code, and in which shell quoting each `{{ ... }}` reference sits.

Tekton (and the local executor) paste `$(params.X)` into `script` and `command`/`args` text, so a
value would become code wherever a shell or another interpreter parses that text. The compiler
passes every such value as an environment variable instead (`TaskRenderer.shell_text`); this module
says where that applies and how each reference must be written there:

- `script` without a shebang or with a shell's (sh, bash, dash, ...), and the command string of a
  shell's `-c` (`command: [sh, -c, TEXT]`, `command: [bash]` + `args: [-ec, TEXT]`): shell text.
  A reference outside quotes becomes `"${VAR}"`, inside double quotes or an unquoted
  here-document `${VAR}`: the shell expands it once, as data. Inside single quotes (or `$'...'`,
  or a here-document with a quoted delimiter) nothing expands, and inside `$(( ))` the value would
  be evaluated (code, in bash): those are refused.
- a `script` with another interpreter's shebang (python, ...) and the code argument of
  `python -c`, `perl -e`, `node -e`...: code in a language with no such quoting; refused.
- any other `command`/`args` item is one argv entry: data as it is.

Compiler-made paths (`{{ outputs.O.path }}`, `{{ inputs.C.path }}`) hold no outside data and stay
in the text (a Python script may use them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

from controller.spec.expressions import ExpressionError, parse_template
from controller.spec.model import (
    ExtensionRef,
    InputRef,
    Literal_,
    OutputPathRef,
    Ref,
    Step,
    StepOutputRef,
    Template,
)

SHELLS = frozenset({"sh", "bash", "dash", "ash", "ksh", "mksh", "zsh", "yash", "posh"})
# interpreter -> the options whose next argument is program text
CODE_OPTIONS: dict[str, frozenset[str]] = {
    "python": frozenset({"-c"}),
    "perl": frozenset({"-e", "-E"}),
    "ruby": frozenset({"-e"}),
    "node": frozenset({"-e", "--eval", "-p", "--print"}),
    "deno": frozenset({"eval"}),
    "php": frozenset({"-r"}),
}

Context = Literal["unquoted", "double", "heredoc", "single", "quoted-heredoc", "arithmetic"]
REFUSED: dict[str, tuple[str, str]] = {  # where, and what to do instead
    "single": (
        "inside single quotes (or $'...'), where a shell expands nothing",
        "end the quotes before it ('...'\"{{ ... }}\"'...') or use double quotes",
    ),
    "quoted-heredoc": (
        "in a here-document with a quoted delimiter, where a shell expands nothing",
        "use an unquoted delimiter (<<EOF)",
    ),
    "arithmetic": (
        "inside $(( )) arithmetic, where a shell would evaluate the value (code, in bash)",
        "pass it through env: and check it is a number before computing with it",
    ),
}


def ref_text(ref: Ref) -> str:
    if isinstance(ref, InputRef):
        body = f"inputs.{ref.name}" + (f".{ref.attr}" if ref.attr else "")
    elif isinstance(ref, StepOutputRef):
        body = f"steps.{ref.step}.outputs.{ref.output}"
    elif isinstance(ref, ExtensionRef):
        body = ".".join(("extensions", ref.extension, *ref.path))
    else:
        body = f"outputs.{ref.output}.path"
    return "{{ " + body + " }}"


def is_path_ref(ref: Ref) -> bool:
    """A compiler-made path: no outside data, so it may stay in any text."""
    return isinstance(ref, OutputPathRef) or (isinstance(ref, InputRef) and ref.attr == "path")


def value_refs(template: Template) -> list[Ref]:
    return [ref for ref in template.refs if not is_path_ref(ref)]


def _program(path: str) -> str:
    """`/usr/bin/python3.12` -> `python`; `bash` -> `bash`."""
    name = PurePosixPath(path).name
    base = name.rstrip("0123456789.")
    return base if base in CODE_OPTIONS or base in SHELLS else name


def interpreter(script: str) -> str:
    """The program a `script` runs under: its shebang's (through `env`), or `sh` without one."""
    if not script.startswith("#!"):
        return "sh"
    words = script[2:].split("\n", 1)[0].split()
    if words and PurePosixPath(words[0]).name == "env":
        words = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
    return _program(words[0]) if words else "sh"


@dataclass(frozen=True)
class CodeText:
    """One place a step's text is program text: which field, its template, and whose language."""

    field: str  # `.script`, `.command[2]`, `.args[0]` (after the step's path)
    template: Template
    language: str  # `sh`, `bash`, ... (shell text) or `python`, `perl`, ...

    @property
    def shell(self) -> bool:
        return self.language in SHELLS


def code_texts(step: Step) -> list[CodeText]:
    """The step's texts a shell or another interpreter reads as code (those with references)."""
    found: list[CodeText] = []
    if step.script is not None and "{{" in step.script:
        template = _parsed(step.script)
        if template is not None:
            found.append(CodeText(".script", template, interpreter(step.script)))
    command = list(step.command or ())
    argv = [*command, *(a.raw for a in step.args)]
    item = code_item(argv)
    if item is not None and "{{" in argv[item.index]:
        inside = item.index < len(command)
        template = _parsed(argv[item.index]) if inside else step.args[item.index - len(command)]
        field = f".command[{item.index}]" if inside else f".args[{item.index - len(command)}]"
        if template is not None:
            found.append(CodeText(field, template, item.program))
    return found


def _parsed(text: str) -> Template | None:
    try:
        return parse_template(text)
    except ExpressionError:
        return None  # reported where the text is read (expr.syntax)


def check_code_texts(step: Step, report: Callable[[str, str, str], None]) -> None:
    """Report (field, code, message) for each reference that could not be passed as data."""
    for text in code_texts(step):
        if not text.shell:
            for ref in value_refs(text.template):
                report(
                    text.field,
                    "ref.code-text",
                    f"{ref_text(ref)} would be pasted into {text.language} code, where it could run as "
                    f'code: pass it through env: (env: {{NAME: "{ref_text(ref)}"}}) and read the '
                    "environment variable",
                )
            continue
        for ref, ctx in shell_contexts(text.template):
            if ctx in REFUSED and not is_path_ref(ref):
                report(
                    text.field,
                    "ref.shell-quoting",
                    f"{ref_text(ref)} is {REFUSED[ctx][0]}: values reach shell text as environment "
                    f"variables, to be data; {REFUSED[ctx][1]}",
                )


@dataclass(frozen=True)
class CodeItem:
    index: int  # in command + args
    program: str  # `sh`, `bash`, `python`, ...


def code_item(argv: Sequence[str]) -> CodeItem | None:
    """Which item of `command + args` is program text: a shell's `-c` string, `python -c CODE`..."""
    start = 0
    while start < len(argv):  # `env [NAME=VALUE]... PROGRAM`, `busybox sh`
        name = PurePosixPath(argv[start]).name
        if name == "env":
            start += 1
            while start < len(argv) and ("=" in argv[start] or argv[start].startswith("-")):
                start += 1
        elif name == "busybox":
            start += 1
        else:
            break
    if start >= len(argv):
        return None
    program = _program(argv[start])
    if program in SHELLS:
        command_string = False
        i = start + 1
        while i < len(argv):
            item = argv[i]
            if item == "--":
                i += 1
                break
            if item.startswith(("-", "+")) and len(item) > 1:
                if item.startswith("-") and not item.startswith("--") and "c" in item[1:]:
                    command_string = True
                if item[1:] in ("o", "O") or (item.startswith("--") and item in ("--rcfile", "--init-file")):
                    i += 1  # an option with an argument
                i += 1
                continue
            break
        return CodeItem(i, program) if command_string and i < len(argv) else None
    options = CODE_OPTIONS.get(program)
    if options:
        for i in range(start + 1, len(argv) - 1):
            if argv[i] in options:
                return CodeItem(i + 1, program)
    return None


def shell_contexts(template: Template) -> list[tuple[Ref, Context]]:
    """Each reference of shell text with the quoting it sits in."""
    text_parts: list[str] = []
    offsets: list[tuple[int, Ref]] = []
    length = 0
    for part in template.parts:
        if isinstance(part, Literal_):
            text_parts.append(part.text)
            length += len(part.text)
        else:
            offsets.append((length, part))
    scanner = _Scanner("".join(text_parts), offsets)
    scanner.scan(0, len(scanner.text), "unquoted")
    scanner.place(len(scanner.text), "unquoted")
    return [(ref, ctx or "unquoted") for (_, ref), ctx in zip(offsets, scanner.found, strict=True)]


_STATE_CONTEXT: dict[str, Context] = {
    "unquoted": "unquoted",
    "command": "unquoted",
    "backtick": "unquoted",
    "comment": "unquoted",
    "double": "double",
    "heredoc-body": "heredoc",
    "single": "single",
    "dollar-single": "single",
    "arithmetic": "arithmetic",
}


class _Scanner:
    """A small POSIX shell lexer: quotes, escapes, `$( )`, backticks, `$(( ))`, comments, heredocs.

    It only has to place references; an odd construct it misreads (a `case` pattern's `)` inside
    `$( )`) makes a value lose its exact form (word splitting) or be refused, never run: every
    reference is emitted as a `${VAR}` expansion, whose result no shell parses again.
    """

    def __init__(self, text: str, offsets: list[tuple[int, Ref]]):
        self.text = text
        self.offsets = offsets
        self.found: list[Context | None] = [None] * len(offsets)

    def place(self, i: int, ctx: Context, *, below: bool = False) -> None:
        """The references at or before `i` (strictly before with `below`) not placed yet are in `ctx`."""
        for n, (offset, _) in enumerate(self.offsets):
            if self.found[n] is None and (offset < i if below else offset <= i):
                self.found[n] = ctx

    def scan(self, i: int, end: int, base: str) -> None:
        text = self.text
        stack: list[list] = [[base, 0]]  # [state, parenthesis depth]
        pending: list[tuple[str, bool, bool]] = []  # here-documents to read after the line
        while i < end:
            state = str(stack[-1][0])
            self.place(i, _STATE_CONTEXT[state])
            c = text[i]
            if state in ("single", "dollar-single"):
                if c == "\\" and state == "dollar-single":
                    i += 1
                elif c == "'":
                    stack.pop()
                i += 1
            elif state == "comment":
                if c == "\n":
                    stack.pop()  # the newline is read by the state below (here-documents)
                    continue
                i += 1
            elif state == "arithmetic":
                if c == "(":
                    stack[-1][1] += 1
                elif c == ")":
                    if stack[-1][1] == 0:
                        stack.pop()
                        i += 1  # the second `)`
                    else:
                        stack[-1][1] -= 1
                i += 1
            elif state in ("double", "heredoc-body"):
                if c == "\\":
                    i += 2
                elif c == '"' and state == "double":
                    stack.pop()
                    i += 1
                else:
                    i = self._expansion(i, stack)
            else:  # unquoted, command, backtick
                if c == "\\":
                    i += 2
                elif c == "'":
                    stack.append(["single", 0])
                    i += 1
                elif c == '"':
                    stack.append(["double", 0])
                    i += 1
                elif text.startswith("$'", i):
                    stack.append(["dollar-single", 0])
                    i += 2
                elif c == "`" and state == "backtick":
                    stack.pop()
                    i += 1
                elif c == "(" and state == "command":
                    stack[-1][1] += 1
                    i += 1
                elif c == ")" and state == "command":
                    stack[-1][1] -= 1
                    if stack[-1][1] <= 0:
                        stack.pop()
                    i += 1
                elif c == "#" and (i == 0 or text[i - 1] in " \t\n;&|()<>"):
                    stack.append(["comment", 0])
                    i += 1
                elif text.startswith("<<", i) and not text.startswith("<<<", i):
                    i = self._heredoc_word(i + 2, pending)
                elif c == "\n":
                    i += 1
                    if pending:
                        i = self._bodies(i, end, pending)
                        pending = []
                else:
                    i = self._expansion(i, stack)

    def _expansion(self, i: int, stack: list[list]) -> int:
        """`$((`, `$(` or a backtick opens a frame; any other character is read as it is."""
        text = self.text
        if text.startswith("$((", i):
            stack.append(["arithmetic", 0])
            return i + 3
        if text.startswith("$(", i):
            stack.append(["command", 1])
            return i + 2
        if text[i] == "`":
            stack.append(["backtick", 0])
        return i + 1

    def _heredoc_word(self, i: int, pending: list[tuple[str, bool, bool]]) -> int:
        text = self.text
        strip = text.startswith("-", i)
        i += 1 if strip else 0
        while i < len(text) and text[i] in " \t":
            i += 1
        start = i
        while i < len(text) and text[i] not in " \t\n;&|()<>":
            i += 1
        raw = text[start:i]
        word = raw.replace("'", "").replace('"', "").replace("\\", "")
        if word:
            pending.append((word, word != raw, strip))
        return i

    def _bodies(self, i: int, end: int, pending: list[tuple[str, bool, bool]]) -> int:
        """Read the here-documents that start at `i`; the position after the last delimiter line."""
        text = self.text
        for word, quoted, strip in pending:
            start = i
            body_end = end
            while i < end:
                newline = text.find("\n", i, end)
                line_end = end if newline < 0 else newline
                line = text[i:line_end]
                if (line.lstrip("\t") if strip else line) == word:
                    body_end = i
                    i = line_end + 1
                    break
                i = line_end + 1
            if quoted:
                self.place(body_end, "quoted-heredoc", below=True)
            else:
                self.scan(start, body_end, "heredoc-body")
                self.place(body_end, "heredoc", below=True)
        return min(i, end)
