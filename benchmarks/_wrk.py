"""wrk, the load generator of `python -m benchmarks serve`: found (or installed), and one round.

The Lua script makes every request the same POST and writes one line marked WRK_MARK with wrk's
summary (requests, duration, errors, p50 and p99 latency), which `wrk_round` reads back.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

WRK_MARK = "SLUICE-WRK"
WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = [[%s]]
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("%s %%d %%d %%d %%d %%.1f %%.1f\\n", summary.requests, summary.duration,
    e.status, e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass
class Load:
    """One wrk round: requests/s and latency percentiles (ms)."""

    rps: float
    p50: float
    p99: float


def ensure_wrk() -> tuple[str, str]:
    """(path of wrk, "") or ("", why there is none)."""
    found = shutil.which("wrk")
    if found:
        return found, ""
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        return "", "wrk is not installed (Debian: apt-get install wrk, as root)"
    for commands in ([[apt, "install", "-y", "wrk"]], [[apt, "update"], [apt, "install", "-y", "wrk"]]):
        for command in commands:
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                subprocess.run(
                    command,
                    capture_output=True,
                    timeout=600,
                    env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
                )
        found = shutil.which("wrk")
        if found:
            return found, ""
    return "", "wrk is not installed and apt-get install -y wrk failed"


def wrk_round(wrk: str, script: Path, port: int, path: str, connections: int, seconds: float) -> Load:
    done = subprocess.run(
        [
            wrk,
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "5s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}{path}",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith(WRK_MARK)), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    requests, micros, bad_status, socket_errors, p50, p99 = line.split()[1:]
    if int(bad_status) or int(socket_errors):
        raise RuntimeError(f"port {port}: {bad_status} non-2xx answers, {socket_errors} socket errors")
    return Load(int(requests) / (int(micros) / 1e6), float(p50) / 1000, float(p99) / 1000)
