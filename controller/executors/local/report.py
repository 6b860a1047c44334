"""`sluice report RUN`: one self-contained HTML page (no external files or scripts).

It shows the run's inputs, its steps and timings, for a failed step the last lines of its log, a
metrics table (numeric results and the `metrics.json` files of its artifacts), the evaluation
(`sluice/evaluate`'s `report.json`: held-out r2/mae/mse, each probe row with its expected and
predicted answer and the error, the skew and its per-feature details), the loss curve (the
training stage's `loss.png`, or drawn from the per-epoch values the executor read from the
training log), outputs and the artifact lineage.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1000px;color:#222}
table{border-collapse:collapse;margin:1em 0;width:100%}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;
font-size:14px;vertical-align:top}th{background:#f3f3f3}.Succeeded{color:#17803d}.Failed{color:#c62828}
.Skipped,.Cancelled{color:#777}code{font-size:12px;word-break:break-all}img{max-width:100%}
pre.log{background:#f7f7f7;border:1px solid #ddd;padding:8px;font-size:12px;white-space:pre-wrap}
"""


def _e(value: Any) -> str:
    return html.escape(value if isinstance(value, str) else json.dumps(value))


def _number(text: Any) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if value == value else None


def metrics_rows(record: dict[str, Any], folder: Path) -> list[tuple[str, str, float]]:
    """(step, metric, value) from numeric results and `metrics.json` files under artifact folders."""
    rows: list[tuple[str, str, float]] = []
    for step in record.get("steps", []):
        for key, value in (step.get("results") or {}).items():
            number = _number(value)
            if number is not None:
                rows.append((step["name"], key, number))
        for artifact in step.get("artifacts") or []:
            path = Path(artifact["path"])
            for metrics_file in [path / "metrics.json"] if path.is_dir() else []:
                try:
                    data = json.loads(metrics_file.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    continue
                for key, value in data.items() if isinstance(data, dict) else []:
                    number = _number(value) if not isinstance(value, bool) else None
                    if number is not None and (step["name"], key, number) not in rows:
                        rows.append((step["name"], key, number))
    return rows


FAILED_LOG_LINES = 20


def log_tail(
    record: dict[str, Any], folder: Path, step: dict[str, Any], lines: int = FAILED_LOG_LINES
) -> str:
    """The last `lines` lines of a step's log (its path is relative to the run folder)."""
    if not step.get("log"):
        return ""
    path = Path(step["log"])
    path = path if path.is_absolute() else folder / path
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def evaluations(record: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(step, report) of every `sluice/evaluate` report (`report.json` with `probe` and `skew`)."""
    found = []
    for step in record.get("steps", []):
        for artifact in step.get("artifacts") or []:
            path = Path(artifact["path"]) / "report.json"
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(data, dict) and "probe" in data and "skew" in data:
                found.append((step["name"], data))
    return found


def _fmt(value: Any) -> str:
    number = _number(value) if not isinstance(value, bool) else None
    return f"{number:.6g}" if number is not None else _e(value)


def _vector(values: Any) -> str:
    return ", ".join(_fmt(v) for v in values) if isinstance(values, list) else _fmt(values)


def _evaluation_html(step: str, report: dict[str, Any]) -> list[str]:
    skew = report.get("skew") or {}
    pair = " / ".join(map(str, skew.get("correlation_pair") or []))  # none when no correlation changed
    parts = [
        f"<h3>{_e(step)}</h3><p>Held-out ({_e(report.get('split', ''))} split): "
        + ", ".join(f"{k} = <b>{_fmt(report[k])}</b>" for k in ("r2", "mae", "mse") if k in report)
        + f". Skew <b>{_fmt(skew.get('skew'))}</b> (serving statistics: {_e(report.get('serving_stats', ''))}"
        + (
            f"; largest correlation change {_fmt(skew['correlation_change'])}"
            + (f" on {_e(pair)}" if pair else "")
            if "correlation_change" in skew
            else ""
        )
        + ").</p>"
    ]
    probes = report.get("probe") or []
    if probes:
        parts.append(
            "<table><tr><th>probe x (rows the step was given)</th><th>expected</th><th>predicted</th>"
            "<th>error</th></tr>"
        )
        for probe in probes:
            expected, predicted = probe.get("expected") or [], probe.get("predicted") or []
            errors = [
                (p - e) if _number(e) is not None and _number(p) is not None else None
                for e, p in zip(expected, predicted, strict=False)
            ]
            error = ", ".join("" if v is None else f"{v:+.6g}" for v in errors)
            parts.append(
                f"<tr><td>{_vector(probe.get('x'))}</td><td>{_vector(expected)}</td>"
                f"<td>{_vector(predicted)}</td><td>{error}</td></tr>"
            )
        parts.append("</table>")
        if _number(report.get("probe_mae")) is not None:
            parts.append(f"<p>Probe MAE {_fmt(report['probe_mae'])}.</p>")
    else:
        parts.append("<p>No probe rows.</p>")
    features = [f for f in skew.get("features") or [] if isinstance(f, dict)]
    if features:
        # stages/evaluate.py's skew_report names each feature under "feature"
        keys = [k for k in features[0] if k != "feature"]
        parts.append("<table><tr><th>feature</th>" + "".join(f"<th>{_e(k)}</th>" for k in keys) + "</tr>")
        parts += [
            f"<tr><td>{_e(f.get('feature', ''))}</td>"
            + "".join(f"<td>{_fmt(f.get(k))}</td>" for k in keys)
            + "</tr>"
            for f in features
        ]
        parts.append("</table>")
    return parts


def _png_in_artifacts(record: dict[str, Any]) -> bytes | None:
    for step in record.get("steps", []):
        for artifact in step.get("artifacts") or []:
            path = Path(artifact["path"])
            candidates = sorted(path.glob("*loss*.png")) if path.is_dir() else []
            if candidates:
                return candidates[0].read_bytes()
    return None


def _png_from_metrics(record: dict[str, Any]) -> bytes | None:
    curves = [(s["name"], s.get("metrics") or {}) for s in record.get("steps", []) if s.get("metrics")]
    curves = [(name, m) for name, m in curves if any("loss" in k for k in m)]
    if not curves:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, metrics in curves:
        for key, values in metrics.items():
            if "loss" in key:
                ax.plot(range(1, len(values) + 1), values, marker="o", label=f"{name}: {key}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def render(record: dict[str, Any], folder: Path) -> str:
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Sluice run {_e(record.get('run', ''))}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Run {_e(record.get('run', ''))}</h1>",
        f"<p>Workflow <b>{_e(record.get('workflow', ''))}</b> — <span class='{_e(record.get('phase', ''))}'>"
        f"{_e(record.get('phase', ''))}</span>, started {_e(record.get('startTime') or '')}, "
        f"took {_e(record.get('duration') or '')} s. {_e(record.get('message') or '')}</p>",
    ]
    params = record.get("params") or {}
    parts.append("<h2>Inputs</h2>")
    if params:
        parts.append("<table><tr><th>input</th><th>value</th></tr>")
        parts += [f"<tr><td>{_e(k)}</td><td><code>{_e(v)}</code></td></tr>" for k, v in params.items()]
        parts.append("</table>")
    else:
        parts.append("<p>No inputs.</p>")
    parts.append(
        "<h2>Steps</h2><table><tr><th>step</th><th>state</th><th>duration (s)</th><th>results</th></tr>"
    )
    for step in record.get("steps", []):
        state = "cached" if step.get("cached") else step.get("phase", "")
        if step.get("reason") and step.get("phase") in ("Skipped", "Failed"):
            state += f" ({step['reason']})"
        if step.get("phase") == "Skipped" and step.get("message"):
            state += f": {step['message']}"  # why: the condition and the values it compared
        results = "<br>".join(
            f"{_e(k)} = <code>{_e(v)}</code>" for k, v in (step.get("results") or {}).items()
        )
        parts.append(
            f"<tr><td>{_e(step['name'])}</td><td class='{_e(step.get('phase', ''))}'>{_e(state)}</td>"
            f"<td>{_e(step.get('duration') or '')}</td><td>{results}</td></tr>"
        )
    parts.append("</table>")
    for step in record.get("steps", []):
        if step.get("phase") == "Failed":
            tail = log_tail(record, folder, step)
            why = step.get("message") or step.get("reason") or ""
            parts.append(
                f"<h2>Failed: {_e(step['name'])}</h2><p>{_e(why)}</p>"
                + (
                    f"<p>Last lines of its log:</p><pre class='log'>{_e(tail)}</pre>"
                    if tail
                    else "<p>No log was written.</p>"
                )
            )
    parts.append("<h2>Metrics</h2>")
    rows = metrics_rows(record, folder)
    if rows:
        parts.append("<table><tr><th>step</th><th>metric</th><th>value</th></tr>")
        parts += [f"<tr><td>{_e(s)}</td><td>{_e(k)}</td><td>{v:.6g}</td></tr>" for s, k, v in rows]
        parts.append("</table>")
    else:
        parts.append("<p>No numeric metrics.</p>")
    reports = evaluations(record)
    if reports:
        parts.append("<h2>Evaluation</h2>")
        for step_name, report in reports:
            parts += _evaluation_html(step_name, report)
    parts.append("<h2>Loss curve</h2>")
    png = _png_in_artifacts(record) or _png_from_metrics(record)
    if png:
        parts.append(f"<img alt='loss curve' src='data:image/png;base64,{base64.b64encode(png).decode()}'>")
    else:
        parts.append("<p>No training in this run.</p>")
    if record.get("outputs"):
        parts.append("<h2>Outputs</h2><table>")
        parts += [
            f"<tr><td>{_e(k)}</td><td><code>{_e(v)}</code></td></tr>" for k, v in record["outputs"].items()
        ]
        parts.append("</table>")
    parts.append("<h2>Lineage</h2><table><tr><th>step</th><th>reads</th><th>writes</th></tr>")
    for step in record.get("steps", []):
        reads = "<br>".join(
            f"<code>{_e(a['path'])}</code> sha256:{_e(a['sha256'][:16])}" for a in step.get("inputs") or []
        )
        writes = "<br>".join(
            f"<code>{_e(a['path'])}</code> sha256:{_e(a['sha256'][:16])}" for a in step.get("artifacts") or []
        )
        if reads or writes:
            parts.append(f"<tr><td>{_e(step['name'])}</td><td>{reads}</td><td>{writes}</td></tr>")
    parts.append("</table></body></html>\n")
    return "".join(parts)


def write_report(record: dict[str, Any], folder: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render(record, folder), encoding="utf-8")
    return target
