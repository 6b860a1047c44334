"""Codesets: Git repositories Sluice tracks, and what follows from a new commit.

`spec` reads a Codeset; `git` talks to Git servers (ls-remote, bounded shallow fetch), with
`gitcredentials` (through GIT_ASKPASS only) and `giterrors` (what a failure means, scrubbed);
`snapshots` shares fetches behind a clone semaphore; `poller` runs one ls-remote per (repository,
ref, credentials) per interval for all Codesets on it; `sync` applies the Workflow YAMLs of
`sync.path`; `triggers` starts WorkflowRuns pinned to a new commit; `webhooks` verifies
GitHub/GitLab/Gitea deliveries; `handlers` wires it into the operator's kopf registry.
"""
