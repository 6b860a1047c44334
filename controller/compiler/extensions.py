"""FuseML extension registry: description files -> records -> selector resolution.

Reads the format of FuseML's installer `description.yaml` (and of its registry
records): an extension (`name` or `id`, `product`, `version`, `zone`,
`configuration`) with `services` (`id`, `resource`, `category`, `endpoints`
with `url`/`type`/`configuration`, `credentials`) and `servicecredentials`
whose `transform` entries map a configuration key to a key of a Kubernetes
Secret. Installer-only keys (install, uninstall, gateways, rolerules, ...) are
ignored.

Credentials never travel as values: a credential configuration entry must be
a Secret reference (through `servicecredentials` or `{secretKeyRef: {name,
key}}`), and steps receive it as `valueFrom.secretKeyRef`. The referenced
Secret must exist in the run's namespace (a Pod can only read its own
namespace's Secrets); FuseML's `namespace` on a transform is kept for reference.

No file I/O here: description files are read (with the hardened YAML loader) by
`controller.spec.extension_files.read_extension_files` at the edge, and their documents given to
`ExtensionRegistry.from_sources`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from controller.compiler.versions import VersionConstraintError, check_constraint, parse_version, satisfies
from controller.spec.model import ExtensionSelector, SecretKeyRef


class ExtensionError(ValueError):
    """A malformed extension description, or a selector that cannot be resolved."""


@dataclass(frozen=True)
class Endpoint:
    url: str
    type: str = ""
    configuration: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Credential:
    id: str
    scope: str = ""
    default: bool = False
    secrets: Mapping[str, SecretKeyRef] = field(default_factory=dict)


@dataclass(frozen=True)
class Record:
    """What FuseML's extension and service records both have: an id, a description and a plain
    (non-secret) configuration."""

    id: str
    description: str = ""
    configuration: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Service(Record):
    resource: str = ""
    category: str = ""
    endpoints: tuple[Endpoint, ...] = ()
    credentials: tuple[Credential, ...] = ()


@dataclass(frozen=True)
class Extension(Record):
    product: str = ""
    version: str = ""
    zone: str = ""
    services: tuple[Service, ...] = ()
    source: str = "<memory>"


@dataclass(frozen=True)
class ResolvedExtension:
    """One selector resolved to one service: what a step's environment receives."""

    selector: ExtensionSelector
    extension: Extension
    service: Service
    endpoint: Endpoint | None
    config: Mapping[str, str]
    secrets: Mapping[str, SecretKeyRef]

    def field_value(self, path: tuple[str, ...]) -> str | SecretKeyRef:
        """`{{ extensions.E.<path> }}`: url, cfg.KEY, id, product, version, zone, service_id, ..."""
        if len(path) == 2 and path[0] in ("cfg", "configuration"):
            key = path[1]
            if key in self.secrets:
                return self.secrets[key]
            if key in self.config:
                return self.config[key]
            known = ", ".join(sorted({*self.config, *self.secrets})) or "none"
            raise ExtensionError(f"has no configuration key {key!r} (keys: {known})")
        if len(path) == 1:
            fields = {
                "url": self.endpoint.url if self.endpoint else "",
                "endpoint_type": self.endpoint.type if self.endpoint else "",
                "id": self.extension.id,
                "extension_id": self.extension.id,
                "product": self.extension.product,
                "version": self.extension.version,
                "zone": self.extension.zone,
                "description": self.service.description or self.extension.description,
                "service_id": self.service.id,
                "service_resource": self.service.resource,
                "resource": self.service.resource,
                "service_category": self.service.category,
                "category": self.service.category,
            }
            if path[0] in fields:
                return fields[path[0]]
        raise ExtensionError(
            f"has no field {'.'.join(path)!r} (fields: url, cfg.KEY, id, product, version, zone, "
            "service_id, service_resource, service_category)"
        )


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ExtensionError(f"{where}: expected a mapping")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ExtensionError(f"{where}: expected a list")
    return value


def _plain_config(value: Any, where: str) -> dict[str, str]:
    config = {}
    for key, item in _mapping(value, where).items():
        if isinstance(item, dict | list):
            raise ExtensionError(f"{where}.{key}: configuration values must be scalars")
        config[str(key)] = _text(item)
    return config


