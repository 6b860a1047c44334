"""The Codeset CRD and the operator's parser enforce the same limits: one set of constants.

Each case is checked twice: against the schema of the CRD as installed (`crds/codesets.yaml`,
validated like the API server's admission would for these keywords) and against `parse_codeset`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from controller import gitsafe
from controller.api import codeset as api
from controller.api.crds import all_crds

ROOT = Path(__file__).resolve().parents[2]
SHA = "a" * 40


def _installed_schema() -> dict[str, Any]:
    [crd] = [d for d in yaml.safe_load_all((ROOT / "crds" / "codesets.yaml").read_text()) if d]
    [version] = crd["spec"]["versions"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def _spec_schema() -> dict[str, Any]:
    spec: dict[str, Any] = _installed_schema()["properties"]["spec"]
    return spec


def _codeset(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "sluice.dev/v1alpha1",
        "kind": "Codeset",
        "metadata": {"name": "models", "namespace": "ml", "uid": "u1", "generation": 1},
        "spec": {"url": "https://example.com/models.git", **spec},
    }


def _admitted(body: dict[str, Any]) -> bool:
    # Draft 4 is what OpenAPI v3's schema objects are built on; x-kubernetes-* keys are ignored
    return jsonschema.Draft4Validator(_installed_schema()).is_valid(body)


def _parsed(body: dict[str, Any]) -> bool:
    try:
        api.parse_codeset(body)
    except api.InvalidCodeset:
        return False
    return True


def test_installed_crd_is_the_generated_one() -> None:
    [version] = all_crds()["codesets.yaml"]["spec"]["versions"]
    assert _installed_schema() == version["schema"]["openAPIV3Schema"]


def test_ignore_limits_are_the_parsers() -> None:
    ignore = _spec_schema()["properties"]["ignore"]
    assert ignore["maxItems"] == api.MAX_IGNORE_PATTERNS == 256
    assert ignore["items"]["maxLength"] == api.MAX_PATTERN_LENGTH == 512


def test_other_limits_are_the_parsers() -> None:
    fields = _spec_schema()["properties"]
    assert fields["url"]["maxLength"] == api.MAX_URL_LENGTH == gitsafe.MAX_URL_LENGTH
    assert fields["ref"]["properties"]["branch"]["maxLength"] == api.MAX_REF_LENGTH == gitsafe.MAX_REF_LENGTH
    assert fields["ref"]["properties"]["tag"]["maxLength"] == api.MAX_REF_LENGTH
    assert fields["interval"]["maxLength"] == api.MAX_INTERVAL_LENGTH
    assert fields["interval"]["default"] == api.DEFAULT_INTERVAL
    assert fields["sync"]["properties"]["path"]["maxLength"] == api.MAX_SYNC_PATH_LENGTH


@pytest.mark.parametrize(
    ("spec", "ok"),
    [
        ({"ignore": ["*.md"] * 256}, True),
        ({"ignore": ["*.md"] * 257}, False),
        ({"ignore": ["a" * 512]}, True),
        ({"ignore": ["a" * 513]}, False),
        ({"sync": {"path": "a" * 1024}}, True),
        ({"sync": {"path": "a" * 1025}}, False),
        ({"interval": "0" * 30 + "1s"}, True),  # 32 characters
        ({"interval": "0" * 31 + "1s"}, False),
        ({"ref": {"branch": "b" * 255}}, True),
        ({"ref": {"branch": "b" * 256}}, False),
        ({"ref": {"commit": SHA}}, True),
        ({"ref": {"commit": SHA[:12]}}, False),
        ({"url": "https://example.com/" + "r" * (2048 - 20)}, True),
        ({"url": "https://example.com/" + "r" * (2049 - 20)}, False),
    ],
    ids=lambda v: str(v)[:40] if not isinstance(v, bool) else str(v),
)
def test_schema_and_parser_agree(spec: dict[str, Any], ok: bool) -> None:
    body = _codeset(**spec)
    assert _admitted(body) is ok, "the CRD schema"
    assert _parsed(body) is ok, "parse_codeset"


def test_257_ignore_patterns_are_refused_with_the_limit_named() -> None:
    body = _codeset(ignore=[f"dir{i}/**" for i in range(257)])
    errors = list(jsonschema.Draft4Validator(_installed_schema()).iter_errors(body))
    assert [list(e.absolute_path) for e in errors] == [["spec", "ignore"]]
    with pytest.raises(api.InvalidCodeset) as refused:
        api.parse_codeset(body)
    assert refused.value.path == "$.spec.ignore"
    assert "256" in refused.value.message
