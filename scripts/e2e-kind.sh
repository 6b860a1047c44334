#!/usr/bin/env bash
# End to end on a laptop: a kind cluster with Tekton Pipelines, cert-manager and KServe
# (RawDeployment: no Knative, no Istio), the Sluice chart with images built from this checkout, a
# Git repository served inside the cluster, a Codeset that syncs the sum-of-two Workflow from it,
# one WorkflowRun, and a prediction from the model it deployed. docs/install.md, "Try it on kind",
# walks the same commands.
#
#   bash scripts/e2e-kind.sh                 # everything, then delete the cluster
#   bash scripts/e2e-kind.sh --keep          # keep the cluster afterwards
#   bash scripts/e2e-kind.sh --setup-only    # cluster, add-ons, chart, Git server; kept, for
#                                            # SLUICE_E2E_KUBECONFIG=... pytest tests/e2e -m e2e
#   bash scripts/e2e-kind.sh --name NAME     # cluster name (default: sluice-e2e)
#
# Needs docker, kind, kubectl and helm (3.14+ or 4.x), and network access to pull the add-ons'
# manifests, charts and images and the Python packages the image build installs.
# Serving uses `runtime: sluice` (Sluice's model server in the stages image, tests/e2e/repo):
# KServe's Triton image (~15 GB) would outlast any reasonable wait on a laptop.
set -euo pipefail
shopt -s inherit_errexit

# ---- pinned versions: change them together (docs/install.md lists the same ones) ----
KIND_NODE_IMAGE="kindest/node:v1.33.1"
TEKTON_PIPELINES_VERSION="v1.9.0"
CERT_MANAGER_VERSION="v1.19.1"
KSERVE_VERSION="v0.15.2"
# Where each is published (upstream install docs).
TEKTON_RELEASE_URL="https://infra.tekton.dev/tekton-releases/pipeline/previous/${TEKTON_PIPELINES_VERSION}/release.yaml"
CERT_MANAGER_URL="https://github.com/cert-manager/cert-manager/releases/download/${CERT_MANAGER_VERSION}/cert-manager.yaml"
KSERVE_CHARTS="oci://ghcr.io/kserve/charts"

# ---- settings ----
CLUSTER="sluice-e2e"
NAMESPACE="ml"                       # the watched namespace where the workflow runs
SYSTEM_NAMESPACE="sluice-system"     # the operator's
KEEP=0
SETUP_ONLY=0
WAIT="${SLUICE_E2E_WAIT:-300s}"      # each add-on's rollout
RUN_TIMEOUT="${SLUICE_E2E_RUN_TIMEOUT:-2400}"  # seconds for the WorkflowRun (training included)

usage() {
  sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --keep) KEEP=1 ;;
    --setup-only) SETUP_ONLY=1; KEEP=1 ;;
    --name) CLUSTER="${2:?--name needs a value}"; shift ;;
    --name=*) CLUSTER="${1#--name=}" ;;
    -h | --help) usage; exit 0 ;;
    *) echo "e2e-kind: unknown argument '$1' (--help lists them)" >&2; exit 2 ;;
  esac
  shift
done

cd "$(dirname "$0")/.."
log() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'e2e-kind: %s\n' "$*" >&2; exit 1; }

# ---- prerequisites ----
missing=()
for tool in docker kind kubectl helm git; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  die "missing: ${missing[*]}. Install docker (https://docs.docker.com/engine/install/), kind (https://kind.sigs.k8s.io/docs/user/quick-start/#installation), kubectl (https://kubernetes.io/docs/tasks/tools/) and helm 3.14+ (https://helm.sh/docs/intro/install/)."
fi
docker info >/dev/null 2>&1 || die "docker is installed but its daemon does not answer (is it running, may this user use it?)"
if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  die "a kind cluster named '$CLUSTER' exists already: delete it (kind delete cluster --name $CLUSTER) or pass --name"
fi

CONTEXT="kind-$CLUSTER"
k() { kubectl --context "$CONTEXT" "$@"; }
h() { helm --kube-context "$CONTEXT" "$@"; }

diagnose() {
  k get pods -A -o wide || true
  k -n "$NAMESPACE" get codesets,workflows,workflowruns,pipelineruns,taskruns,inferenceservices || true
  k -n "$NAMESPACE" describe workflowruns || true
  k -n "$SYSTEM_NAMESPACE" logs deployment/sluice --tail=100 || true
}

finish() {
  local status=$?
  if [[ $status -ne 0 ]]; then
    log "failed (exit $status); what the cluster looks like:"
    diagnose >&2
  fi
  if [[ $KEEP -eq 0 ]]; then
    log "deleting the cluster $CLUSTER (--keep keeps it)"
    kind delete cluster --name "$CLUSTER" || true
  else
    log "the cluster is kept: kubectl --context $CONTEXT ...; kind delete cluster --name $CLUSTER removes it"
  fi
  exit "$status"
}

