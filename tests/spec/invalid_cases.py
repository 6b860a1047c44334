"""The table of invalid documents: each with its error code, line, JSON path and a message fragment.

Native documents are built with `native(body)`: lines 1-3 are the header (apiVersion, kind,
metadata), so the body's first line (`spec:`) is line 4 of the file.
"""

from __future__ import annotations

from tests.spec.helpers import Case, native, text

# A table: each case keeps its expectations (code, line, path, message) on one line.
# fmt: off

YAML_CASES = [
    Case(
        "yaml.syntax: unclosed flow sequence",
        text("""
            apiVersion: sluice.dev/v1alpha1
            kind: Workflow
            metadata: {name: demo}
            spec:
              steps: [{name: a, image: busybox}
            """),
        "yaml.syntax", 6, "", "YAML syntax error: did not find expected ',' or ']'",
    ),
    Case(
        "yaml.syntax: tab indentation",
        "apiVersion: sluice.dev/v1alpha1\nkind: Workflow\nmetadata:\n\tname: demo\n",
        "yaml.syntax", 4, "", "tabs cannot indent YAML; use spaces", col=1,
    ),
    Case(
        "yaml.syntax: control character",
        "apiVersion: sluice.dev/v1alpha1\nkind: Workflow\nmetadata: {name: d\x07mo}\n",
        "yaml.syntax", 3, "", "character #x0007 is not allowed", col=19,
    ),
    Case(
        "yaml.duplicate-key: step name twice",
        native("""
            spec:
              steps:
                - name: a
                  image: busybox
                  name: b
            """),
        "yaml.duplicate-key", 8, "$.spec.steps[0]", "duplicate key 'name' (first defined on line 6)", col=7,
    ),
    Case(
        "yaml.duplicate-key: top level",
        native("""
            kind: Workflow
            spec: {steps: [{name: a, image: busybox}]}
            """),
        "yaml.duplicate-key", 4, "$", "duplicate key 'kind' (first defined on line 2)",
    ),
    Case(
        "yaml.anchor",
        native("""
            spec:
              steps:
                - &step {name: a, image: busybox}
            """),
        "yaml.anchor", 6, "", "anchors (&name) are not allowed", col=7,
    ),
    Case(
        "yaml.alias (an alias bomb stops at the first alias)",
        native("""
            spec:
              steps: [*lol, *lol, *lol, *lol, *lol, *lol, *lol, *lol, *lol]
            """),
        "yaml.alias", 5, "", "aliases (*name) are not allowed", col=11,
    ),
    Case(
        "yaml.tag: !!python/object",
        native("""
            spec: !!python/object:os.system {}
            """),
        "yaml.tag", 4, "", "tag 'tag:yaml.org,2002:python/object:",
    ),
    Case(
        "yaml.tag: !!python/name on a scalar",
        native("""
            spec:
              steps: [{name: a, image: !!python/name:os.system ''}]
            """),
        "yaml.tag", 5, "", "is not allowed",
    ),
    Case(
        "yaml.tag: a local tag",
        native("""
            spec: !custom {steps: []}
            """),
        "yaml.tag", 4, "", "tag '!custom' is not allowed",
    ),
    Case(
        "yaml.tag: a collection tag on the wrong kind",
        native("""
            spec: !!seq {steps: []}
            """),
        "yaml.tag", 4, "", "does not fit a map",
    ),
    Case(
        "yaml.value: !!int that is not one",
        native("""
            spec:
              steps: [{name: a, image: busybox, retries: !!int three}]
            """),
        "yaml.value", 5, "", "'three' is not a valid int",
    ),
    Case(
        "yaml.value: !!bool that is not one",
        native("""
            spec:
              steps: [{name: a, image: busybox, retries: !!bool maybe}]
            """),
        "yaml.value", 5, "", "'maybe' is not a valid bool",
    ),
    Case(
        "yaml.value: an integer too long to convert",
        native(f"""
            spec:
              steps: [{{name: a, image: busybox, retries: {"9" * 5000}}}]
            """),
        "yaml.value", 5, "", "is not a valid int",
    ),
    Case(
        "yaml.complex-key",
        native("""
            spec:
              ? [a, b]
              : 1
            """),
        "yaml.complex-key", 5, "$.spec", "mapping keys must be scalars",
    ),
    Case(
        "yaml.multiple-documents",
        native("""
            spec:
              steps: [{name: a, image: busybox}]
            ---
            kind: Workflow
            """),
        "yaml.multiple-documents", 6, "", "exactly one YAML document is allowed",
    ),
    Case("yaml.empty: nothing", "", "yaml.empty", 1, "", "the file holds no YAML document"),
    Case("yaml.empty: only comments", "# a comment\n\n# another\n", "yaml.empty", 1, "", "no YAML document"),
    Case("yaml.empty: an explicit null", "~\n", "yaml.empty", 1, "", "no YAML document"),
]

