"""Kubernetes' tcpSocket and httpGet readiness checks, run once.

A host-process sidecar is checked from this machine (`network_probe_passes`). A sidecar in a pod
(`--containers`, pods.py) listens in the pod's own network namespace, which this machine cannot
reach: there this file runs as a program inside that namespace (`nsenter --net=... python
probes.py PROBE_JSON`, exit 0 when the check passes), so it imports only the standard library.
"""

from __future__ import annotations

import asyncio
import json
import sys
import urllib.error
import urllib.request
from typing import Any


async def network_probe_passes(probe: dict[str, Any]) -> bool:
    """One tcpSocket or httpGet check of a readinessProbe (host default 127.0.0.1, as in a pod)."""
    timeout = float(probe.get("timeoutSeconds", 1))
    check = probe.get("tcpSocket") or probe.get("httpGet") or {}
    host, port = str(check.get("host") or "127.0.0.1"), int(check["port"])
    if "tcpSocket" in probe:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        except (OSError, TimeoutError):
            return False
        writer.close()
        return True
    scheme = str(check.get("scheme") or "HTTP").lower()
    url = f"{scheme}://{host}:{port}{check.get('path') or '/'}"
    return await asyncio.to_thread(_http_ok, url, timeout)


def _http_ok(url: str, timeout: float) -> bool:
    """Kubernetes' httpGet: a status from 200 to 399 passes."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= int(response.status) < 400
    except urllib.error.HTTPError as exc:
        return 200 <= exc.code < 400
    except (OSError, ValueError):
        return False


def main(argv: list[str]) -> int:
    """`probes.py PROBE_JSON`: 0 when the probe passes, 1 when it does not, 2 on a usage error."""
    if len(argv) != 1:
        print("usage: probes.py PROBE_JSON", file=sys.stderr)
        return 2
    return 0 if asyncio.run(network_probe_passes(json.loads(argv[0]))) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
