#!/usr/bin/env bash
# Supply-chain checks for Sluice (CI and developers):
#   1. git is new enough for the protections Sluice relies on (exit 1 if not);
#   2. the installed Python packages are the versions pinned in requirements.lock (exit 1 if one
#      differs: what is audited must be what runs);
#   3. the pinned versions against known vulnerabilities (exit 1 on one): an offline OSV database
#      when SLUICE_ADVISORY_DB names one (a folder or the PyPI all.zip of osv.dev), otherwise
#      pip-audit over requirements.lock with PyPI's vulnerability data, then with OSV's API.
#      When no advisory source can be reached (an air-gapped CI, a mirror that serves only the
#      simple index), the script says so and exits 0 with a warning instead of failing CI for a
#      reason unrelated to the code; SLUICE_AUDIT_STRICT=1 turns that warning into a failure.
#
# Usage: scripts/audit.sh [PYTHON]        (default: .venv/bin/python, else python3)
set -euo pipefail
cd "$(dirname "$0")/.."

# --- git ----------------------------------------------------------------------------------------
# 2.32.0 is the oldest git with everything gitsafe.git_env() and the clone code use:
#   GIT_CONFIG_GLOBAL (2.32; older git silently reads ~/.gitconfig, hooks and helpers included),
#   GIT_CONFIG_COUNT/KEY/VALUE (2.31; protocol.allow and core.hooksPath without argv or files),
#   --no-write-fetch-head (2.29), --end-of-options (2.24), protocol.<name>.allow (2.12).
# 2.39.4 (and 2.40.2, 2.41.1, 2.42.2, 2.43.4, 2.44.1, 2.45.1+) fix the clone-time code execution
# bugs of May 2024 (CVE-2024-32002, -32004, -32465); older releases only get a warning, since
# distributions backport those fixes without changing the version (Debian's 2.39.5 has them).
MIN_GIT="2.32.0"
RECOMMENDED_GIT="2.39.4"
status=0

version_ge() { # version_ge A B: A >= B
  [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]
}

if ! command -v git >/dev/null 2>&1; then
  echo "audit: FAIL git is not installed (Sluice needs git >= $MIN_GIT)"
  status=1
else
  git_version="$(git --version | sed -E 's/^git version ([0-9]+(\.[0-9]+)*).*/\1/')"
  if ! version_ge "$git_version" "$MIN_GIT"; then
    echo "audit: FAIL git $git_version is older than $MIN_GIT (needed for GIT_CONFIG_GLOBAL and GIT_CONFIG_COUNT)"
    status=1
  elif ! version_ge "$git_version" "$RECOMMENDED_GIT"; then
    echo "audit: WARN git $git_version: make sure it carries the fixes of $RECOMMENDED_GIT (CVE-2024-32002)"
  else
    echo "audit: ok   git $git_version (minimum $MIN_GIT)"
  fi
fi

# --- Python dependencies --------------------------------------------------------------------------
PYTHON="${1:-}"
if [ -z "$PYTHON" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
strict="${SLUICE_AUDIT_STRICT:-0}"

warn_or_fail() {
  if [ "$strict" = "1" ]; then
    echo "audit: FAIL $1 (SLUICE_AUDIT_STRICT=1)"
    status=1
  else
    echo "audit: WARN $1; dependency audit skipped"
  fi
}

LOCK="${SLUICE_LOCK:-requirements.lock}"  # another lock file: tests

# --- installed == pinned ----------------------------------------------------------------------------
if ! drift="$("$PYTHON" scripts/lock_audit.py drift "$LOCK" 2>&1)"; then
  echo "audit: FAIL could not compare the installed packages with $LOCK: ${drift:0:200}"
  status=1
elif [ -n "$drift" ]; then
  echo "audit: FAIL installed packages differ from $LOCK: $drift (run scripts/setup.sh)"
  status=1
else
  echo "audit: ok   installed packages match $LOCK"
fi

# --- known vulnerabilities of the pinned versions ---------------------------------------------------
pip_audit_verdict() { # pip_audit_verdict SERVICE: one verdict line from pip-audit over the lock
  local report errors code
  report="$(mktemp)"
  set +e
  timeout 600 "$PYTHON" -m pip_audit --progress-spinner off --requirement "$LOCK" --no-deps --disable-pip \
    --vulnerability-service "$1" --format json --output "$report" --timeout 30 >/dev/null 2>"$report.err"
  code=$?
  set -e
  errors="$(tail -n 1 "$report.err" 2>/dev/null | cut -c1-200 || true)"
  "$PYTHON" - "$report" "$1" "$code" "$errors" <<'PY'
import json, sys
report, service, code, errors = sys.argv[1:5]
try:
    data = json.load(open(report, encoding="utf-8"))
except (OSError, ValueError):
    print(f"unreachable {service}: no report (pip-audit exit {code}{': ' + errors if errors else ''})")
    sys.exit()
deps = data.get("dependencies", data if isinstance(data, list) else [])
audited = [d for d in deps if "skip_reason" not in d]
vulnerable = [d for d in audited if d.get("vulns")]
if not audited:
    print(f"unreachable {service}: none of {len(deps)} packages could be audited")
elif vulnerable:
    lines = [f"{d['name']}=={d['version']}: " + ", ".join(v["id"] for v in d["vulns"]) for d in vulnerable]
    print("vulnerable " + "; ".join(lines))
else:
    print(f"clean {len(audited)} packages audited with {service}, {len(deps) - len(audited)} skipped")
PY
  rm -f "$report" "$report.err"
}

if [ -n "${SLUICE_ADVISORY_DB:-}" ]; then
  verdict="$("$PYTHON" scripts/lock_audit.py osv "$LOCK" "$SLUICE_ADVISORY_DB" 2>&1 || true)"
elif ! "$PYTHON" -c "import pip_audit" >/dev/null 2>&1; then
  verdict="unreachable pip-audit is not installed in $PYTHON (pip install pip-audit)"
else
  verdict="$(pip_audit_verdict pypi)"
  case "$verdict" in
    unreachable*) second="$(pip_audit_verdict osv)"; verdict="${verdict}; ${second#unreachable }" ;;
  esac
fi
case "$verdict" in
  clean*) echo "audit: ok   ${verdict#clean }" ;;
  vulnerable*) echo "audit: FAIL known vulnerabilities: ${verdict#vulnerable }"; status=1 ;;
  *) warn_or_fail "no advisory source could be used (${verdict#unreachable })" ;;
esac
exit "$status"