SCHEMA_CASES = [
    Case(
        "schema.type: the document is a list",
        "- name: a\n- name: b\n",
        "schema.type", 1, "$", "a workflow must be a mapping",
    ),
    Case(
        "schema.type: the document is a string",
        "just some words\n",
        "schema.type", 1, "$", "a workflow must be a mapping",
    ),
    Case(
        "schema.const: apiVersion",
        text("""
            apiVersion: sluice.dev/v1
            kind: Workflow
            metadata: {name: demo}
            spec: {steps: [{name: a, image: busybox}]}
            """),
        "schema.const", 1, "$.apiVersion", "must be 'sluice.dev/v1alpha1'",
    ),
    Case(
        "schema.const: kind",
        text("""
            apiVersion: sluice.dev/v1alpha1
            kind: Pipeline
            metadata: {name: demo}
            spec: {steps: [{name: a, image: busybox}]}
            """),
        "schema.const", 2, "$.kind", "must be 'Workflow'",
    ),
    Case(
        "schema.unknown-field: did you mean",
        native("""
            spec:
              steps:
                - name: a
                  image: busybox
                  comand: [echo, hi]
            """),
        "schema.unknown-field", 8, "$.spec.steps[0].comand",
        "unknown field 'comand'; did you mean 'command'?",
        col=7,
    ),
    Case(
        "schema.unknown-field: known fields listed when nothing is close",
        native("""
            spec:
              steps: [{name: a, image: busybox}]
              zzz: 1
            """),
        "schema.unknown-field", 6, "$.spec.zzz", "known fields: description, inputs, outputs, steps",
    ),
    Case(
        "schema.required: metadata.name",
        text("""
            apiVersion: sluice.dev/v1alpha1
            kind: Workflow
            metadata: {namespace: ml}
            spec: {steps: [{name: a, image: busybox}]}
            """),
        "schema.required", 3, "$.metadata", "missing required field 'name'",
    ),
    Case(
        "schema.required: a step's name",
        native("""
            spec:
              steps:
                - image: busybox
            """),
        "schema.required", 6, "$.spec.steps[0]", "missing required field 'name'",
    ),
    Case(
        "schema.required: spec",
        text("""
            apiVersion: sluice.dev/v1alpha1
            kind: Workflow
            metadata: {name: demo}
            """),
        "schema.required", 1, "$", "missing required field 'spec'",
    ),
    Case(
        "schema.enum: input type",
        native("""
            spec:
              inputs:
                - {name: rate, type: float}
              steps: [{name: a, image: busybox}]
            """),
        "schema.enum", 6, "$.spec.inputs[0].type",
        "must be one of: string, integer, number, boolean, codeset",
    ),
    Case(
        "schema.enum: runPolicy.concurrency",
        native("""
            spec:
              runPolicy: {concurrency: Sometimes}
              steps: [{name: a, image: busybox}]
            """),
        "schema.enum", 5, "$.spec.runPolicy.concurrency", "must be one of: Allow, Forbid, Replace",
    ),
    Case(
        "schema.type: retries as a string",
        native("""
            spec:
              steps:
                - name: a
                  image: busybox
                  retries: "3"
            """),
        "schema.type", 8, "$.spec.steps[0].retries", "must be an integer, not a string",
    ),
    Case(
        "schema.type: steps as a mapping",
        native("""
            spec:
              steps: {name: a, image: busybox}
            """),
        "schema.type", 5, "$.spec.steps", "must be an array, not an object",
    ),
    Case(
        "schema.minimum: retries < 0",
        native("""
            spec:
              steps:
                - name: a
                  image: busybox
                  retries: -1
            """),
        "schema.minimum", 8, "$.spec.steps[0].retries", "must be at least 0",
    ),
    Case(
        "schema.minItems: no steps",
        native("""
            spec:
              steps: []
            """),
        "schema.minItems", 5, "$.spec.steps", "needs at least 1 item(s)",
    ),
    Case(
        "schema.pattern: metadata.name not DNS-1123",
        text("""
            apiVersion: sluice.dev/v1alpha1
            kind: Workflow
            metadata: {name: Sum_Of_Two}
            spec: {steps: [{name: a, image: busybox}]}
            """),
        "schema.pattern", 3, "$.metadata.name", "'Sum_Of_Two' is not a DNS-1123 label",
    ),
    Case(
        "schema.pattern: step name not DNS-1123",
        native("""
            spec:
              steps:
                - name: -train-
                  image: busybox
            """),
        "schema.pattern", 6, "$.spec.steps[0].name", "'-train-' is not a DNS-1123 label",
    ),
    Case(
        "schema.maxLength: metadata.name over 63 characters",
        text(f"""
            apiVersion: sluice.dev/v1alpha1
            kind: Workflow
            metadata: {{name: {"a" * 64}}}
            spec: {{steps: [{{name: a, image: busybox}}]}}
            """),
        "schema.maxLength", 3, "$.metadata.name", "is longer than 63 characters",
    ),
    Case(
        "schema.pattern: uses without the sluice/ prefix",
        native("""
            spec:
              steps:
                - name: a
                  uses: prepare
            """),
        "schema.pattern", 7, "$.spec.steps[0].uses", "is not a built-in stage such as sluice/train-keras",
    ),
    Case(
        "schema.pattern: timeout not a duration",
        native("""
            spec:
              steps:
                - name: a
                  image: busybox
                  timeout: 10 minutes
            """),
        "schema.pattern", 8, "$.spec.steps[0].timeout", "is not a duration such as 90s, 10m or 1h30m",
    ),
    Case(
        "schema.pattern: environment variable name",
        native("""
            spec:
              steps:
                - name: a
                  image: busybox
                  env: {1BAD: x}
            """),
        "schema.pattern", 8, "$.spec.steps[0].env", "is not an environment variable name",
    ),
]

