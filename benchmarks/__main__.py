"""`python -m benchmarks [NAME...] [--quick]`: one JSON object per line per measured figure."""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
from inspect import signature
from pathlib import Path

_SKIP = {"common"}


def available() -> list[str]:
    here = Path(__file__).parent
    return sorted(
        m.name.replace("_", "-")
        for m in pkgutil.iter_modules([str(here)])
        if m.name not in _SKIP and not m.name.startswith("_")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "names", nargs="*", help=f"benchmarks to run (default: all of {', '.join(available())})"
    )
    parser.add_argument("--quick", action="store_true", help="a short smoke run (CI)")
    parser.add_argument(
        "--examples", type=Path, help="tekton-conformance: a folder of Tekton examples (skipped without)"
    )
    args = parser.parse_args(argv)
    names = args.names or available()
    unknown = [n for n in names if n not in available()]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(available())}")
    failed = False
    for name in names:
        module = importlib.import_module(f"benchmarks.{name.replace('-', '_')}")
        try:
            # options only some benchmarks take are passed to those whose run() declares them
            extra = {"examples": args.examples} if "examples" in signature(module.run).parameters else {}
            rows = module.run(quick=args.quick, **extra)
        except Exception as exc:  # one broken benchmark must not hide the others
            print(f"benchmark {name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            failed = True
            continue
        for item in rows:
            print(json.dumps(item), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
