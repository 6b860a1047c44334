"""Condition types and the reasons Sluice writes on conditions and Events, as constants.

Reasons are part of the API: users alert on them and `kubectl wait` for them, so every reason the
operator writes is spelled once, here. Tekton's own reasons (a failed PipelineRun's, e.g.
`PipelineRunTimeout`) are copied through as Tekton wrote them and are not listed.
"""

from __future__ import annotations

# kstatus condition types
READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"
CONDITION_TYPES = (READY, RECONCILING, STALLED)
CONDITION_STATUSES = ("True", "False", "Unknown")

# --- reasons shared by several kinds ---
INVALID_SPEC = "InvalidSpec"  # the object itself cannot work as written
INVALID_WORKFLOW = "InvalidWorkflow"  # a Workflow it needs (or syncs) does not validate
SUCCEEDED = "Succeeded"

# --- Workflow ---
VALID = "Valid"
INVALID_SCHEDULE = "InvalidSchedule"  # spec.schedule's cron expression or time zone cannot be used
# --- Workflow: Events of spec.schedule ---
SCHEDULED = "Scheduled"  # a run was created for a scheduled time
MISSED_SCHEDULE = "MissedSchedule"  # a scheduled time passed more than startingDeadlineSeconds ago
TOO_MANY_MISSED_SCHEDULES = "TooManyMissedSchedules"  # more than 100 missed: none of them is run

# --- WorkflowRun: conditions (a run's phases double as reasons) ---
PENDING = "Pending"
RUNNING = "Running"
FAILED = "Failed"  # a failed PipelineRun without a Tekton reason
CANCELLED = "Cancelled"
CANCEL_REQUESTED = "CancelRequested"  # spec.status asks for a cancel; Tekton is stopping the run
WORKFLOW_NOT_FOUND = "WorkflowNotFound"
CODESET_NOT_FOUND = "CodesetNotFound"
REVISION_UNKNOWN = "RevisionUnknown"
COMPILE_FAILED = "CompileFailed"
CONFLICT = "Conflict"  # the API server reported a conflict; retried
NAME_CONFLICT = "NameConflict"  # a PipelineRun of the run's name belongs to something else
CREATE_REFUSED = "CreateRefused"  # the API server refused the PipelineRun for good (4xx, too large)
CONCURRENCY_FORBIDDEN = "ConcurrencyForbidden"

# --- WorkflowRun: Events only ---
CREATED = "Created"
REPLACED = "Replaced"

# --- Codeset ---
FETCH_FAILED = "FetchFailed"
AUTHENTICATION_FAILED = "AuthenticationFailed"
REF_NOT_FOUND = "RefNotFound"
NEW_REVISION = "NewRevision"  # Event only
