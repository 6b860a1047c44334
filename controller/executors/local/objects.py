"""ConfigMaps and Secrets of the input, and the workspaces and env they feed.

`configMap`, `secret` and `projected` workspace bindings become a folder of the run's private
secrets folder (mode 0700: no other user of this machine reaches it) holding one file per key
(Kubernetes' volume layout): all keys, or `items` (`key` -> `path`, with its `mode`), files of
mode `defaultMode` (Kubernetes' 0644 by default, so a step running as its image's own user in a
container can read them, as in a pod). Secret values come from `LocalSecrets` (the input's Secret
documents, overridden by `SLUICE_SECRET_*` and `$SLUICE_HOME/secrets.yaml`), so every value
handed to a step is redacted from logs and results. A ConfigMap or Secret the run needs that is
missing (and not `optional`) refuses the run, naming the path.
"""

from __future__ import annotations

import base64
import binascii
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.executors.local.secrets import LocalSecrets
from controller.executors.local.tekton import UnsupportedError

FILE_MODE = 0o644  # Kubernetes' defaultMode for configMap, secret and projected volumes
FILLED_KINDS = ("configMap", "secret", "projected")  # workspace bindings filled with keys' files


class ObjectError(ValueError):
    """A ConfigMap or Secret document that cannot be read (message: `$.path: why`)."""


@dataclass
class ClusterObjects:
    """The input's ConfigMaps (name -> key -> text) and Secrets (decoded)."""

    config_maps: dict[str, dict[str, str]] = field(default_factory=dict)
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)


def config_map_data(body: dict[str, Any]) -> dict[str, str]:
    """A ConfigMap's `data` (text) and `binaryData` (base64, kept as UTF-8 text when it is)."""
    found = {str(k): str(v) for k, v in _mapping(body, "data").items()}
    for key, value in _mapping(body, "binaryData").items():
        found[str(key)] = _decode(value, f"$.binaryData.{key}")
    return found


def secret_data(body: dict[str, Any]) -> dict[str, str]:
    """A Secret's `data` (base64) and `stringData` (text, which wins, as in Kubernetes)."""
    found = {str(k): _decode(v, f"$.data.{k}") for k, v in _mapping(body, "data").items()}
    found.update({str(k): str(v) for k, v in _mapping(body, "stringData").items()})
    return found


def _mapping(body: dict[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key) or {}
    if not isinstance(value, dict):
        raise ObjectError(f"$.{key}: expected a mapping of keys to values")
    return value


def _decode(value: Any, where: str) -> str:
    try:
        return base64.b64decode(str(value), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise ObjectError(f"{where}: not base64 of UTF-8 text") from None


def fill_workspace(
    binding: dict[str, Any], path: Path, objects: ClusterObjects, secrets: LocalSecrets, where: str
) -> None:
    """Write a configMap, secret or projected binding's files into the (new, private) `path`."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if "configMap" in binding:
        source = binding["configMap"]
        keys = _config(source, objects, f"{where}.configMap")
        _write(path, keys, source, _mode(source, FILE_MODE), f"{where}.configMap")
    elif "secret" in binding:
        source = binding["secret"]
        keys = _secret(source.get("secretName", ""), source, secrets, f"{where}.secret")
        _write(path, keys, source, _mode(source, FILE_MODE), f"{where}.secret")
    else:
        projected = binding["projected"]
        mode = _mode(projected, FILE_MODE)
        for i, item in enumerate(projected.get("sources") or []):
            at = f"{where}.projected.sources[{i}]"
            if "configMap" in item:
                source = item["configMap"]
                _write(path, _config(source, objects, f"{at}.configMap"), source, mode, f"{at}.configMap")
            elif "secret" in item:
                source = item["secret"]
                keys = _secret(source.get("name", ""), source, secrets, f"{at}.secret")
                _write(path, keys, source, mode, f"{at}.secret")
            else:
                kinds = ", ".join(sorted(item))
                raise UnsupportedError(
                    f"{at}: only configMap and secret sources are projected locally, not {kinds}"
                )


def _mode(source: dict[str, Any], default: int) -> int:
    mode = source.get("defaultMode", default)
    return mode if isinstance(mode, int) and 0 <= mode <= 0o777 else default


def _config(source: dict[str, Any], objects: ClusterObjects, where: str) -> dict[str, str]:
    name = source.get("name", "")
    if name in objects.config_maps:
        return objects.config_maps[name]
    if source.get("optional"):
        return {}
    raise UnsupportedError(f"{where}.name: {missing_config_map(name, objects)}")


def _secret(name: str, source: dict[str, Any], secrets: LocalSecrets, where: str) -> dict[str, str]:
    keys = secrets.keys(name)
    if not keys and not source.get("optional"):
        raise UnsupportedError(
            f"{where}: secret {name!r} is neither in the input nor in local secrets "
            f"({secrets.path} or SLUICE_SECRET_* variables)"
        )
    return keys


def _write(path: Path, keys: dict[str, str], source: dict[str, Any], mode: int, where: str) -> None:
    """One file per key, or per `items` entry (`key` -> relative `path`, its own `mode`)."""
    items = source.get("items")
    if not items:
        chosen = [(key, key, mode) for key in sorted(keys)]
    else:
        chosen = []
        for i, item in enumerate(items):
            key, target = item.get("key"), item.get("path")
            if key not in keys:
                if source.get("optional"):
                    continue
                raise UnsupportedError(f"{where}.items[{i}].key: no key {key!r} in {sorted(keys)}")
            if not isinstance(target, str) or target.startswith("/") or ".." in target.split("/"):
                raise UnsupportedError(f"{where}.items[{i}].path: a relative path without '..' is needed")
            chosen.append((key, posixpath.normpath(target), item.get("mode", mode)))
    for key, target, file_mode in chosen:
        file = path / target
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(keys[key], encoding="utf-8")
        file.chmod(file_mode if isinstance(file_mode, int) else mode)


def env_from(
    sources: list[dict[str, Any]], objects: ClusterObjects, secrets: LocalSecrets, where: str
) -> list[dict[str, Any]]:
    """A step's `envFrom` as the `env` entries it stands for: every key of a ConfigMap
    (`configMapRef`) or Secret (`secretRef`), named `prefix` + key, each a key reference so that a
    secret's values are redacted like any other. Keys with `=` cannot be variable names: skipped,
    as Kubernetes skips them."""
    entries: list[dict[str, Any]] = []
    for i, source in enumerate(sources):
        at = f"{where}.envFrom[{i}]"
        if "configMapRef" in source:
            ref, kind = source["configMapRef"], "configMapKeyRef"
            name = ref.get("name", "")
            if name not in objects.config_maps and not ref.get("optional"):
                raise UnsupportedError(f"{at}.configMapRef.name: {missing_config_map(name, objects)}")
            keys = sorted(objects.config_maps.get(name, {}))
        else:
            ref, kind = source["secretRef"], "secretKeyRef"
            name = ref.get("name", "")
            keys = sorted(_secret(name, ref, secrets, f"{at}.secretRef"))
        prefix = str(source.get("prefix", ""))
        entries += [
            {"name": prefix + key, "valueFrom": {kind: {"name": name, "key": key}}}
            for key in keys
            if "=" not in key
        ]
    return entries


def missing_config_map(name: Any, objects: ClusterObjects) -> str:
    held = ", ".join(sorted(objects.config_maps)) or "none"
    return f"no ConfigMap {name!r} in the input (ConfigMaps: {held})"