FORBIDDEN_CASES = [
    Case(
        f"spec.forbidden-field: {field}",
        native(f"""
            spec:
              steps:
                - name: a
                  image: busybox
                  {field}: {value}
            """),
        "spec.forbidden-field", 8, f"$.spec.steps[0].{field}", f"'{field}' is not allowed: {why}",
    )
    for field, value, why in [
        ("securityContext", "{runAsUser: 0}", "steps always run restricted"),
        ("hostNetwork", "true", "a step may not use the node's network"),
        ("hostPath", "/var/run/docker.sock", "a step may not mount the node's filesystem"),
        ("privileged", "true", "privileged containers can take over the node"),
        ("serviceAccountName", "cluster-admin", "runs use the run ServiceAccount the platform team"),
        ("volumes", "[{name: v}]", "storage is the run's artifact store"),
    ]
] + [
    Case(
        "spec.forbidden-field: podTemplate on the spec",
        native("""
            spec:
              podTemplate: {nodeSelector: {gpu: "true"}}
              steps: [{name: a, image: busybox}]
            """),
        "spec.forbidden-field", 5, "$.spec.podTemplate", "belong to the platform team",
    ),
    Case(
        "spec.forbidden-field: nested deeper, in resources",
        native("""
            spec:
              steps:
                - name: a
                  image: busybox
                  resources: {limits: {cpu: 1}, securityContext: {}}
            """),
        "spec.forbidden-field", 8, "$.spec.steps[0].resources.securityContext",
        "'securityContext' is not allowed",
    ),
]

SPEC_CASES = [
    Case(
        "spec.duplicate-step",
        native("""
            spec:
              steps:
                - {name: train, image: busybox}
                - {name: train, image: alpine}
            """),
        "spec.duplicate-step", 7, "$.spec.steps[1].name", "step name 'train' is already used by steps[0]",
    ),
    Case(
        "spec.duplicate-input",
        native("""
            spec:
              inputs:
                - {name: samples, type: integer}
                - {name: samples, type: number}
              steps: [{name: a, image: busybox}]
            """),
        "spec.duplicate-input", 7, "$.spec.inputs[1].name", "input 'samples' is declared twice",
    ),
    Case(
        "spec.duplicate-step-output",
        native("""
            spec:
              steps:
                - name: a
                  image: busybox
                  outputs:
                    - {name: score}
                    - {name: score, type: number}
            """),
        "spec.duplicate-step-output", 10, "$.spec.steps[0].outputs[1].name",
        "step output 'score' is declared twice",
    ),
    Case(
        "spec.duplicate-output (workflow outputs)",
        native("""
            spec:
              steps:
                - {name: a, image: busybox, outputs: [{name: o}]}
              outputs:
                - {name: result, value: "{{ steps.a.outputs.o }}"}
                - {name: result, value: "{{ steps.a.outputs.o }}"}
            """),
        "spec.duplicate-output", 9, "$.spec.outputs[1].name", "output 'result' is declared twice",
    ),
    Case(
        "spec.uses-or-image: both",
        native("""
            spec:
              steps:
                - name: a
                  uses: sluice/prepare
                  image: busybox
            """),
        "spec.uses-or-image", 6, "$.spec.steps[0]", "exactly one of 'uses' (a built-in stage) or 'image'",
    ),
    Case(
        "spec.uses-or-image: neither",
        native("""
            spec:
              steps:
                - name: a
                  retries: 1
            """),
        "spec.uses-or-image", 6, "$.spec.steps[0]", "exactly one of 'uses'",
    ),
    Case(
        "spec.unknown-stage",
        native("""
            spec:
              steps:
                - name: a
                  uses: sluice/train-pytorch
            """),
        "spec.unknown-stage", 7, "$.spec.steps[0].uses",
        "unknown built-in stage 'sluice/train-pytorch'; known:",
    ),
    Case(
        "spec.unknown-param",
        native("""
            spec:
              steps:
                - name: a
                  uses: sluice/prepare
                  with: {generator: sum-of-two, sampels: 10}
            """),
        "spec.unknown-param", 8, "$.spec.steps[0].with.sampels", "sluice/prepare has no parameter 'sampels'",
    ),
    Case(
        "spec.param-type",
        native("""
            spec:
              steps:
                - name: a
                  uses: sluice/prepare
                  with:
                    generator: sum-of-two
                    samples: lots
            """),
        "spec.param-type", 10, "$.spec.steps[0].with.samples", "parameter 'samples' must be an integer",
    ),
    Case(
        "spec.missing-param",
        native("""
            spec:
              steps:
                - name: a
                  uses: sluice/train-keras
                  with: {epochs: 3}
            """),
        "spec.missing-param", 8, "$.spec.steps[0].with", "sluice/train-keras needs parameter 'dataset'",
    ),
    Case(
        "spec.unknown-output",
        native("""
            spec:
              steps:
                - name: a
                  uses: sluice/prepare
                  outputs: [{name: data, type: dataset}]
            """),
        "spec.unknown-output", 8, "$.spec.steps[0].outputs[0].name",
        "sluice/prepare has no output 'data'; it produces: dataset, rows",
    ),
    Case(
        "spec.output-type",
        native("""
            spec:
              steps:
                - name: a
                  uses: sluice/prepare
                  outputs:
                    - name: dataset
                      type: model
            """),
        "spec.output-type", 10, "$.spec.steps[0].outputs[0].type",
        "output 'dataset' of sluice/prepare is a dataset, not a model",
    ),
    Case(
        "spec.stage-field",
        native("""
            spec:
              steps:
                - name: a
                  uses: sluice/prepare
                  command: [python, prep.py]
            """),
        "spec.stage-field", 8, "$.spec.steps[0].command", "'command' is for container steps, not for 'uses'",
    ),
    Case(
        "spec.script-and-command",
        native("""
            spec:
              steps:
                - name: a
                  image: python:3.12
                  command: [python]
                  script: print("hi")
            """),
        "spec.script-and-command", 9, "$.spec.steps[0].script", "either 'script' or 'command', not both",
    ),
    Case(
        "spec.default-type: integer",
        native("""
            spec:
              inputs:
                - {name: samples, type: integer, default: many}
              steps: [{name: a, image: busybox}]
            """),
        "spec.default-type", 6, "$.spec.inputs[0].default",
        "default of input 'samples' is not a valid integer",
    ),
    Case(
        "spec.default-type: boolean given as a number",
        native("""
            spec:
              inputs:
                - name: shuffle
                  type: boolean
                  default: 1
              steps: [{name: a, image: busybox}]
            """),
        "spec.default-type", 8, "$.spec.inputs[0].default", "is not a valid boolean",
    ),
    Case(
        "spec.default-type: codeset not a Codeset name",
        native("""
            spec:
              inputs:
                - {name: src, type: codeset, default: My_Repo}
              steps: [{name: a, image: busybox}]
            """),
        "spec.default-type", 6, "$.spec.inputs[0].default", "is not a valid codeset (the name of a Codeset)",
    ),
    Case(
        "spec.quantity: resources",
        native("""
            spec:
              steps:
                - name: a
                  image: busybox
                  resources:
                    limits: {memory: 2GB}
            """),
        "spec.quantity", 9, "$.spec.steps[0].resources.limits.memory",
        "'2GB' is not a Kubernetes quantity (such as 500m, 2Gi or 1)",
    ),
    Case(
        "spec.quantity: artifacts.size",
        native("""
            spec:
              artifacts: {size: big}
              steps: [{name: a, image: busybox}]
            """),
        "spec.quantity", 5, "$.spec.artifacts.size", "'big' is not a Kubernetes quantity",
    ),
    Case(
        "spec.schedule: cron expression",
        native("""
            spec:
              schedule: {cron: "0 25 * * *"}
              steps: [{name: a, image: busybox}]
            """),
        "spec.schedule", 5, "$.spec.schedule.cron", "'0 25 * * *' is not a valid cron expression: Bad hour",
    ),
    Case(
        "spec.schedule: six fields",
        native("""
            spec:
              schedule: {cron: "0 0 0 * * *"}
              steps: [{name: a, image: busybox}]
            """),
        "spec.schedule", 5, "$.spec.schedule.cron", "has 6 fields; a cron expression has 5",
    ),
    Case(
        "spec.schedule: time zone",
        native("""
            spec:
              schedule: {cron: "@daily", timeZone: Moon/Tranquility}
              steps: [{name: a, image: busybox}]
            """),
        "spec.schedule", 5, "$.spec.schedule.timeZone", "'Moon/Tranquility' is not an IANA time zone",
    ),
    Case(
        "spec.duration: shorter than a second",
        native("""
            spec:
              steps:
                - name: a
                  image: busybox
                  timeout: 500ms
            """),
        "spec.duration", 8, "$.spec.steps[0].timeout", "'500ms' is shorter than one second",
    ),
]