# ---- 1. the cluster ----
log "kind cluster $CLUSTER ($KIND_NODE_IMAGE)"
kind create cluster --name "$CLUSTER" --image "$KIND_NODE_IMAGE" --wait 120s
trap finish EXIT

# ---- 2. Tekton Pipelines ----
log "Tekton Pipelines $TEKTON_PIPELINES_VERSION"
k apply --filename "$TEKTON_RELEASE_URL"
k -n tekton-pipelines wait --for=condition=Available deployment --all --timeout="$WAIT"
# Tekton's own init containers then meet the "restricted" Pod Security level too.
k -n tekton-pipelines patch configmap feature-flags --type merge -p '{"data": {"set-security-context": "true"}}'

# ---- 3. cert-manager and KServe (RawDeployment) ----
log "cert-manager $CERT_MANAGER_VERSION"
k apply -f "$CERT_MANAGER_URL"
k -n cert-manager wait --for=condition=Available deployment --all --timeout="$WAIT"

log "KServe $KSERVE_VERSION (RawDeployment)"
h install kserve-crd "$KSERVE_CHARTS/kserve-crd" --version "$KSERVE_VERSION" \
  --namespace kserve --create-namespace --wait
h install kserve "$KSERVE_CHARTS/kserve" --version "$KSERVE_VERSION" \
  --namespace kserve \
  --set kserve.controller.deploymentMode=RawDeployment \
  --set kserve.controller.gateway.disableIngressCreation=true \
  --wait
k -n kserve wait --for=condition=Available deployment --all --timeout="$WAIT"

# ---- 4. the images ----
log "building the images with docker (scripts/images.sh)"
images="$(SLUICE_CONTAINER_ENGINE=docker bash scripts/images.sh)"
STAGES_IMAGE="$(sed -n 1p <<<"$images")"
OPERATOR_IMAGE="$(sed -n 2p <<<"$images")"
[[ -n "$STAGES_IMAGE" && -n "$OPERATOR_IMAGE" ]] || die "scripts/images.sh printed no image references"
kind load docker-image --name "$CLUSTER" "$STAGES_IMAGE" "$OPERATOR_IMAGE"

# ---- 5. Sluice ----
log "the Sluice chart (watching $NAMESPACE, model storage: pvc)"
k create namespace "$NAMESPACE"
# Warn (not enforce): every pod the run makes is listed if it falls short of "restricted".
k label namespace "$NAMESPACE" pod-security.kubernetes.io/warn=restricted
h install sluice charts/sluice \
  --namespace "$SYSTEM_NAMESPACE" --create-namespace \
  --set "watchNamespaces={$NAMESPACE}" \
  --set 'runServiceAccount.deployTargets={kserve}' \
  --set "image.repository=${OPERATOR_IMAGE%:*}" --set "image.tag=${OPERATOR_IMAGE##*:}" \
  --set "stagesImage.repository=${STAGES_IMAGE%:*}" --set "stagesImage.tag=${STAGES_IMAGE##*:}" \
  --set modelStorage.type=pvc \
  --set modelStorage.pvc.size=2Gi \
  --wait
# The Git server below is inside the cluster (git://, a private address): development only.
k -n "$SYSTEM_NAMESPACE" set env deployment/sluice SLUICE_ALLOW_LOCAL_GIT=1
k -n "$SYSTEM_NAMESPACE" rollout status deployment/sluice --timeout="$WAIT"

# ---- 6. a Git repository inside the cluster ----
log "a Git server in $NAMESPACE with tests/e2e/repo"
k -n "$NAMESPACE" create configmap sluice-e2e-repo --from-file=tests/e2e/repo/workflows
k -n "$NAMESPACE" apply -f - <<EOF
apiVersion: apps/v1
kind: Deployment
metadata:
  name: sluice-git
  labels: {app: sluice-git}