def _secret_ref(value: Any, where: str) -> SecretKeyRef:
    ref = _mapping(value, where).get("secretKeyRef") if isinstance(value, dict) else None
    if not isinstance(ref, dict) or not ref.get("name") or not ref.get("key"):
        raise ExtensionError(
            f"{where}: credential values must reference a Secret ({{secretKeyRef: {{name, key}}}} or a "
            "'servicecredentials' transform), never be written inline"
        )
    return SecretKeyRef(str(ref["name"]), str(ref["key"]))


def _credentials(
    raw: Any, transforms: Mapping[str, Mapping[str, SecretKeyRef]], where: str
) -> list[Credential]:
    credentials = []
    seen = set()
    for index, item in enumerate(_list(raw, where)):
        here = f"{where}[{index}]"
        item = _mapping(item, here)
        cred_id = _text(item.get("id")) or f"credential-{index}"
        secrets = {
            str(key): _secret_ref(value, f"{here}.configuration.{key}")
            for key, value in _mapping(item.get("configuration"), f"{here}.configuration").items()
        }
        secrets.update(transforms.get(cred_id, {}))
        seen.add(cred_id)
        credentials.append(
            Credential(cred_id, _text(item.get("scope")), bool(item.get("default", False)), secrets)
        )
    for cred_id, listed in transforms.items():  # a transform may describe a credential not listed
        if cred_id not in seen:
            credentials.append(Credential(cred_id, "", False, dict(listed)))
    return credentials


def _transforms(raw: Any, where: str) -> dict[str, dict[str, dict[str, SecretKeyRef]]]:
    """servicecredentials -> service id -> credential id -> config key -> Secret reference."""
    result: dict[str, dict[str, dict[str, SecretKeyRef]]] = {}
    for index, item in enumerate(_list(raw, where)):
        here = f"{where}[{index}]"
        item = _mapping(item, here)
        service = _text(item.get("serviceid"))
        if not service:
            raise ExtensionError(f"{here}.serviceid: required")
        for c_index, cred in enumerate(_list(item.get("credentials"), f"{here}.credentials")):
            c_here = f"{here}.credentials[{c_index}]"
            cred = _mapping(cred, c_here)
            keys = result.setdefault(service, {}).setdefault(_text(cred.get("id")) or "default", {})
            for t_index, transform in enumerate(_list(cred.get("transform"), f"{c_here}.transform")):
                t_here = f"{c_here}.transform[{t_index}]"
                transform = _mapping(transform, t_here)
                missing = [k for k in ("configvalue", "secret", "secretvalue") if not transform.get(k)]
                if missing:
                    raise ExtensionError(f"{t_here}: missing {', '.join(missing)}")
                keys[_text(transform["configvalue"])] = SecretKeyRef(
                    _text(transform["secret"]), _text(transform["secretvalue"])
                )
    return result


def parse_extension(doc: Any, source: str = "<memory>") -> Extension:
    """One description document -> an Extension; ExtensionError naming the file and field."""
    where = source
    doc = _mapping(doc, where)
    ext_id = _text(doc.get("id") or doc.get("name"))
    if not ext_id:
        raise ExtensionError(f"{where}: an extension needs 'name' or 'id'")
    transforms = _transforms(doc.get("servicecredentials"), f"{where}: servicecredentials")
    services = []
    for index, raw in enumerate(_list(doc.get("services"), f"{where}: services")):
        here = f"{where}: services[{index}]"
        raw = _mapping(raw, here)
        service_id = _text(raw.get("id"))
        if not service_id:
            raise ExtensionError(f"{here}.id: required")
        endpoints = []
        for e_index, endpoint in enumerate(_list(raw.get("endpoints"), f"{here}.endpoints")):
            e_here = f"{here}.endpoints[{e_index}]"
            endpoint = _mapping(endpoint, e_here)
            endpoints.append(
                Endpoint(
                    _text(endpoint.get("url")),
                    _text(endpoint.get("type")),
                    _plain_config(endpoint.get("configuration"), f"{e_here}.configuration"),
                )
            )
        services.append(
            Service(
                **_record(raw, service_id, f"{here}."),
                resource=_text(raw.get("resource")),
                category=_text(raw.get("category")),
                endpoints=tuple(endpoints),
                credentials=tuple(
                    _credentials(
                        raw.get("credentials"), transforms.get(service_id, {}), f"{here}.credentials"
                    )
                ),
            )
        )
    unknown = sorted(set(transforms) - {s.id for s in services})
    if unknown:
        raise ExtensionError(f"{where}: servicecredentials name unknown service(s): {', '.join(unknown)}")
    return Extension(
        **_record(doc, ext_id, f"{where}: "),
        product=_text(doc.get("product")),
        version=_text(doc.get("version")),
        zone=_text(doc.get("zone")),
        services=tuple(services),
        source=source,
    )


