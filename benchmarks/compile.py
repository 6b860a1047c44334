"""Load + validate + compile throughput over the example workflows, with `yaml.safe_load` of the
same files measured in the same run as the baseline.

Goals (issue 3): >= 1000 workflows/s on one core; validation <= 10% of the total time.
"Validation" is the JSON Schema check of a parsed document (the compiled validator); the
total is YAML parsing + validation + building the typed model with its semantic checks +
compilation. The share of the whole `validate_document` (schema + model + semantic checks)
is reported too, as information.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.common import best_of, row
from controller.compiler import CodesetSource, ExtensionRegistry, compile_run
from controller.spec import load_workflow_bytes, validate_document
from controller.spec.schema import schema_valid
from controller.spec.yamlload import decode, parse_yaml

WORKFLOWS = Path(__file__).resolve().parent.parent / "workflows"
PINNED = "0123456789abcdef0123456789abcdef01234567"

# What the FuseML example's selectors need, as FuseML's installer would describe it.
REGISTRY_DOCUMENTS: list[dict[str, Any]] = [
    {
        "name": "mlflow",
        "product": "mlflow",
        "version": "1.20.2",
        "services": [
            {
                "id": "mlflow-tracking",
                "resource": "mlflow-tracking",
                "endpoints": [
                    {
                        "url": "http://mlflow.mlflow",
                        "type": "internal",
                        "configuration": {"MLFLOW_TRACKING_URI": "http://mlflow.mlflow"},
                    }
                ],
            },
            {
                "id": "mlflow-store",
                "resource": "s3",
                "endpoints": [
                    {
                        "url": "http://minio.mlflow:9000",
                        "type": "internal",
                        "configuration": {"MLFLOW_S3_ENDPOINT_URL": "http://minio.mlflow:9000"},
                    }
                ],
                "credentials": [{"id": "s3"}],
            },
        ],
        "servicecredentials": [
            {
                "serviceid": "mlflow-store",
                "credentials": [
                    {
                        "id": "s3",
                        "transform": [
                            {
                                "configvalue": "AWS_ACCESS_KEY_ID",
                                "secret": "minio",
                                "secretvalue": "accesskey",
                            },
                            {
                                "configvalue": "AWS_SECRET_ACCESS_KEY",
                                "secret": "minio",
                                "secretvalue": "secretkey",
                            },
                        ],
                    }
                ],
            }
        ],
    }
]


def _examples() -> list[tuple[str, bytes]]:
    return [(str(p), p.read_bytes()) for p in sorted(WORKFLOWS.glob("*.yaml"))]


def run(quick: bool = False) -> list[dict[str, Any]]:
    examples = _examples()
    texts = [data.decode("utf-8") for _, data in examples]
    registry = ExtensionRegistry.from_documents(REGISTRY_DOCUMENTS)
    codesets = {}
    for file, data in examples:
        workflow = load_workflow_bytes(data, file)
        codesets[file] = {
            i.name: CodesetSource(f"https://github.com/example/{i.name}.git", PINNED)
            for i in workflow.codeset_inputs
        }

    def load_and_compile() -> None:
        for file, data in examples:
            compile_run(load_workflow_bytes(data, file), codesets=codesets[file], extensions=registry)

    def baseline() -> None:
        for text in texts:
            yaml.safe_load(text)

    load_and_compile()  # warm up: schema validators are built once per process
    repeat, number = (3, 10) if quick else (5, 60)
    total = best_of(load_and_compile, repeat=repeat, number=number) / len(examples)
    base = best_of(baseline, repeat=repeat, number=number) / len(examples)

    # Where the time goes: parse, validate, compile, each timed over the same documents.
    parsed = [(file, parse_yaml(decode(data, file), file)) for file, data in examples]
    rounds = 3 if quick else 10
    parse_s = validate_s = compile_s = 0.0
    for _ in range(rounds):
        for file, data in examples:
            start = time.perf_counter()
            doc = parse_yaml(decode(data, file), file)
            middle = time.perf_counter()
            workflow = validate_document(doc.value, file, doc.positions)
            after = time.perf_counter()
            compile_run(workflow, codesets=codesets[file], extensions=registry)
            end = time.perf_counter()
            parse_s, validate_s, compile_s = (
                parse_s + middle - start,
                validate_s + after - middle,
                compile_s + end - after,
            )
    schema_s = best_of(lambda: [schema_valid(doc.value) for _, doc in parsed], repeat=3, number=rounds)
    schema_s *= rounds
    whole = parse_s + validate_s + compile_s
    share = 100 * schema_s / whole
    checks_share = 100 * validate_s / whole
    per_second = 1 / total
    return [
        row(
            "compile",
            "load+validate+compile throughput (example workflows)",
            per_second,
            "workflows/s",
            "yaml.safe_load of the same files",
            1 / base,
            ">= 1000 workflows/s on one core",
            per_second >= 1000,
        ),
        row(
            "compile",
            "schema validation share of load+validate+compile",
            share,
            "%",
            "load+validate+compile",
            100.0,
            "<= 10% of the time",
            share <= 10,
        ),
        row(
            "compile",
            "schema + typed model + semantic checks share of load+validate+compile",
            checks_share,
            "%",
            "load+validate+compile",
            100.0,
            "informational: everything the loader checks",
            True,
        ),
        row(
            "compile",
            "compile time per workflow",
            compile_s / rounds / len(examples) * 1e3,
            "ms",
            "yaml.safe_load of the same files",
            base * 1e3,
            "informational: the compiler's own share",
            True,
        ),
    ]
