"""The Sluice API (`sluice.dev/v1alpha1`): one definition of each resource.

Workflow, Codeset and WorkflowRun: their typed specs and parsers, their OpenAPI schemas and the
limits both share, the condition types and reasons Sluice writes, and the owner references it sets.
The CRDs (`sluice crds`) are generated from here and the operator parses with the same code, so the
API server and the operator cannot disagree on what a valid object is.

Like Flux's `api/` modules, this package stands apart from the reconcilers: it never imports
`controller.operator` or kopf (the operator imports it).
"""
