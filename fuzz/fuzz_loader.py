"""Coverage-guided fuzzing of the workflow loader with atheris (libFuzzer for Python).

Any bytes go through `load_workflow_bytes` (size and encoding checks, the event-based YAML parser,
the JSON Schema, the typed model, semantic checks) and, when they load, through `compile_run`. The
only acceptable outcomes are a workflow, a `SpecError` or a `CompileError`; any other exception is
a crash that atheris reports with the input that caused it.

    pip install atheris                      # a prebuilt wheel on Linux x86_64, CPython 3.11
    python fuzz/fuzz_loader.py -atheris_runs=200000 fuzz/corpus   # or any libFuzzer options
    python fuzz/fuzz_loader.py --smoke 500   # without atheris: seeds plus random byte mutations

Seeds are the example workflows (`workflows/*.yaml`) and the compiler's test workflows; a corpus
folder given on the command line is where libFuzzer keeps the inputs it finds interesting.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable as a script from anywhere
    sys.path.insert(0, str(ROOT))

SEEDS = sorted((ROOT / "workflows").glob("*.yaml")) + sorted(
    (ROOT / "tests" / "compiler" / "workflows").glob("*.yaml")
)
SHA = "4f1c0a7e9b2d3c5a6e8f0b1d2c3a4e5f6a7b8c9d"


def make_target() -> Callable[[bytes], str]:
    """The function under test; imported here so atheris can instrument the imports."""
    from controller.compiler import CodesetSource, CompileError, compile_run
    from controller.spec import SpecError, load_workflow_bytes

    def one_input(data: bytes) -> str:
        try:
            workflow = load_workflow_bytes(data, "fuzz.yaml")
        except SpecError as exc:
            if not exc.diagnostics:
                raise AssertionError("a SpecError without diagnostics") from exc
            return "spec-error"
        codesets = {
            i.name: CodesetSource(f"https://github.com/example/{i.name}.git", SHA)
            for i in workflow.codeset_inputs
        }
        try:
            compile_run(workflow, codesets=codesets, run_name="fuzz-run")
        except CompileError:
            return "compile-error"
        return "compiled"

    return one_input


def mutate(data: bytes, rng: random.Random) -> bytes:
    """A few byte-level edits, like a dumb fuzzer: flips, deletions, insertions, splices."""
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        choice = rng.random()
        position = rng.randrange(len(buffer) + 1)
        if choice < 0.3 and buffer:
            buffer[min(position, len(buffer) - 1)] = rng.randrange(256)
        elif choice < 0.55 and buffer:
            del buffer[position : position + rng.randint(1, 16)]
        elif choice < 0.8:
            buffer[position:position] = rng.choice(
                [
                    b"&a ",
                    b"*a",
                    b"!!python/object ",
                    b"[",
                    b"{",
                    b"\t",
                    b"\xff",
                    b"{{ steps.",
                    b" }}",
                    b"\n- ",
                    b": ",
                    b"---\n",
                    b"\x00",
                ]
            )
        else:
            start = rng.randrange(len(buffer) + 1)
            buffer[position:position] = buffer[start : start + rng.randint(1, 64)]
    return bytes(buffer)


def smoke(count: int, seed: int = 0) -> dict[str, int]:
    """Without atheris: every seed, then `count` random mutations of them; raises on a crash."""
    target = make_target()
    rng = random.Random(seed)
    seeds = [p.read_bytes() for p in SEEDS]
    outcomes: dict[str, int] = {}
    for data in seeds + [mutate(rng.choice(seeds), rng) for _ in range(count)]:
        outcome = target(data)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[1] == "--smoke":
        count = int(argv[2]) if len(argv) > 2 else 200
        outcomes = smoke(count)
        print(f"fuzz_loader smoke: {sum(outcomes.values())} inputs, no crash: {outcomes}")
        return 0
    try:
        import atheris
    except ImportError:
        print("atheris is not installed (pip install atheris); try --smoke N", file=sys.stderr)
        return 2
    with atheris.instrument_imports(include=["controller", "yaml", "fastjsonschema", "jsonschema"]):
        target = make_target()

    def test_one_input(data: bytes) -> None:
        target(data)

    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
