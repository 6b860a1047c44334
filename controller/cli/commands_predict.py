"""`sluice predict`: ask a served model for a prediction over the Open Inference Protocol v2."""

from __future__ import annotations

import json
import math
import sys
from typing import Annotated, Any

import typer

MAX_RESPONSE_BYTES = 1024 * 1024


def _fail(message: str) -> typer.Exit:
    print(f"sluice predict: {message}", file=sys.stderr)
    return typer.Exit(1)


def _infer_url(target: str) -> str:
    """A local endpoint's name, or a full v2 infer URL."""
    if target.startswith(("http://", "https://")):
        return target
    from stages.endpoints import EndpointError, get_endpoint

    try:
        endpoint = get_endpoint(target)
    except EndpointError as exc:
        raise _fail(str(exc)) from None
    if endpoint is None or not endpoint.alive:
        raise _fail(f"no running local endpoint named {target!r} (see `sluice endpoints`)")
    return endpoint.url


def _rows(values: list[float], rows: str | None) -> list[list[float]]:
    if rows is None:
        if not values:
            raise _fail("give the feature values of one row (e.g. `3 4`) or --rows '[[3, 4], [10, 20]]'")
        return [values]
    try:
        parsed = json.loads(rows)
    except json.JSONDecodeError as exc:
        raise _fail(f"--rows is not JSON: {exc.msg} (at character {exc.pos + 1})") from None
    ok = isinstance(parsed, list) and parsed and all(isinstance(r, list) and r for r in parsed)
    if not ok or len({len(r) for r in parsed}) != 1:
        raise _fail("--rows must be a non-empty list of equally long lists of numbers")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for r in parsed for v in r):
        raise _fail("--rows must hold numbers only")
    return [[float(v) for v in r] for r in parsed]


def predict(
    target: Annotated[
        str, typer.Argument(help="A local endpoint name (`sluice endpoints`) or a v2 infer URL.")
    ],
    values: Annotated[list[float] | None, typer.Argument(help="Feature values of one row.")] = None,
    rows: Annotated[
        str | None, typer.Option(metavar="JSON", help="Several rows as JSON, e.g. '[[3, 4], [10, 20]]'.")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the answer.")] = 30.0,
) -> None:
    """Send rows of features to a served model and print its answer."""
    import urllib.error  # lazily: `sluice --help` and `validate` should not pay for an HTTP client
    import urllib.request

    data = _rows(list(values or []), rows)
    if not all(math.isfinite(v) for r in data for v in r):
        raise _fail(
            "NaN and infinite values cannot be sent: the Open Inference Protocol's JSON has no such numbers"
        )
    url = _infer_url(target)
    body = {
        "inputs": [
            {
                "name": "inputs",
                "shape": [len(data), len(data[0])],
                "datatype": "FP32",
                "data": [v for r in data for v in r],
            }
        ]
    }
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer: dict[str, Any] = json.loads(response.read(MAX_RESPONSE_BYTES))
    except urllib.error.HTTPError as exc:
        detail = exc.read(2048).decode("utf-8", "replace").strip()
        raise _fail(f"the model answered HTTP {exc.code}: {detail[:300]}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise _fail(f"cannot reach {url}: {getattr(exc, 'reason', exc)}") from None
    except json.JSONDecodeError:
        raise _fail(f"{url} did not answer JSON") from None
    outputs = answer.get("outputs") or []
    if not outputs:
        raise _fail("the answer holds no outputs")
    first = outputs[0]
    width = int(first.get("shape", [len(data), 1])[-1]) if len(first.get("shape", [])) > 1 else 1
    flat = first.get("data", [])
    predictions = [flat[i : i + width] for i in range(0, len(flat), width)]
    for row, prediction in zip(data, predictions, strict=False):
        shown = ", ".join(f"{v:g}" for v in row)
        print(f"[{shown}] -> {', '.join(f'{p:.4f}' for p in prediction)}")
    _warn_out_of_range(answer, data)


def _warn_out_of_range(answer: dict[str, Any], data: list[list[float]]) -> None:
    """The server's skew guard flags rows outside the training range (docs/serving.md)."""
    parameters = answer.get("parameters") or {}
    flagged = str(parameters.get("sluice_out_of_range_rows") or "")
    features = str(parameters.get("sluice_out_of_range_features") or "")
    for index in flagged.split(","):
        if index.isdigit() and int(index) < len(data):
            shown = ", ".join(f"{v:g}" for v in data[int(index)])
            print(
                f"warning: [{shown}] is outside the training range of {features or 'a feature'}: "
                "the model never saw such values, its answer is an extrapolation",
                file=sys.stderr,
            )


def register(app: typer.Typer) -> None:
    from controller.cli.parsing import NumbersAsValues

    app.command("predict", cls=NumbersAsValues)(predict)