def _record(raw: Mapping[str, Any], record_id: str, where: str) -> dict[str, Any]:
    """The `Record` fields of an extension or service document (`where`: its path, as a prefix)."""
    return {
        "id": record_id,
        "description": _text(raw.get("description")).strip(),
        "configuration": _plain_config(raw.get("configuration"), f"{where}configuration"),
    }


def describe_selector(selector: ExtensionSelector) -> str:
    fields = [
        f"{name}={value}"
        for name, value in (
            ("extension_id", selector.extension_id),
            ("product", selector.product),
            ("version", selector.version),
            ("zone", selector.zone),
            ("service_id", selector.service_id),
            ("service_resource", selector.service_resource),
            ("service_category", selector.service_category),
        )
        if value
    ]
    return f"{selector.name!r} ({', '.join(fields) or 'no criteria'})"


def _pick_endpoint(service: Service) -> Endpoint | None:
    """An internal endpoint when there is one: workflow steps run inside the cluster."""
    internal = [e for e in service.endpoints if e.type == "internal"]
    candidates = internal or list(service.endpoints)
    return candidates[0] if candidates else None


def _pick_credential(service: Service) -> Credential | None:
    usable = [c for c in service.credentials if c.scope in ("", "global")]
    return next((c for c in usable if c.default), usable[0] if usable else None)


class ExtensionRegistry:
    """Every extension of the given description documents; resolves step selectors."""

    def __init__(self, extensions: Iterable[Extension] = ()):
        self.extensions: tuple[Extension, ...] = tuple(sorted(extensions, key=lambda e: (e.id, e.source)))
        ids = [e.id for e in self.extensions]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ExtensionError(f"extension id(s) registered twice: {', '.join(duplicates)}")

    @classmethod
    def from_documents(cls, documents: Iterable[Any], source: str = "<memory>") -> ExtensionRegistry:
        return cls(parse_extension(doc, f"{source}[{i}]") for i, doc in enumerate(documents))

    @classmethod
    def from_sources(cls, documents: Iterable[tuple[str, Any]]) -> ExtensionRegistry:
        """(source, document) pairs, as `controller.spec.extension_files.read_extension_files`
        returns them; the source names the document in messages."""
        return cls(parse_extension(doc, source) for source, doc in documents)

    def resolve(self, selector: ExtensionSelector) -> ResolvedExtension:
        """The best service for a selector (highest version, then ids); ExtensionError if none."""
        if selector.version:
            try:
                check_constraint(selector.version)
            except VersionConstraintError as exc:
                raise ExtensionError(f"selector {selector.name!r}: bad version constraint: {exc}") from None
        candidates = [
            (extension, service)
            for extension in self.extensions
            if _extension_matches(extension, selector)
            for service in extension.services
            if _service_matches(service, selector)
        ]
        if not candidates:
            known = ", ".join(f"{e.id}/{s.id}[{s.resource}]" for e in self.extensions for s in e.services)
            raise ExtensionError(
                f"extension selector {describe_selector(selector)} matches no registered service"
                + (f" (registered: {known})" if known else " (the registry is empty: pass --extensions)")
            )
        candidates.sort(
            key=lambda c: (tuple(-p for p in (parse_version(c[0].version) or (-1, -1, -1))), c[0].id, c[1].id)
        )
        extension, service = candidates[0]
        endpoint = _pick_endpoint(service)
        credential = _pick_credential(service)
        config = {
            **extension.configuration,
            **service.configuration,
            **(endpoint.configuration if endpoint else {}),
        }
        secrets = dict(credential.secrets) if credential else {}
        for key in secrets:
            config.pop(key, None)  # a Secret always wins over a plain value of the same name
        return ResolvedExtension(selector, extension, service, endpoint, config, secrets)


def _extension_matches(extension: Extension, selector: ExtensionSelector) -> bool:
    return (
        (selector.extension_id is None or selector.extension_id == extension.id)
        and (selector.product is None or selector.product == extension.product)
        and (selector.zone is None or selector.zone == extension.zone)
        and satisfies(extension.version or None, selector.version)
    )


def _service_matches(service: Service, selector: ExtensionSelector) -> bool:
    return (
        (selector.service_id is None or selector.service_id == service.id)
        and (selector.service_resource is None or selector.service_resource == service.resource)
        and (selector.service_category is None or selector.service_category == service.category)
    )