EXPRESSION_CASES = [
    Case(
        "expr.syntax: unterminated {{",
        native("""
            spec:
              steps:
                - name: a
                  image: busybox
                  args: ["--n", "{{ inputs.n"]
            """),
        "expr.syntax", 8, "$.spec.steps[0].args[1]",
        "unterminated expression: '{{' without '}}' (at character 1)",
    ),
    Case(
        "expr.syntax: empty {{ }}",
        native("""
            spec:
              steps:
                - name: a
                  image: busybox
                  args: ["x={{ }}"]
            """),
        "expr.syntax", 8, "$.spec.steps[0].args[0]", "empty expression '{{ }}' (at character 3)",
    ),
    Case(
        "expr.syntax: unknown root",
        native("""
            spec:
              steps:
                - name: a
                  image: busybox
                  env: {HOME_DIR: "{{ env.HOME }}"}
            """),
        "expr.syntax", 8, "$.spec.steps[0].env.HOME_DIR",
        "unknown reference root 'env' in 'env.HOME': expected inputs, steps, outputs or extensions",
    ),
    Case(
        "expr.syntax: {{ inside {{",
        native("""
            spec:
              steps:
                - name: a
                  image: busybox
                  args: ["{{ inputs.{{ inputs.n }} }}"]
            """),
        "expr.syntax", 8, "$.spec.steps[0].args[0]", "'{{' inside another '{{'",
    ),
    Case(
        "expr.syntax: malformed step reference",
        native("""
            spec:
              steps:
                - {name: a, image: busybox, outputs: [{name: o}]}
                - name: b
                  image: busybox
                  args: ["{{ steps.a.o }}"]
            """),
        "expr.syntax", 9, "$.spec.steps[1].args[0]", "expected steps.STEP.outputs.OUTPUT",
    ),
    Case(
        "expr.syntax: in a stage parameter nested in a list",
        native("""
            spec:
              steps:
                - name: a
                  uses: sluice/prepare
                  with:
                    generator: sum-of-two
                    split: [0.8, "{{ inputs.x", 0.1]
            """),
        "expr.syntax", 10, "$.spec.steps[0].with.split[1]", "unterminated expression",
    ),
    Case(
        "ref.unknown-input",
        native("""
            spec:
              inputs: [{name: samples, type: integer, default: 5}]
              steps:
                - name: a
                  uses: sluice/prepare
                  with: {generator: sum-of-two, samples: "{{ inputs.sampels }}"}
            """),
        "ref.unknown-input", 9, "$.spec.steps[0].with.samples", "unknown input 'sampels' (inputs: samples)",
    ),
    Case(
        "ref.unknown-input: in a command",
        native("""
            spec:
              steps:
                - name: a
                  image: busybox
                  command: [echo, "{{ inputs.greeting }}"]
            """),
        "ref.unknown-input", 8, "$.spec.steps[0].command[1]",
        "unknown input 'greeting' (inputs: none declared)",
    ),
    Case(
        "ref.unknown-step",
        native("""
            spec:
              steps:
                - name: train
                  uses: sluice/train-keras
                  with: {dataset: "{{ steps.prepare.outputs.dataset }}"}
            """),
        "ref.unknown-step", 8, "$.spec.steps[0].with.dataset", "unknown step 'prepare'",
    ),
    Case(
        "ref.unknown-output",
        native("""
            spec:
              steps:
                - {name: prep, uses: sluice/prepare, outputs: [{name: dataset, type: dataset}]}
                - name: train
                  uses: sluice/train-keras
                  with: {dataset: "{{ steps.prep.outputs.data }}"}
            """),
        "ref.unknown-output", 9, "$.spec.steps[1].with.dataset",
        "step 'prep' does not declare output 'data' (declared: dataset)",
    ),
    Case(
        "ref.self",
        native("""
            spec:
              steps:
                - name: a
                  image: busybox
                  args: ["{{ steps.a.outputs.o }}"]
                  outputs: [{name: o}]
            """),
        "ref.self", 8, "$.spec.steps[0].args[0]", "step 'a' cannot use its own output 'o'",
    ),
    Case(
        "ref.input-attr",
        native("""
            spec:
              inputs: [{name: samples, type: integer, default: 5}]
              steps:
                - name: a
                  image: busybox
                  args: ["{{ inputs.samples.path }}"]
            """),
        "ref.input-attr", 9, "$.spec.steps[0].args[0]",
        "'.path' is only for codeset inputs; 'samples' is an integer",
    ),
    Case(
        "ref.codeset-attr",
        native("""
            spec:
              inputs: [{name: src, type: codeset}]
              steps:
                - name: a
                  image: busybox
                  workingDir: "{{ inputs.src }}"
            """),
        "ref.codeset-attr", 9, "$.spec.steps[0].workingDir",
        "use '{{ inputs.src.path }}' (or .revision, .url)",
    ),
    Case(
        "ref.type: a number where a dataset is needed",
        native("""
            spec:
              steps:
                - {name: prep, uses: sluice/prepare, outputs: [{name: rows, type: number}]}
                - name: train
                  uses: sluice/train-keras
                  with: {dataset: "{{ steps.prep.outputs.rows }}"}
            """),
        "ref.type", 9, "$.spec.steps[1].with.dataset", "needs a reference to a dataset",
    ),
    Case(
        "ref.type: an integer input where a model is needed",
        native("""
            spec:
              inputs: [{name: n, type: integer, default: 1}]
              steps:
                - name: serve
                  uses: sluice/deploy
                  with: {model: "{{ inputs.n }}"}
            """),
        "ref.type", 9, "$.spec.steps[0].with.model", "needs a reference to a model",
    ),
    Case(
        "ref.unknown-extension: native steps have none",
        native("""
            spec:
              steps:
                - name: a
                  image: busybox
                  env: {URL: "{{ extensions.mlflow.url }}"}
            """),
        "ref.unknown-extension", 8, "$.spec.steps[0].env.URL",
        "extension 'mlflow' is not required by this step",
    ),
    Case(
        "when.syntax: no operator",
        native("""
            spec:
              inputs: [{name: go, type: boolean, default: true}]
              steps:
                - name: a
                  image: busybox
                  when: "{{ inputs.go }}"
            """),
        "when.syntax", 9, "$.spec.steps[0].when",
        "a condition needs an operator: ==, !=, <, <=, >, >=, in or notin",
    ),
    Case(
        "when.syntax: missing operand",
        native("""
            spec:
              inputs: [{name: n, type: number, default: 1}]
              steps:
                - name: a
                  image: busybox
                  when: "{{ inputs.n }} >="
            """),
        "when.syntax", 9, "$.spec.steps[0].when", "missing operand",
    ),
    Case(
        "when.syntax: in without a list",
        native("""
            spec:
              inputs: [{name: target, type: string, default: kserve}]
              steps:
                - name: a
                  image: busybox
                  when: "{{ inputs.target }} in kserve, seldon"
            """),
        "when.syntax", 9, "$.spec.steps[0].when", "'in' needs a list such as [a, b]",
    ),
    Case(
        "when.syntax: two comparisons",
        native("""
            spec:
              inputs: [{name: n, type: number, default: 1}]
              steps:
                - name: a
                  image: busybox
                  when: "0 < {{ inputs.n }} < 5"
            """),
        "when.syntax", 9, "$.spec.steps[0].when", "only one comparison is allowed in a condition",
    ),
    Case(
        "when.type: ordering a string",
        native("""
            spec:
              inputs: [{name: target, type: string, default: kserve}]
              steps:
                - name: a
                  image: busybox
                  when: "{{ inputs.target }} > 3"
            """),
        "when.type", 9, "$.spec.steps[0].when", "'>' compares numbers; '{{ inputs.target }}' is not a number",
    ),
    Case(
        "when.type: ordering against a word",
        native("""
            spec:
              inputs: [{name: n, type: number, default: 1}]
              steps:
                - name: a
                  image: busybox
                  when: "{{ inputs.n }} <= high"
            """),
        "when.type", 9, "$.spec.steps[0].when", "'high' is not a number",
    ),
    Case(
        "ref.unknown-output: in a when",
        native("""
            spec:
              steps:
                - {name: score, image: busybox, outputs: [{name: mae, type: number}]}
                - name: deploy
                  image: busybox
                  when: "{{ steps.score.outputs.mse }} < 1"
            """),
        "ref.unknown-output", 9, "$.spec.steps[1].when", "does not declare output 'mse' (declared: mae)",
    ),
    Case(
        "expr.syntax: an output without .path",
        native("""
            spec:
              steps:
                - name: a
                  image: busybox
                  args: ["{{ outputs.o }}"]
                  outputs: [{name: o}]
            """),
        "expr.syntax", 8, "$.spec.steps[0].args[0]",
        "malformed reference 'outputs.o': expected outputs.NAME.path",
    ),
    Case(
        "ref.unknown-output: the path of an output the step does not declare",
        native("""
            spec:
              steps:
                - name: a
                  image: busybox
                  script: echo 1 > "{{ outputs.scroe.path }}"
                  outputs: [{name: score, type: number}]
            """),
        "ref.unknown-output", 8, "$.spec.steps[0].script",
        "step 'a' does not declare output 'scroe' (declared: score)",
    ),
    Case(
        "ref.unknown-output: the path of another step's output",
        native("""
            spec:
              steps:
                - {name: make, image: busybox, outputs: [{name: table, type: dataset}]}
                - name: use
                  image: busybox
                  env: {TABLE: "{{ outputs.table.path }}"}
            """),
        "ref.unknown-output", 9, "$.spec.steps[1].env.TABLE",
        "step 'use' does not declare output 'table' (declared: none); to read step 'make''s, use "
        "'{{ steps.make.outputs.table }}'",
    ),
    Case(
        "ref.output-path: in a built-in stage",
        native("""
            spec:
              steps:
                - name: prep
                  uses: sluice/prepare
                  with: {generator: sum-of-two, source: "{{ outputs.dataset.path }}"}
                  outputs: [{name: dataset, type: dataset}]
            """),
        "ref.output-path", 8, "$.spec.steps[0].with.source",
        "'{{ outputs.dataset.path }}' is for container steps; sluice/prepare writes its outputs itself",
    ),
    Case(
        "ref.output-path: in a when",
        native("""
            spec:
              steps:
                - name: a
                  image: busybox
                  when: "{{ outputs.o.path }} == x"
                  outputs: [{name: o}]
            """),
        "ref.output-path", 8, "$.spec.steps[0].when",
        "'{{ outputs.o.path }}' can be used only in script, command, args, env of the step that declares "
        "the output, not in 'when'",
    ),
    Case(
        "ref.output-path: in workingDir",
        native("""
            spec:
              steps:
                - name: a
                  image: busybox
                  workingDir: "{{ outputs.o.path }}"
                  outputs: [{name: o, type: dataset}]
            """),
        "ref.output-path", 8, "$.spec.steps[0].workingDir", "not in 'workingDir'",
    ),
    Case(
        "ref.output-path: in a workflow output",
        native("""
            spec:
              steps:
                - {name: a, image: busybox, outputs: [{name: o}]}
              outputs:
                - {name: result, value: "{{ outputs.o.path }}"}
            """),
        "ref.output-path", 8, "$.spec.outputs[0].value",
        "'{{ outputs.o.path }}' is where a step writes its own output; a workflow output names a step's "
        "output as '{{ steps.STEP.outputs.o }}'",
    ),
    Case(
        "ref.output-path: in a FuseML step",
        text("""
            name: fm
            steps:
              - name: trainer
                image: ghcr.io/fuseml/trainer:1
                env: [{name: OUT, value: "{{ outputs.model.path }}"}]
                outputs: [{name: model}]
            """),
        "ref.output-path", 5, "$.steps[0].env[0].value",
        "'{{ outputs.model.path }}' is for native steps; a FuseML step writes /tekton/results/$TASK_RESULT",
    ),
    Case(
        "ref.shell-quoting: a reference inside single quotes in a script",
        native("""
            spec:
              inputs: [{name: x, type: string}]
              steps:
                - name: a
                  image: busybox
                  script: "echo 'x={{ inputs.x }}'"
            """),
        "ref.shell-quoting", 9, "$.spec.steps[0].script",
        "{{ inputs.x }} is inside single quotes (or $'...'), where a shell expands nothing",
    ),
    Case(
        "ref.shell-quoting: a reference in a here-document with a quoted delimiter",
        native("""
            spec:
              inputs: [{name: x, type: string}]
              steps:
                - name: a
                  image: busybox
                  script: |
                    cat <<'EOF'
                    {{ inputs.x }}
                    EOF
            """),
        "ref.shell-quoting", 9, "$.spec.steps[0].script", "use an unquoted delimiter (<<EOF)",
    ),
    Case(
        "ref.shell-quoting: a step output inside $(( )) of sh -c",
        native("""
            spec:
              steps:
                - {name: a, image: busybox, script: "echo 1 > {{ outputs.n.path }}", outputs: [{name: n}]}
                - name: b
                  image: busybox
                  command: [/bin/sh, -ec, "echo $(( {{ steps.a.outputs.n }} + 1 ))"]
            """),
        "ref.shell-quoting", 9, "$.spec.steps[1].command[2]",
        "{{ steps.a.outputs.n }} is inside $(( )) arithmetic, where a shell would evaluate the value",
    ),
    Case(
        "ref.shell-quoting: single quotes in the -c string given as args of a shell",
        native("""
            spec:
              inputs: [{name: x, type: string}]
              steps:
                - name: a
                  image: busybox
                  command: [bash]
                  args: [-c, "echo '{{ inputs.x }}'"]
            """),
        "ref.shell-quoting", 10, "$.spec.steps[0].args[1]", "inside single quotes",
    ),
    Case(
        "ref.code-text: a reference in a Python script",
        native("""
            spec:
              inputs: [{name: x, type: string}]
              steps:
                - name: a
                  image: python:3.12-slim
                  script: |
                    #!/usr/bin/env python3
                    print("{{ inputs.x }}")
            """),
        "ref.code-text", 9, "$.spec.steps[0].script",
        "{{ inputs.x }} would be pasted into python code, where it could run as code: pass it through env:",
    ),
    Case(
        "ref.code-text: a reference in python -c code",
        native("""
            spec:
              inputs: [{name: x, type: string}]
              steps:
                - name: a
                  image: python:3.12-slim
                  command: [python3, -c, "print('{{ inputs.x }}')", "{{ inputs.x }}"]
            """),
        "ref.code-text", 9, "$.spec.steps[0].command[2]", "would be pasted into python code",
    ),
]

