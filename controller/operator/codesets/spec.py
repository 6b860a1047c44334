"""What a Codeset polls: its `Source`. The Codeset type and its parser are `controller.api.codeset`'s."""

from __future__ import annotations

from dataclasses import dataclass

from controller.api.codeset import CodesetSpec, GitRef, InvalidCodeset, parse_codeset

# tests and benchmarks import these from here
__all__ = ["GitRef", "InvalidCodeset", "Source", "parse_codeset", "source_of"]


@dataclass(frozen=True)
class Source:
    """What one shared poll is about: a repository, a ref and whose credentials read it.

    Codesets without credentials share polls across namespaces; with a Secret, only Codesets in the
    same namespace naming the same Secret share (a revision of a private repository must not reach a
    namespace that cannot read it).
    """

    url: str
    ref: GitRef
    namespace: str | None = None
    secret_name: str | None = None


def source_of(spec: CodesetSpec) -> Source:
    if spec.secret_name:
        return Source(spec.url, spec.ref, spec.namespace, spec.secret_name)
    return Source(spec.url, spec.ref)
