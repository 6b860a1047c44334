"""The FuseML dialect: real FuseML workflow shapes load into the model with FuseML's semantics."""

from __future__ import annotations

from controller.spec import load_workflow_text
from controller.spec.model import CodesetMount, ExtensionRef, InputRef, StepOutputRef
from tests.spec.helpers import diagnostics, text

# Shaped like FuseML's published examples (fuseml/examples workflows/mlflow-*-e2e.yaml, fuseml-core
# testdata): scalar values FuseML read as strings, a codeset input without a name, `.version` of a
# codeset, `extensions.NAME.cfg.KEY`, resources, duplicated value inputs.
FUSEML_SHAPES = text("""
    name: mlflow-multi
    description: train once, serve twice
    inputs:
      - name: mlflow-codeset
        type: codeset
      - name: mlflow_entrypoint
        default: main
    outputs:
      - name: prediction-url
    steps:
      - name: builder
        image: ghcr.io/fuseml/mlflow-builder:v0.3.0
        inputs:
          - codeset:
              name: '{{ inputs.mlflow-codeset }}'
              path: /project
          - name: verbose
            value: false
        outputs:
          - name: image
            image:
              name: >-
                registry.fuseml-registry/mlflow-builder/{{ inputs.mlflow-codeset.name
                }}:{{ inputs.mlflow-codeset.version }}
      - name: trainer
        image: '{{ steps.builder.outputs.image }}'
        inputs:
          - name: mlflow-codeset
            codeset:
              name: '{{ inputs.mlflow-codeset }}'
              path: /project
          - name: entrypoint
            value: '{{ inputs.mlflow_entrypoint }}'
          - name: batch
            value: 1
        outputs:
          - name: mlflow-model-url
        extensions:
          - name: mlflow-store
            product: mlflow
            service_resource: s3
        env:
          - name: TF_ENABLE_ONEDNN_OPTS
            value: 1
          - name: S3_ENDPOINT
            value: '{{ extensions.mlflow-store.cfg.MLFLOW_S3_ENDPOINT_URL }}'
        resources:
          requests:
            cpu: 1
      - name: predictor
        image: ghcr.io/fuseml/kserve-predictor:v0.3.0
        inputs:
          - name: model
            value: '{{ steps.trainer.outputs.mlflow-model-url }}'
          - name: app_name
            value: '{{ inputs.mlflow-codeset.name }}-{{ inputs.mlflow-codeset.project }}'
        outputs:
          - name: prediction-url
    """)


def test_fuseml_shapes_load_with_fuseml_semantics() -> None:
    wf = load_workflow_text(FUSEML_SHAPES, "fuseml.yaml")
    assert wf.dialect == "fuseml"
    assert [(i.name, i.type, i.default) for i in wf.inputs] == [
        ("mlflow-codeset", "codeset", None),
        ("mlflow_entrypoint", "string", "main"),
    ]
    builder, trainer, predictor = wf.steps
    # the container contract: FuseML images run their `run` command
    assert {s.command for s in wf.steps} == {("run",)}
    assert builder.codesets == (CodesetMount("mlflow-codeset", "/project"),)
    # scalars are passed as the text FuseML would have passed
    assert [(n, t.raw) for n, t in builder.fuseml_inputs] == [("verbose", "false")]
    assert [(n, t.raw) for n, t in trainer.fuseml_inputs][1:] == [("batch", "1")]
    assert trainer.env[0].value is not None and trainer.env[0].value.raw == "1"
    assert trainer.env[1].value is not None
    assert trainer.env[1].value.single_ref == ExtensionRef("mlflow-store", ("cfg", "MLFLOW_S3_ENDPOINT_URL"))
    assert trainer.extensions[0].service_resource == "s3"
    assert trainer.resources.requests == {"cpu": "1"}
    assert trainer.image is not None and trainer.image.single_ref == StepOutputRef("builder", "image")
    app_name = dict(predictor.fuseml_inputs)["app_name"]
    assert app_name.refs == (InputRef("mlflow-codeset", "name"), InputRef("mlflow-codeset", "project"))
    # a workflow output is the output of the same name of the last step declaring it
    (output,) = wf.outputs
    assert output.value.single_ref == StepOutputRef("predictor", "prediction-url")
    # FuseML outputs are strings (Tekton results)
    assert {o.type for s in wf.steps for o in s.outputs} == {"string"}


def test_fuseml_steps_form_a_real_dag() -> None:
    """FuseML ran steps in listing order; here references order them, so a reference loop is a cycle."""
    found = diagnostics(
        text("""
            name: loop
            steps:
              - {name: a, image: busybox, inputs: [{name: x, value: "{{ steps.b.outputs.o }}"}],
                 outputs: [{name: o}]}
              - {name: b, image: busybox, inputs: [{name: x, value: "{{ steps.a.outputs.o }}"}],
                 outputs: [{name: o}]}
            """)
    )
    assert [(d.code, d.path, d.line) for d in found] == [("dag.cycle", "$.steps[1].name", 5)]