DAG_CASES = [
    Case(
        "dag.unknown-step",
        native("""
            spec:
              steps:
                - name: a
                  image: busybox
                  runAfter: [prepare]
            """),
        "dag.unknown-step", 8, "$.spec.steps[0].runAfter[0]", "runAfter names unknown step 'prepare'", col=18,
    ),
    Case(
        "dag.self",
        native("""
            spec:
              steps:
                - name: a
                  image: busybox
                  runAfter:
                    - a
            """),
        "dag.self", 9, "$.spec.steps[0].runAfter[0]", "a step cannot run after itself",
    ),
    Case(
        "dag.cycle: through references",
        native("""
            spec:
              steps:
                - {name: a, image: busybox, args: ["{{ steps.b.outputs.o }}"], outputs: [{name: o}]}
                - {name: b, image: busybox, args: ["{{ steps.a.outputs.o }}"], outputs: [{name: o}]}
            """),
        "dag.cycle", 7, "$.spec.steps[1].name", "steps form a cycle: b -> a -> b",
    ),
    Case(
        "dag.cycle: through runAfter",
        native("""
            spec:
              steps:
                - {name: a, image: busybox, runAfter: [c]}
                - {name: b, image: busybox, runAfter: [a]}
                - {name: c, image: busybox, runAfter: [b]}
            """),
        "dag.cycle", 7, "$.spec.steps[1].name", "steps form a cycle: b -> c -> a -> b",
    ),
    Case(
        "workflow output names an unknown step output",
        native("""
            spec:
              steps:
                - {name: deploy, uses: sluice/deploy, with: {model: "{{ inputs.m }}"}, outputs: [{name: url}]}
              inputs: [{name: m, type: model}]
              outputs:
                - {name: prediction-url, value: "{{ steps.deploy.outputs.endpoint }}"}
            """),
        "ref.unknown-output", 9, "$.spec.outputs[0].value",
        "step 'deploy' does not declare output 'endpoint'",
    ),
    Case(
        "workflow output names an unknown step",
        native("""
            spec:
              steps: [{name: a, image: busybox}]
              outputs:
                - {name: url, value: "{{ steps.serve.outputs.url }}"}
            """),
        "ref.unknown-step", 7, "$.spec.outputs[0].value", "unknown step 'serve'",
    ),
]

