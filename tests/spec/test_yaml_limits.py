"""The loader's safety limits: size, depth, encoding. A hostile file is a clean error, never a crash."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from controller import settings
from controller.spec import SpecError, load_workflow, load_workflow_bytes, load_workflow_text
from tests.spec.helpers import EXAMPLES, HEAD, diagnostics


def only_error(exc: pytest.ExceptionInfo[SpecError]) -> tuple[int, int, str, str, str]:
    (d,) = exc.value.diagnostics
    return d.line, d.col, d.path, d.code, d.message


def test_a_100000_deep_flow_document_is_refused_quickly() -> None:
    document = "spec: " + "[" * 100_000 + "]" * 100_000
    started = time.perf_counter()
    with pytest.raises(SpecError) as caught:
        load_workflow_text(document, "deep.yaml")
    assert time.perf_counter() - started < 2
    line, col, path, code, message = only_error(caught)
    assert (line, code, path) == (1, "yaml.too-deep", "")
    assert message == f"nesting deeper than {settings.MAX_DEPTH} levels"
    assert col < 2000  # stopped near the limit, not at the end of the document


def test_a_100000_deep_unclosed_mapping_is_refused() -> None:
    with pytest.raises(SpecError) as caught:
        load_workflow_text("a: " + "{b: " * 100_000, "deep.yaml")
    assert only_error(caught)[3] == "yaml.too-deep"


def test_a_100_deep_block_document_is_refused_at_level_65() -> None:
    lines = [("  " * depth) + f"k{depth}:" for depth in range(100)] + ["  " * 100 + "leaf: 1"]
    with pytest.raises(SpecError) as caught:
        load_workflow_text("\n".join(lines) + "\n", "deep.yaml")
    line, col, _, code, _ = only_error(caught)
    # the 65th nested mapping starts on line 65, indented by 64 levels of two spaces
    assert (line, col, code) == (65, 129, "yaml.too-deep")


def test_nesting_up_to_the_limit_is_parsed() -> None:
    """64 levels are allowed: the document then fails on its content, not on its depth."""
    found = diagnostics("spec: " + "[" * 63 + "]" * 63 + "\n")
    assert "yaml.too-deep" not in {d.code for d in found}


def test_an_alias_bomb_is_refused_before_expansion() -> None:
    layers = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    layers += [
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]" for i in range(8)
    ]
    with pytest.raises(SpecError) as caught:
        load_workflow_text("\n".join(layers) + "\n", "bomb.yaml")
    assert only_error(caught)[3] == "yaml.anchor"


def test_a_file_over_the_size_cap_is_refused_without_parsing(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    payload = HEAD + "spec:\n  description: |\n" + ("    " + "x" * 75 + "\n") * 33_000  # ~2.5 MiB
    big.write_text(payload)
    assert big.stat().st_size > 2.5 * 1024 * 1024
    with pytest.raises(SpecError) as caught:
        load_workflow(str(big))
    line, col, path, code, message = only_error(caught)
    assert (line, col, path, code) == (0, 0, "", "file.too-large")
    assert message == f"file is larger than the limit of {settings.MAX_FILE_BYTES} bytes"


def test_the_size_cap_is_configurable(tmp_path: Path) -> None:
    small = tmp_path / "small.yaml"
    small.write_bytes(EXAMPLES[0].read_bytes())
    with pytest.raises(SpecError) as caught:
        load_workflow(str(small), max_bytes=100)
    assert only_error(caught)[3] == "file.too-large"


def test_invalid_utf8_names_the_line_and_column_of_the_first_bad_byte() -> None:
    data = HEAD.encode() + b"spec:\n  description: caf\xe9\n"
    with pytest.raises(SpecError) as caught:
        load_workflow_bytes(data, "latin1.yaml")
    assert only_error(caught) == (5, 19, "", "file.encoding", "file is not valid UTF-8")


def test_a_nul_character_is_refused() -> None:
    with pytest.raises(SpecError) as caught:
        load_workflow_bytes(HEAD.encode() + b"spec: {}\x00\n", "nul.yaml")
    assert only_error(caught) == (4, 9, "", "file.encoding", "file contains a NUL character")


def test_utf16_is_not_utf8() -> None:
    with pytest.raises(SpecError) as caught:
        load_workflow_bytes(HEAD.encode("utf-16"), "utf16.yaml")
    assert only_error(caught)[3] == "file.encoding"


def test_a_utf8_byte_order_mark_is_accepted() -> None:
    workflow = load_workflow_bytes(b"\xef\xbb\xbf" + EXAMPLES[-1].read_bytes(), "bom.yaml")
    assert workflow.steps


def test_an_unreadable_path_is_one_clean_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        load_workflow(str(tmp_path / "missing.yaml"))
    assert only_error(caught)[3] == "file.unreadable"
    with pytest.raises(SpecError) as caught:
        load_workflow(str(tmp_path))  # a directory
    assert only_error(caught)[3] == "file.unreadable"


def test_timestamps_stay_strings() -> None:
    """JSON has no date type: an unquoted date is read as the text it is, not a datetime."""
    from controller.spec.yamlload import parse_yaml

    assert parse_yaml("when: 2024-01-02\n", "t.yaml").value == {"when": "2024-01-02"}


def test_merge_keys_are_plain_keys() -> None:
    """`<<` merges need anchors, which are refused; alone it is just an (unknown) key, not a crash."""
    found = diagnostics(HEAD + "spec:\n  <<: {steps: []}\n  steps: [{name: a, image: busybox}]\n")
    assert [(d.code, d.path) for d in found] == [("schema.unknown-field", "$.spec.<<")]