spec:
  replicas: 1
  selector:
    matchLabels: {app: sluice-git}
  template:
    metadata:
      labels: {app: sluice-git}
    spec:
      automountServiceAccountToken: false
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        runAsGroup: 65532
        seccompProfile: {type: RuntimeDefault}
      initContainers:
        - name: seed
          image: $STAGES_IMAGE
          command: [sh, -ec]
          args:
            - |
              git init -q -b main /tmp/seeded
              mkdir /tmp/seeded/workflows
              cp /seed/*.yaml /tmp/seeded/workflows/
              git -C /tmp/seeded add workflows
              git -C /tmp/seeded -c user.name=sluice-e2e -c user.email=e2e@sluice.invalid commit -q -m "sum-of-two"
              git clone -q --bare /tmp/seeded /srv/git/ml-repo.git
          volumeMounts:
            - {name: seed, mountPath: /seed}
            - {name: git, mountPath: /srv/git}
          securityContext: &restricted
            allowPrivilegeEscalation: false
            capabilities: {drop: [ALL]}
      containers:
        - name: git-daemon
          image: $STAGES_IMAGE
          command: [git, daemon, --reuseaddr, --export-all, --base-path=/srv/git, --port=9418, /srv/git]
          ports:
            - {name: git, containerPort: 9418}
          readinessProbe:
            tcpSocket: {port: 9418}
          volumeMounts:
            - {name: git, mountPath: /srv/git}
          securityContext: *restricted
      volumes:
        - name: seed
          configMap: {name: sluice-e2e-repo}
        - name: git
          emptyDir: {}
---
apiVersion: v1
kind: Service
metadata:
  name: sluice-git
spec:
  selector: {app: sluice-git}
  ports:
    - {name: git, port: 9418, targetPort: git}
EOF
k -n "$NAMESPACE" rollout status deployment/sluice-git --timeout="$WAIT"
GIT_URL="git://sluice-git.$NAMESPACE.svc:9418/ml-repo.git"

if [[ $SETUP_ONLY -eq 1 ]]; then
  log "set up; the pytest e2e drives the rest (Codeset, Workflow, WorkflowRun, prediction):"
  echo "  kind get kubeconfig --name $CLUSTER > $CLUSTER.kubeconfig" >&2
  echo "  SLUICE_E2E_KUBECONFIG=$CLUSTER.kubeconfig SLUICE_E2E_STAGES_IMAGE=$STAGES_IMAGE \\" >&2
  echo "    SLUICE_E2E_GIT_URL=$GIT_URL .venv/bin/pytest tests/e2e -m e2e" >&2
  exit 0
fi

# ---- 7. a Codeset, which applies the Workflow from Git ----
log "Codeset ml-repo -> $GIT_URL"
k -n "$NAMESPACE" apply -f - <<EOF
apiVersion: sluice.dev/v1alpha1
kind: Codeset
metadata:
  name: ml-repo
spec:
  url: $GIT_URL
  ref: {branch: main}
  interval: 1m
  sync: {path: workflows}
EOF
for _ in $(seq 60); do
  k -n "$NAMESPACE" get workflow sum-of-two >/dev/null 2>&1 && break
  sleep 5
done
k -n "$NAMESPACE" wait --for=condition=Ready workflow/sum-of-two --timeout=120s

# ---- 8. a run ----
log "WorkflowRun e2e-run (samples 20000, max-mae 1.0: the model passes the gate)"
k -n "$NAMESPACE" apply -f - <<'EOF'
apiVersion: sluice.dev/v1alpha1
kind: WorkflowRun
metadata:
  name: e2e-run
spec:
  workflowRef: {name: sum-of-two}
EOF
deadline=$((SECONDS + RUN_TIMEOUT))
phase=""
while [[ $SECONDS -lt $deadline ]]; do
  phase="$(k -n "$NAMESPACE" get workflowrun e2e-run -o jsonpath='{.status.phase}')"
  case "$phase" in
    Succeeded) break ;;
    Failed | Cancelled) die "WorkflowRun e2e-run: $phase" ;;
  esac
  sleep 10
done
[[ "$phase" == Succeeded ]] || die "WorkflowRun e2e-run not finished after ${RUN_TIMEOUT}s (phase '$phase')"
URL="$(k -n "$NAMESPACE" get workflowrun e2e-run -o jsonpath='{.status.outputs.prediction-url}')"
[[ "$URL" == http://* ]] || die "WorkflowRun e2e-run succeeded without a prediction-url (deploy skipped?)"
log "prediction-url: $URL"

# ---- 9. a prediction, from inside the cluster ----
log "asking the model: 300 + 400"
restricted='{"spec": {"automountServiceAccountToken": false, "securityContext": {"runAsNonRoot": true,
  "seccompProfile": {"type": "RuntimeDefault"}}, "containers": [{"name": "sluice-e2e-predict",
  "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]}}'
k -n "$NAMESPACE" run sluice-e2e-predict --image="$STAGES_IMAGE" --image-pull-policy=IfNotPresent \
  --overrides="$restricted" --override-type=strategic \
  --restart=Never --rm --attach --quiet --command -- python -c '
import json, sys, urllib.request
body = {"inputs": [{"name": "inputs", "shape": [1, 2], "datatype": "FP32", "data": [300, 400]}]}
request = urllib.request.Request(sys.argv[1], json.dumps(body).encode(), {"Content-Type": "application/json"})
answer = json.load(urllib.request.urlopen(request, timeout=60))["outputs"][0]["data"][0]
print(f"300 + 400 = {answer:.2f}")
sys.exit(0 if abs(answer - 700) < 5 else f"expected about 700, got {answer}")
' "$URL"
log "done: trained by Tekton, deployed to KServe, answered"
