"""Issue 18 (local): the Sluice home, `sluice runs` filters and RUN references, `runs delete`/`prune`,
`compare` and `--version`, as a user calls them (real runs of small PipelineRuns, real subprocesses).
`logs`, `--detach` and `cancel`: test_run_control.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from controller import __version__
from tests.local.helpers import FIXTURES
from tests.local.test_cli import REPO, sluice


def run_fixture(home: Path, fixture: str, *args: str) -> str:
    done = sluice(home, "run", str(FIXTURES / fixture), "--json", *args)
    assert done.returncode in (0, 1), done.stderr
    run: str = json.loads(done.stdout)["run"]
    return run


def record_of(home: Path, run: str) -> dict:
    done = sluice(home, "runs", run, "--json")
    assert done.returncode == 0, done.stderr
    data: dict = json.loads(done.stdout)
    return data


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def test_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "controller.cli.main", "--version"], capture_output=True, text=True, cwd=REPO
    )
    assert done.returncode == 0
    assert done.stdout == f"sluice {__version__}\n"


def test_home_is_per_user_whatever_the_folder(tmp_path: Path) -> None:
    """No SLUICE_HOME: runs land in $XDG_DATA_HOME/sluice (else ~/.local/share/sluice) and are the
    same from any working folder."""
    env = {k: v for k, v in os.environ.items() if k not in ("SLUICE_HOME", "XDG_DATA_HOME")}
    env["HOME"] = str(tmp_path / "user")
    env["PYTHONPATH"] = str(REPO)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()

    def cli(*args: str, cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "controller.cli.main", *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=cwd,
            env={**env, **extra},
        )

    done = cli("run", str(FIXTURES / "diamond.yaml"), "--json", cwd=tmp_path / "a")
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)["run"]
    assert (tmp_path / "user/.local/share/sluice/runs" / run / "run.json").is_file()
    assert not (tmp_path / "a/.sluice").exists()
    listed = cli("runs", cwd=tmp_path / "b")
    assert run in listed.stdout
    done = cli(
        "run",
        str(FIXTURES / "diamond.yaml"),
        "--json",
        cwd=tmp_path / "b",
        XDG_DATA_HOME=str(tmp_path / "xdg"),
    )
    assert (tmp_path / "xdg/sluice/runs" / json.loads(done.stdout)["run"]).is_dir()
    relative = cli("runs", cwd=tmp_path / "b", XDG_DATA_HOME="relative/ignored")
    assert run in relative.stdout, "a relative XDG_DATA_HOME is ignored, as the XDG spec says"


def test_an_old_dot_sluice_is_announced_once(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / ".sluice/runs/old-run").mkdir(parents=True)
    (project / ".sluice/runs/old-run/run.json").write_text('{"run": "old-run", "phase": "Succeeded"}')
    env = {k: v for k, v in os.environ.items() if k != "SLUICE_HOME"}
    env.update(HOME=str(tmp_path / "user"), XDG_DATA_HOME=str(tmp_path / "data"), PYTHONPATH=str(REPO))

    def runs() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "controller.cli.main", "runs"],
            capture_output=True,
            text=True,
            cwd=project,
            env=env,
        )

    first = runs()
    assert first.returncode == 0
    assert f"runs now live in {tmp_path / 'data/sluice'}" in first.stderr
    assert (
        f"holds 1 earlier run(s), read them in place with SLUICE_HOME={project / '.sluice'} sluice runs"
        in (first.stderr)
    )
    assert runs().stderr == "", "said once"
    old = subprocess.run(
        [sys.executable, "-m", "controller.cli.main", "runs"],
        capture_output=True,
        text=True,
        cwd=project,
        env={**env, "SLUICE_HOME": str(project / ".sluice")},
    )
    assert "old-run" in old.stdout and old.stderr == ""


def test_run_references_everywhere(home: Path) -> None:
    first = run_fixture(home, "diamond.yaml")
    failed = run_fixture(home, "failing.yaml")
    second = run_fixture(home, "diamond.yaml")
    assert record_of(home, "latest")["run"] == second
    assert record_of(home, "fail")["run"] == failed, "a unique prefix"
    assert record_of(home, first)["run"] == first, "an exact id"
    shown = sluice(home, "runs", "latest", "--workflow", "failing")
    assert shown.returncode == 0 and f"run {failed} (failing): Failed" in shown.stdout

    ambiguous = sluice(home, "runs", "diamond-")
    assert ambiguous.returncode == 1
    assert ambiguous.stderr.startswith("sluice runs: 'diamond-' matches 2 runs: ")
    assert first in ambiguous.stderr and second in ambiguous.stderr
    unknown = sluice(home, "runs", "nope")
    assert unknown.returncode == 1
    assert unknown.stderr == f"sluice runs: no local run is 'nope' or starts with it, in {home / 'runs'}\n"
    for command in (["report"], ["logs"], ["cancel"], ["compare", "latest"], ["runs", "delete"]):
        done = sluice(home, *command, "nope")
        assert done.returncode == 1, command
        assert f"sluice {' '.join(command[:2]) if command[0] == 'runs' else command[0]}: no local run" in (
            done.stderr
        )
        assert "Traceback" not in done.stderr
    report = sluice(home, "report", "fail")
    assert report.returncode == 0 and report.stdout.strip() == str(home / "runs" / failed / "report.html")


def test_runs_filters_and_limits(home: Path) -> None:
    first = run_fixture(home, "diamond.yaml")
    failed = run_fixture(home, "failing.yaml")
    second = run_fixture(home, "diamond.yaml")

    def listed(*args: str) -> list[str]:
        done = sluice(home, "runs", "--json", *args)
        assert done.returncode == 0, done.stderr
        return [r["run"] for r in json.loads(done.stdout)]

    assert listed() == [second, failed, first]
    assert listed("--workflow", "diamond") == [second, first]
    assert listed("--phase", "failed") == [failed]
    assert listed("--phase", "Succeeded", "--limit", "1") == [second]
    table = sluice(home, "runs", "--workflow", "failing").stdout.splitlines()
    assert table[0].split() == ["RUN", "WORKFLOW", "PHASE", "STARTED", "DURATION"]
    assert table[1].split()[:3] == [failed, "failing", "Failed"] and len(table) == 2
    assert sluice(home, "runs", "--workflow", "none").stdout == f"no matching local runs in {home / 'runs'}\n"
    bad = sluice(home, "runs", "--phase", "done")
    assert bad.returncode == 2
    assert "--phase 'done': expected one of Pending, Running, Succeeded, Failed, Cancelled" in bad.stderr
    assert sluice(home, "runs", "--limit", "0").returncode == 2


def test_runs_table_keeps_its_columns_in_line_for_long_workflow_names(home: Path, tmp_path: Path) -> None:
    """A workflow name longer than the old fixed WORKFLOW column (the repository's own
    sum-of-two-equal-pairs has 22 characters) pushed PHASE and what follows out of line."""
    long_name = tmp_path / "long.yaml"
    long_name.write_text((FIXTURES / "diamond.yaml").read_text().replace("diamond", "a-long-workflow-name-x"))
    short = run_fixture(home, "failing.yaml")
    long = sluice(home, "run", str(long_name), "--json")
    assert long.returncode == 0, long.stderr
    table = sluice(home, "runs").stdout.splitlines()
    assert [line.split()[:3] for line in table[1:]] == [
        [json.loads(long.stdout)["run"], "a-long-workflow-name-x", "Succeeded"],
        [short, "failing", "Failed"],
    ]
    for column in ("PHASE", "STARTED", "DURATION"):
        at = table[0].index(column)
        assert all(line[at - 2 : at] == "  " and line[at] != " " for line in table[1:]), (column, table)


def _cache_files(home: Path) -> tuple[set[str], set[str]]:
    entries = {p.stem for p in (home / "cache/entries").glob("*.json")}
    objects = {p.name for p in (home / "cache/objects").glob("*/*")}
    return entries, objects


def test_delete_removes_runs_and_the_cache_only_they_use(home: Path) -> None:
    first = run_fixture(home, "diamond.yaml")
    second = run_fixture(home, "diamond.yaml")  # restored from the cache: shares every entry with the first
    failed = run_fixture(home, "failing.yaml")
    diamond_entries, _ = _cache_files(home)
    failing_key = next(s["cacheKey"] for s in record_of(home, failed)["steps"] if s["name"] == "fine")
    assert failing_key in diamond_entries
    diamond_entries.discard(failing_key)
    assert diamond_entries

    done = sluice(home, "runs", "delete", first)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"deleted {first}\n1 run(s) deleted; 0 cache entries")
    assert not (home / "runs" / first).exists()
    assert _cache_files(home)[0] >= diamond_entries, "still used by the second run"

    before = _cache_files(home)[1]
    done = sluice(home, "runs", "delete", second)
    assert done.returncode == 0, done.stderr
    entries, objects = _cache_files(home)
    assert entries == {failing_key}, (
        "the failing run's entry stays; the diamond ones went with their last run"
    )
    assert objects < before
    assert f"{len(diamond_entries)} cache entries" in done.stdout
    assert record_of(home, failed)["phase"] == "Failed"


def test_prune_keeps_the_newest(home: Path) -> None:
    runs = [run_fixture(home, "diamond.yaml", "--no-cache") for _ in range(3)]
    failed = run_fixture(home, "failing.yaml")
    done = sluice(home, "runs", "prune", "--keep", "1", "--workflow", "diamond")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:2] == [f"deleted {runs[1]}", f"deleted {runs[0]}"]
    left = [r["run"] for r in json.loads(sluice(home, "runs", "--json").stdout)]
    assert left == [failed, runs[2]]
    done = sluice(home, "runs", "prune", "--keep", "0")
    assert done.returncode == 0
    assert json.loads(sluice(home, "runs", "--json").stdout) == []
    assert sluice(home, "runs", "prune").returncode == 2, "--keep is required"
    assert sluice(home, "runs", "prune", "--keep", "-1").returncode == 2


def test_delete_and_endpoints_of_arun_fixture(home: Path) -> None:
    """A run whose model a live local endpoint serves: delete refuses, --force stops the server;
    prune keeps the run; a registration whose server is gone is removed with its run."""
    run = run_fixture(home, "diamond.yaml")
    model_dir = home / "runs" / run / "workspaces/artifacts/model"
    model_dir.mkdir(parents=True)
    # a process that the registry takes for a model server (its command line names stages.serve)
    server = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "stages.serve"], start_new_session=True
    )
    try:
        (home / "endpoints").mkdir()
        registration = {"name": "adder", "url": "http://127.0.0.1:1/v2/models/adder/infer", "pid": server.pid}
        registration.update(port=1, model_dir=str(model_dir), started_at="2026-01-01T00:00:00Z")
        (home / "endpoints/adder.json").write_text(json.dumps(registration))
        pruned = sluice(home, "runs", "prune", "--keep", "0")
        assert pruned.returncode == 0 and f"kept {run}: serves endpoint adder" in pruned.stderr
        refused = sluice(home, "runs", "delete", "latest")
        assert refused.returncode == 1
        assert refused.stderr == (
            f"sluice runs delete: run {run} serves endpoint adder: stop it"
            " (`sluice endpoints stop adder`) or give --force\n"
        )
        forced = sluice(home, "runs", "delete", "latest", "--force")
        assert forced.returncode == 0, forced.stderr
        assert "endpoint adder stopped and removed" in forced.stderr
        server.wait(timeout=15)
        assert not (home / "endpoints/adder.json").exists() and not (home / "runs" / run).exists()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_compare_side_by_side(home: Path) -> None:
    first = run_fixture(home, "diamond.yaml")
    second = run_fixture(home, "failing.yaml")
    done = sluice(home, "compare", first, second, "--json")
    assert done.returncode == 0, done.stderr
    table = json.loads(done.stdout)
    assert table["runs"] == [first, second]
    assert table["inputs"]["greeting"] == ["hello", None]
    assert table["outputs"]["joined"][0].endswith(f"{first}-join") and table["outputs"]["joined"][1] is None
    assert table["metrics"]["fine.answer"] == [None, 42.0], "numeric results are metrics"
    assert set(table["durations"]) >= {"left", "broken", "(run)"}
    assert all(isinstance(v, float) for v in table["durations"]["(run)"])

    text = sluice(home, "compare", first, "latest")
    assert text.returncode == 0
    lines = text.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, "fits 80 columns"
    assert any(line.split() == ["fine.answer", "-", "42"] for line in lines)
    assert [
        line.strip() for line in lines if line.strip() in ("inputs", "outputs", "metrics", "durations")
    ] == [
        "inputs",
        "outputs",
        "metrics",
        "durations",
    ]
    one = sluice(home, "compare", first)
    assert one.returncode == 2 and one.stderr == "sluice compare: give two runs or more\n"
