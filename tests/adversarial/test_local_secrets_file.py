"""A hostile `$SLUICE_HOME/secrets.yaml` ends as one clean SecretError, never a crash."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.executors.local.secrets import LocalSecrets, SecretError

HOSTILE = {
    "deep": "a: " + "[" * 100_000 + "]" * 100_000 + "\n",
    "alias-bomb": 'a: &a ["x","x"]\nb: &b [*a,*a]\nc: [*b,*b]\n',
    "python-tag": "s: !!python/object/apply:os.system ['true']\n",
    "two-documents": "s: {k: v}\n---\nt: {k: v}\n",
    "not-utf8": "s: {k: \xff}\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_secrets_file_is_a_clean_error(name: str, tmp_path: Path) -> None:
    path = tmp_path / "secrets.yaml"
    data = HOSTILE[name]
    path.write_bytes(data.encode("latin-1") if name == "not-utf8" else data.encode())
    with pytest.raises(SecretError) as caught:
        LocalSecrets(tmp_path).get("s", "k")
    assert str(path) in str(caught.value)


def test_empty_secrets_file_holds_no_secrets(tmp_path: Path) -> None:
    (tmp_path / "secrets.yaml").write_text("")
    assert LocalSecrets(tmp_path).get("s", "k") is None


def test_secrets_file_values_are_read(tmp_path: Path) -> None:
    (tmp_path / "secrets.yaml").write_text("minio: {accesskey: AKIA-test}\n")
    assert LocalSecrets(tmp_path).get("minio", "accesskey") == "AKIA-test"
