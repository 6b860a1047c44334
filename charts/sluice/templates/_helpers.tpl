{{/* Names, labels, images and the operator's RBAC rules, shared by every template. */}}

{{- define "sluice.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sluice.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "sluice.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sluice.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sluice.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/* Labels on everything the chart creates, without the component. */}}
{{- define "sluice.commonLabels" -}}
helm.sh/chart: {{ include "sluice.chart" . }}
app.kubernetes.io/name: {{ include "sluice.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: sluice
{{- end }}

{{/* Labels of the operator's objects. */}}
{{- define "sluice.labels" -}}
{{ include "sluice.commonLabels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{/* Labels of the run ServiceAccount and its Role. */}}
{{- define "sluice.runLabels" -}}
{{ include "sluice.commonLabels" . }}
app.kubernetes.io/component: run
{{- end }}

{{- define "sluice.serviceAccountName" -}}
{{- default (include "sluice.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{/* The namespaces that get Roles and run ServiceAccounts, as a JSON list (default: the release's). */}}
{{- define "sluice.watchNamespaces" -}}
{{- $namespaces := .Values.watchNamespaces | default (list .Release.Namespace) }}
{{- $namespaces | uniq | toJson }}
{{- end }}

{{/* repository:tag or repository@digest; the tag defaults to the chart's appVersion. */}}
{{- define "sluice.imageRef" -}}
{{- $image := index . 0 }}
{{- $chart := index . 1 }}
{{- if eq $image.tag "latest" }}
{{- fail (printf "image tag \"latest\" of %s is refused: pin a release (leave the tag empty for the chart's appVersion %s) or a digest" $image.repository $chart.AppVersion) }}
{{- end }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository (default $chart.AppVersion $image.tag) }}
{{- end }}
{{- end }}

{{- define "sluice.webhookBaseURL" -}}
{{- if .Values.webhooks.publicURL }}
{{- .Values.webhooks.publicURL }}
{{- else if .Values.webhooks.ingress.enabled }}
{{- printf "%s://%s" (ternary "https" "http" .Values.webhooks.ingress.tls.enabled) .Values.webhooks.ingress.host }}
{{- end }}
{{- end }}

{{/*
What the operator does to Sluice, Tekton and core objects, for a Role (one per watched namespace)
or the opt-in ClusterRole. Secrets are not here on purpose: they are granted by namespaced Roles
only (see secretRule), so no binding ever lets the operator list or read Secrets cluster-wide.
Every verb is one the operator uses; docs/security.md says which code path needs it.
*/}}
{{- define "sluice.operatorRules" -}}
# Workflows: applied from Git by Codesets (sync.path; replaced with `update` so a concurrent
# edit is detected by resourceVersion), pruned when removed from Git.
- apiGroups: ["sluice.dev"]
  resources: ["workflows"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
# Codesets: written by users; the operator reads them and patches its finalizer and annotations.
- apiGroups: ["sluice.dev"]
  resources: ["codesets"]
  verbs: ["get", "list", "watch", "patch"]
# WorkflowRuns: created on new commits, pruned by runPolicy.historyLimit.
- apiGroups: ["sluice.dev"]
  resources: ["workflowruns"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["sluice.dev"]
  resources: ["workflows/status", "codesets/status", "workflowruns/status"]
  verbs: ["get", "patch"]
# A PipelineRun's ownerReference to its WorkflowRun sets blockOwnerDeletion, which the API server
# only allows with `update` on the owner's finalizers subresource.
- apiGroups: ["sluice.dev"]
  resources: ["workflowruns/finalizers"]
  verbs: ["update"]
# One PipelineRun per WorkflowRun; patched to cancel it (spec.status: Cancelled).
- apiGroups: ["tekton.dev"]
  resources: ["pipelineruns"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# TaskRuns are only read, for steps[] on the WorkflowRun.
- apiGroups: ["tekton.dev"]
  resources: ["taskruns"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
# FuseML extension registry: ConfigMaps labelled sluice.dev/extension.
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch"]
{{- end }}

{{/* Credentials: only `get` of a Secret a Codeset names; never list or watch. */}}
{{- define "sluice.secretRule" -}}
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
{{- end }}

{{/* The run ServiceAccount's rules: only the deploy stage's serving resources. */}}
{{- define "sluice.runRules" -}}
{{- $targets := .Values.runServiceAccount.deployTargets }}
{{- if has "kserve" $targets }}
- apiGroups: ["serving.kserve.io"]
  resources: ["inferenceservices"]
  verbs: ["get", "list", "watch", "create", "patch"]
{{- end }}
{{- if has "seldon" $targets }}
- apiGroups: ["mlops.seldon.io"]
  resources: ["models"]
  verbs: ["get", "list", "watch", "create", "patch"]
{{- end }}
{{- if has "seldon-v1" $targets }}
- apiGroups: ["machinelearning.seldon.io"]
  resources: ["seldondeployments"]
  verbs: ["get", "list", "watch", "create", "patch"]
{{- end }}
{{- end }}
