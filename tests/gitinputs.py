"""The one corpus of Git URLs and revisions (tests/data/git_inputs.yaml) as pytest parameters: the
unit tests of `controller.gitsafe` and the adversarial suite read the same cases."""

from __future__ import annotations

from pathlib import Path

import yaml

_CORPUS = yaml.safe_load((Path(__file__).parent / "data" / "git_inputs.yaml").read_text(encoding="utf-8"))

# (id, the hostile text, a fragment of the refusal)
Refused = tuple[str, str, str]


def _refused(kind: str) -> list[Refused]:
    rows = [
        (entry["id"], entry[kind] + "a" * entry.get("padding", 0), entry["refusal"])
        for entry in _CORPUS[f"refused_{kind}s"]
    ]
    assert len({row[0] for row in rows}) == len(rows), f"git_inputs.yaml: refused_{kind}s repeats an id"
    return rows


REFUSED_URLS = _refused("url")
REFUSED_REFS = _refused("ref")
# (URL, kind, repository name, project)
ACCEPTED_URLS = [(e["url"], e["kind"], e["repo"], e["project"]) for e in _CORPUS["accepted_urls"]]
ACCEPTED_REFS: list[str] = _CORPUS["accepted_refs"]


def ids(rows: list[Refused]) -> list[str]:
    return [row[0] for row in rows]
