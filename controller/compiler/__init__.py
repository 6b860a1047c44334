"""The compiler: a validated workflow -> one Tekton `tekton.dev/v1` PipelineRun (pure, deterministic).

See docs/compiler.md for the mapping rules.
"""

from controller.compiler.errors import CompileError
from controller.compiler.extensions import ExtensionError, ExtensionRegistry
from controller.compiler.naming import run_name_for
from controller.compiler.pipelinerun import compile_run
from controller.compiler.values import CodesetSource
from controller.compiler.yamlout import to_yaml

__all__ = [
    "CodesetSource",
    "CompileError",
    "ExtensionError",
    "ExtensionRegistry",
    "compile_run",
    "run_name_for",
    "to_yaml",
]