FUSEML_CASES = [
    Case(
        "fuseml.no-image: missing",
        text("""
            name: fm
            steps:
              - name: trainer
                outputs: [{name: model}]
            """),
        "fuseml.no-image", 3, "$.steps[0]", "a FuseML step needs an image",
    ),
    Case(
        "fuseml.no-image: empty",
        text("""
            name: fm
            steps:
              - name: trainer
                image: ""
            """),
        "fuseml.no-image", 4, "$.steps[0].image", "a FuseML step needs an image",
    ),
    Case(
        "ref.unknown-output: FuseML reference to an undeclared output",
        text("""
            name: fm
            steps:
              - name: trainer
                image: ghcr.io/fuseml/trainer:1
                outputs: [{name: model-url}]
              - name: predictor
                image: ghcr.io/fuseml/predictor:1
                inputs:
                  - name: model
                    value: "{{ steps.trainer.outputs.model }}"
            """),
        "ref.unknown-output", 10, "$.steps[1].inputs[0].value",
        "step 'trainer' does not declare output 'model' (declared: model-url)",
    ),
    Case(
        "ref.unknown-input: FuseML",
        text("""
            name: fm
            steps:
              - name: trainer
                image: ghcr.io/fuseml/trainer:1
                env:
                  - {name: EPOCHS, value: "{{ inputs.epochs }}"}
            """),
        "ref.unknown-input", 6, "$.steps[0].env[0].value", "unknown input 'epochs' (inputs: none declared)",
    ),
    Case(
        "fuseml.input: both value and codeset",
        text("""
            name: fm
            inputs: [{name: src, type: codeset}]
            steps:
              - name: trainer
                image: ghcr.io/fuseml/trainer:1
                inputs:
                  - name: src
                    value: x
                    codeset: {name: "{{ inputs.src }}", path: /project}
            """),
        "fuseml.input", 7, "$.steps[0].inputs[0]", "a step input needs exactly one of 'value' or 'codeset'",
    ),
    Case(
        "fuseml.input: a value input without a name",
        text("""
            name: fm
            steps:
              - name: trainer
                image: ghcr.io/fuseml/trainer:1
                inputs:
                  - value: "42"
            """),
        "fuseml.input", 6, "$.steps[0].inputs[0]", "a value input needs a 'name'",
    ),
    Case(
        "fuseml.codeset: a literal codeset name",
        text("""
            name: fm
            steps:
              - name: trainer
                image: ghcr.io/fuseml/trainer:1
                inputs:
                  - name: src
                    codeset: {name: my-repo, path: /project}
            """),
        "fuseml.codeset", 7, "$.steps[0].inputs[0].codeset.name",
        "a codeset input's name must be '{{ inputs.NAME }}'",
    ),
    Case(
        "fuseml.codeset: an input that is not a codeset",
        text("""
            name: fm
            inputs: [{name: predictor, type: string, default: auto}]
            steps:
              - name: trainer
                image: ghcr.io/fuseml/trainer:1
                inputs:
                  - name: src
                    codeset:
                      name: "{{ inputs.predictor }}"
            """),
        "fuseml.codeset", 9, "$.steps[0].inputs[0].codeset.name", "input 'predictor' is not of type codeset",
    ),
    Case(
        "fuseml.output: no step produces it",
        text("""
            name: fm
            outputs:
              - name: prediction-url
            steps:
              - name: predictor
                image: ghcr.io/fuseml/predictor:1
                outputs: [{name: url}]
            """),
        "fuseml.output", 3, "$.outputs[0].name",
        "workflow output 'prediction-url' is not an output of any step",
    ),
    Case(
        "ref.unknown-extension: FuseML extension the step does not require",
        text("""
            name: fm
            steps:
              - name: trainer
                image: ghcr.io/fuseml/trainer:1
                extensions: [{name: mlflow-store, service_resource: s3}]
                env:
                  - {name: S3, value: "{{ extensions.mlflow-tracking.url }}"}
            """),
        "ref.unknown-extension", 7, "$.steps[0].env[0].value", "extension 'mlflow-tracking' is not required",
    ),
    Case(
        "expr.syntax: FuseML extension field that does not exist",
        text("""
            name: fm
            steps:
              - name: trainer
                image: ghcr.io/fuseml/trainer:1
                extensions: [{name: store, service_resource: s3}]
                env:
                  - {name: S3, value: "{{ extensions.store.endpoint }}"}
            """),
        "expr.syntax", 7, "$.steps[0].env[0].value",
        "expected extensions.NAME.cfg.KEY or extensions.NAME.{category|",
    ),
    Case(
        "schema.unknown-field: FuseML step",
        text("""
            name: fm
            steps:
              - name: trainer
                image: ghcr.io/fuseml/trainer:1
                imagePullPolicy: Always
            """),
        "schema.unknown-field", 5, "$.steps[0].imagePullPolicy", "unknown field 'imagePullPolicy'",
    ),
    Case(
        "schema.required: FuseML workflow without a name",
        text("""
            description: no name
            steps: [{name: a, image: busybox}]
            """),
        "schema.required", 1, "$", "missing required field 'name'",
    ),
    Case(
        "spec.duplicate-step: FuseML",
        text("""
            name: fm
            steps:
              - {name: a, image: busybox}
              - {name: a, image: busybox}
            """),
        "spec.duplicate-step", 4, "$.steps[1].name", "step name 'a' is already used by steps[0]",
    ),
    Case(
        "ref.input-attr: FuseML .version of a string input",
        text("""
            name: fm
            inputs: [{name: predictor, default: auto}]
            steps:
              - name: a
                image: busybox
                env: [{name: V, value: "{{ inputs.predictor.version }}"}]
            """),
        "ref.input-attr", 6, "$.steps[0].env[0].value", "'.version' is only for codeset inputs",
    ),
]

# fmt: on

ALL_CASES = (
    YAML_CASES + SCHEMA_CASES + FORBIDDEN_CASES + SPEC_CASES + EXPRESSION_CASES + DAG_CASES + FUSEML_CASES
)
