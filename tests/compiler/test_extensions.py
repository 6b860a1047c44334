"""FuseML extension descriptions, selector resolution and version constraints."""

from __future__ import annotations

import pytest

from controller.compiler.extensions import ExtensionError, ExtensionRegistry
from controller.compiler.versions import VersionConstraintError, check_constraint, satisfies
from controller.spec.extension_files import ExtensionFileError, read_extension_files
from controller.spec.model import ExtensionSelector, SecretKeyRef
from tests.compiler.conftest import EXTENSIONS


def from_files(*paths) -> ExtensionRegistry:
    """What `sluice compile --extensions` does: read at the edge, then the registry."""
    return ExtensionRegistry.from_sources(read_extension_files(paths))


def s3(version: str, ext_id: str, **extra) -> dict:
    return {
        "id": ext_id,
        "product": "minio",
        "version": version,
        "services": [
            {
                "id": "s3",
                "resource": "s3",
                "category": "object-storage",
                "endpoints": [
                    {"url": f"https://{ext_id}.example", "type": "external"},
                    {
                        "url": f"http://{ext_id}.svc:9000",
                        "type": "internal",
                        "configuration": {"S3_URL": ext_id},
                    },
                ],
                **extra,
            }
        ],
    }


def test_installer_description_files_are_read_from_a_folder(registry):
    assert [e.id for e in registry.extensions] == ["kserve", "mlflow", "ovms", "seldon-core"]
    mlflow = next(e for e in registry.extensions if e.id == "mlflow")
    store = next(s for s in mlflow.services if s.id == "mlflow-store")
    (credential,) = store.credentials
    assert credential.secrets == {
        "AWS_ACCESS_KEY_ID": SecretKeyRef("mlflow-minio", "accesskey"),
        "AWS_SECRET_ACCESS_KEY": SecretKeyRef("mlflow-minio", "secretkey"),
    }


def test_selector_resolves_config_and_secrets(registry):
    resolved = registry.resolve(ExtensionSelector("store", product="mlflow", service_resource="s3"))
    assert resolved.service.id == "mlflow-store"
    assert resolved.config == {"MLFLOW_S3_ENDPOINT_URL": "http://mlflow-minio.mlflow:9000"}
    assert set(resolved.secrets) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    assert resolved.field_value(("url",)) == "http://mlflow-minio.mlflow:9000"
    assert resolved.field_value(("cfg", "AWS_ACCESS_KEY_ID")) == SecretKeyRef("mlflow-minio", "accesskey")
    assert resolved.field_value(("version",)) == "1.20.2"
    with pytest.raises(ExtensionError, match="no configuration key 'NOPE'"):
        resolved.field_value(("cfg", "NOPE"))


def test_internal_endpoint_is_preferred(registry):
    resolved = registry.resolve(ExtensionSelector("t", service_resource="mlflow-tracking"))
    assert resolved.endpoint is not None and resolved.endpoint.type == "internal"
    assert resolved.config["MLFLOW_TRACKING_URI"] == "http://mlflow.mlflow"


def test_version_constraints_choose_among_extensions():
    registry = ExtensionRegistry.from_documents(
        [s3("4.1.3", "old"), s3("5.0.1", "new"), s3("5.2.0", "newest")]
    )
    assert registry.resolve(ExtensionSelector("a", service_resource="s3")).extension.id == "newest"
    assert (
        registry.resolve(ExtensionSelector("a", service_resource="s3", version="~5.0")).extension.id == "new"
    )
    assert registry.resolve(ExtensionSelector("a", service_resource="s3", version="<5")).extension.id == "old"
    assert (
        registry.resolve(ExtensionSelector("a", service_resource="s3", extension_id="old")).extension.id
        == "old"
    )
    with pytest.raises(
        ExtensionError, match=r"'a' \(version=>=6, service_resource=s3\) matches no registered"
    ):
        registry.resolve(ExtensionSelector("a", service_resource="s3", version=">=6"))
    with pytest.raises(ExtensionError, match="bad version constraint"):
        registry.resolve(ExtensionSelector("a", service_resource="s3", version=">>1"))


def test_inline_credentials_are_refused():
    doc = s3(
        "1.0.0", "leaky", credentials=[{"id": "c", "configuration": {"AWS_SECRET_ACCESS_KEY": "hunter2"}}]
    )
    with pytest.raises(ExtensionError, match="never be written inline") as caught:
        ExtensionRegistry.from_documents([doc])
    assert "hunter2" not in str(caught.value)


def test_secret_references_are_accepted_inline():
    ref = {"secretKeyRef": {"name": "s3-creds", "key": "secret"}}
    doc = s3("1.0.0", "ok", credentials=[{"id": "c", "configuration": {"AWS_SECRET_ACCESS_KEY": ref}}])
    resolved = ExtensionRegistry.from_documents([doc]).resolve(ExtensionSelector("x", service_resource="s3"))
    assert resolved.secrets == {"AWS_SECRET_ACCESS_KEY": SecretKeyRef("s3-creds", "secret")}


