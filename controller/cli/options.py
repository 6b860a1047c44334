"""Options several commands take, spelled once so that they read and behave the same everywhere
(`sluice compile`, `sluice run`, `sluice submit`). The cluster options are in cluster.py."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

InputsOption = Annotated[
    list[str] | None,
    typer.Option("--input", "-i", metavar="NAME=VALUE", help="An input's value (repeatable)."),
]
ExtensionsOption = Annotated[
    Path | None, typer.Option("--extensions", help="FuseML extension description file or folder.")
]
