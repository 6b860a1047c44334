"""A local run's MLflow logger: one process per run that logs what the steps spool.

When MLflow tracking is on for a run of host-process steps (the `mlflow` extra installed and a
tracking URI, stepenv.mlflow_env), the run has a spool (`controller.tracking_spool`), and the
engine starts `python -m stages.tracking_logger` on it, with the environment a host step gets,
when the first task running a stage that logs (LOGGING_STAGES) starts or is answered by the
cache. Steps then append small JSON records instead of importing MLflow themselves; such a task
the cache answers gets a `cached` record from here. At the end of the run the spool is closed and the logger
is given `FLUSH_SECONDS` to log what is left; its `mlflow: warning:` lines become the run's
warnings (run.json, the summary), never a failed run. Its whole output is `logs/mlflow.log`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path, PurePosixPath

from controller import tracking_spool
from controller.executors.local.process import Mount
from controller.executors.local.stepenv import host_env, mlflow_env

FLUSH_SECONDS = 600.0  # what is left to log when the last step ends: a model, a few records
WARNING = "mlflow: warning: "
CLONE_TASK = "clone-"  # the compiler's name for a codeset's checkout task: clone-<codeset>
# the step programs that log to MLflow: a task running one starts the run's logger
LOGGING_STAGES = ("stages.prepare", "stages.train_keras", "stages.evaluate")
# the step programs a container runs with the spool: those that only write records to it (clone:
# its commit; tracking_end: it leaves ending the parent run to the logger). promote and a deploy of
# models:/ need the registry itself, which a container does not reach here: they run untracked.
SPOOLING_STAGES = (*LOGGING_STAGES, "stages.clone", "stages.tracking_end")
SPOOL_MOUNT = "/tekton/mlflow-spool"  # where a container step sees the run's spool


def container_spool(
    home: Path, run: str, argv: list[str], mounts: list[Mount], env: dict[str, str]
) -> Mount | None:
    """The run's spool for a container step of a stage that spools (SPOOLING_STAGES) when the run
    has one: `env` gets SLUICE_MLFLOW_SPOOL (SPOOL_MOUNT) and, unless the step's own env names one,
    the logger's tracking URI (the step only checks that there is one: the logger logs). The
    step's `mounts` are written down for the logger, which reads the step's records on this
    machine (`tracking_spool.on_host`). Returns the spool's mount, or None for any other step."""
    run_dir = home / "runs" / run
    spool = run_dir / tracking_spool.SPOOL_DIR
    uri = mlflow_env(home).get("MLFLOW_TRACKING_URI")
    if not uri or not spool.is_dir() or not any(module in argv for module in SPOOLING_STAGES):
        return None
    env.setdefault("MLFLOW_TRACKING_URI", uri)
    env[tracking_spool.SPOOL_ENV] = SPOOL_MOUNT
    if "--artifacts-dir" in argv[:-1]:  # the stage contract: its records carry this folder's name as `step`
        step = PurePosixPath(argv[argv.index("--artifacts-dir") + 1]).name
        seen = {mount.path: str(mount.host) for mount in mounts}
        tracking_spool.write_mounts(run_dir / tracking_spool.MOUNTS_DIR, step, seen)
    return Mount(SPOOL_MOUNT, spool)


class RunLogger:
    """The run's spool, and its logger process once a task that logs is about to run."""

    def __init__(self, spool: Path, env: dict[str, str], log_path: Path) -> None:
        self.spool = spool
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @classmethod
    def prepare(
        cls, home: Path, run: str, workflow: str, namespace: str, containers: bool = False
    ) -> RunLogger | None:
        """The run's spool (host steps find it through host_env, container steps through
        `container_spool`), or None when tracking is off. With `containers`, the logger maps the
        paths of every record through the mounts of the step that wrote it."""
        env = host_env(home, workflow, run, namespace, f"{run}-mlflow", None)
        if not env.get("MLFLOW_TRACKING_URI"):
            return None
        run_dir = home / "runs" / run
        spool = run_dir / tracking_spool.SPOOL_DIR
        spool.mkdir(parents=True, exist_ok=True)
        env[tracking_spool.SPOOL_ENV] = str(spool)
        if containers:
            env[tracking_spool.MOUNTS_ENV] = str(run_dir / tracking_spool.MOUNTS_DIR)
        return cls(spool, env, run_dir / "logs" / "mlflow.log")

    def task_starting(self, argvs: list[list[str]]) -> bool:
        """Before a task runs (or the cache answers it): whether it is a logging stage's, and if
        so the logger is started now (once), to import MLflow while the task works. A run of
        other steps only (scripts, images) never starts one."""
        if not any(module in argv for argv in argvs for module in LOGGING_STAGES):
            return False
        if self.process is None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("ab") as log:
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "stages.tracking_logger", str(self.spool), str(os.getpid())],
                    env=self.env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # Ctrl-C reaches the run, which then stops the logger
                    cwd=self.spool.parent,
                )
        return True

    def answered(self, task: str, results: dict[str, str], cached: bool) -> None:
        """A task that did not run: a logging stage's answered by the cache (a nested run tagged
        sluice.cached, with its results) or a codeset folder used in place. A clone task's commit
        still reaches the parent run's sluice.codeset-commits, as the clone step's record would."""
        now = int(time.time() * 1000)
        records = [{"kind": "cached", "step": task, "time": now, "results": results}] if cached else []
        if task.startswith(CLONE_TASK) and results.get("commit"):
            name, commit = task.removeprefix(CLONE_TASK), results["commit"]
            records.append({"kind": "codeset", "step": task, "time": now, "name": name, "commit": commit})
        with contextlib.suppress(OSError):
            for record in records:
                tracking_spool.write_record(self.spool, record)

    async def close(self, failed: bool, timeout: float = FLUSH_SECONDS) -> list[str]:
        """Close the spool, wait for the logger to log what is left; its warnings."""
        warnings: list[str] = []
        if self.process is None:  # no logging stage ran: nothing (but codeset commits) to log
            return warnings
        try:
            tracking_spool.close(self.spool, "FAILED" if failed else "FINISHED")
        except OSError as exc:
            warnings.append(f"{WARNING}could not close the spool: {exc}")
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self.process.poll() is None:
            self.stop()
            late = f"the logger did not finish in {timeout:.0f} s: the MLflow run is incomplete"
            warnings.append(WARNING + late)
        elif self.process.returncode:
            warnings.append(f"{WARNING}the logger exited with status {self.process.returncode}")
        left = len(tracking_spool.pending(self.spool))
        if left:
            warnings.append(f"{WARNING}{left} record(s) were not logged (see {self.log_path})")
        return self._logged_warnings() + warnings

    def stop(self) -> None:
        """End the logger now (a cancelled run)."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def _logged_warnings(self) -> list[str]:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
        return [line.strip() for line in text.splitlines() if line.startswith(WARNING)]