def test_malformed_description_files_are_clear_errors(tmp_path):
    bad = tmp_path / "description.yaml"
    bad.write_text("name: x\nservices: {id: s}\n")
    with pytest.raises(ExtensionError, match=r"description.yaml: services: expected a list"):
        from_files(bad)
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ExtensionFileError, match=r"description.yaml:\d+:\d+: invalid YAML"):
        from_files(bad)
    with pytest.raises(ExtensionFileError, match="no such file"):
        from_files(tmp_path / "missing")
    twice = tmp_path / "two"
    twice.mkdir()
    (twice / "a.yaml").write_text("name: same\n")
    (twice / "b.yaml").write_text("name: same\n")
    with pytest.raises(ExtensionError, match="registered twice: same"):
        from_files(twice)


def test_multi_document_files_and_transform_for_unlisted_credential():
    docs = [
        {
            "name": "store",
            "services": [{"id": "s3", "resource": "s3"}],
            "servicecredentials": [
                {
                    "serviceid": "s3",
                    "credentials": [
                        {
                            "id": "k",
                            "transform": [{"configvalue": "KEY", "secret": "sec", "secretvalue": "k"}],
                        }
                    ],
                }
            ],
        }
    ]
    resolved = ExtensionRegistry.from_documents(docs).resolve(ExtensionSelector("x", service_resource="s3"))
    assert resolved.secrets == {"KEY": SecretKeyRef("sec", "k")}
    assert resolved.endpoint is None and resolved.field_value(("url",)) == ""


def test_extensions_folder_fixture_is_fuseml_shaped():
    assert (EXTENSIONS / "mlflow" / "description.yaml").exists()


@pytest.mark.parametrize(
    "version,constraint,expected",
    [
        ("1.20.2", None, True),
        ("1.20.2", "1.20.2", True),
        ("1.20.2", "1.20", True),
        ("1.21.0", "1.20", False),
        ("1.20.2", "=1.20.2", True),
        ("1.20.2", "!=1.20.2", False),
        ("1.20.2", ">=1.19, <2", True),
        ("2.0.0", ">=1.19, <2", False),
        ("1.10.5", "~1.10.0", True),
        ("1.11.0", "~1.10.0", False),
        ("1.4.9", "~=1.4.2", True),
        ("1.5.0", "~=1.4.2", False),
        ("1.9.0", "~=1.4", True),
        ("2.0.0", "~=1.4", False),
        ("1.9.9", "^1.2.3", True),
        ("2.0.0", "^1.2.3", False),
        ("0.2.9", "^0.2.3", True),
        ("0.3.0", "^0.2.3", False),
        ("1.3.0", ">1.2", True),
        ("1.2.9", ">1.2", False),
        ("1.2.9", "<=1.2", True),
        ("1.3.0", "<=1.2", False),
        ("3.1.0", "1.x || 3.*", True),
        ("2.1.0", "1.x || 3.*", False),
        ("v0.7.0", ">= 0.7", True),
        ("1.0.0-rc1", "1.0.0", True),
        ("", ">=1", False),
        ("nightly", ">=1", False),
    ],
)
def test_version_constraints(version, constraint, expected):
    assert satisfies(version or None, constraint) is expected


@pytest.mark.parametrize("constraint", [">>1", "~=1", "1.2.3.4.5", ">=", "abc"])
def test_malformed_constraints(constraint):
    with pytest.raises(VersionConstraintError):
        check_constraint(constraint)


# --- description files are read at the edge, with the workflow loader's hardened YAML parser ------


def billion_laughs() -> str:
    lines = ["name: bomb", 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{n}: &a{n} [{','.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 10)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (billion_laughs(), 2, r"invalid YAML: anchors \(&name\) are not allowed"),
        ("name: deep\nx: " + "[" * 100_000 + "]" * 100_000 + "\n", 2, "nesting deeper than 64 levels"),
        ("name: x\nconfiguration:\n  a: 1\n  a: 2\n", 4, "duplicate key 'a'"),
        ('name: !!python/object/apply:os.system ["true"]\n', 1, "tag .* is not allowed"),
        ("name: ok\n---\nname: *undefined\n", 3, r"aliases \(\*name\) are not allowed"),
    ],
    ids=["alias-bomb", "nesting-100000", "duplicate-key", "python-tag", "alias-in-second-document"],
)
def test_hostile_description_files_are_refused_with_file_and_line(tmp_path, text, line, message):
    bad = tmp_path / "description.yaml"
    bad.write_text(text)
    with pytest.raises(ExtensionFileError, match=rf"^{bad}:{line}:\d+: .*{message}"):
        read_extension_files([tmp_path])


def test_oversized_and_non_utf8_description_files_are_refused(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("name: x\ndescription: " + "y" * (1024 * 1024) + "\n")
    with pytest.raises(ExtensionFileError, match=rf"^{big}: file is larger than the limit of 1048576 bytes"):
        read_extension_files([big])
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(ExtensionFileError, match=rf"^{binary}:1:7: file is not valid UTF-8"):
        read_extension_files([binary])


def test_several_documents_in_one_file_are_named_by_index(tmp_path):
    both = tmp_path / "both.yaml"
    both.write_text("name: one\n---\n---\nname: two\nservices: {}\n")
    documents = read_extension_files([both])
    assert documents == [(f"{both}[0]", {"name": "one"}), (f"{both}[1]", {"name": "two", "services": {}})]
    with pytest.raises(ExtensionError, match=rf"{both}\[1\]: services: expected a list"):
        ExtensionRegistry.from_sources(documents)
    assert read_extension_files([tmp_path / "both.yaml"]) == documents
    (tmp_path / "empty.yaml").write_text("")
    assert read_extension_files([tmp_path / "empty.yaml"]) == []
