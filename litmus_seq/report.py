"""The per-run HTML report: one self-contained file (no network needed to view it).

It is built from the run file alone (the rows :class:`~litmus_seq.results.Results` reads), so a
report can be made for any stored run, recorded by any front door, at any time later:

* the run header: DUT, station, operator, phase, sequence, times, the verdict and its cause;
* the instruments with their identity and calibration (the traceability columns);
* every planned step and vector with its verdict — never-ran steps listed as such;
* every measurement with its value, its limit and a bar placing the value in the limit band;
* for a step with several vectors swept over one numeric parameter, a plot of each
  measurement against that parameter with its limit band (inline SVG).
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["render_report", "write_run_report"]

_COLOURS = {"passed": "#1a7f37", "failed": "#cf222e", "errored": "#9a6700", "terminated": "#8250df",
            "aborted": "#8250df", "done": "#57606a", "skipped": "#8c959f", None: "#8c959f"}

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1f2328}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 8px}
table{border-collapse:collapse;width:100%;margin:4px 0 12px} th,td{padding:3px 8px;text-align:left;
border-bottom:1px solid #d8dee4;vertical-align:top} th{background:#f6f8fa;font-weight:600}
.verdict{display:inline-block;padding:4px 14px;border-radius:6px;color:#fff;font-weight:700;font-size:18px}
.o{font-weight:600} .muted{color:#57606a} .err{color:#cf222e}
.bar{position:relative;width:160px;height:10px;background:#eaeef2;border-radius:5px;display:inline-block}
.band{position:absolute;top:0;height:10px;background:#aceebb;border-radius:5px}
.dot{position:absolute;top:-2px;width:4px;height:14px;background:#1f2328}
.step{margin:0 0 18px} svg{background:#fff;border:1px solid #d8dee4}
"""


def _e(v: Any) -> str:
    return html.escape("" if v is None else str(v))


def _num(x: Any) -> str:
    from litmus_seq.reporters.render import number

    return number(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else _e(x)


def _outcome(o: Any) -> str:
    label = o if o is not None else "never ran"
    return f'<span class="o" style="color:{_COLOURS.get(o, "#57606a")}">{_e(label)}</span>'


def _bar(row: Mapping[str, Any]) -> str:
    """A value placed in its limit band (numeric two-sided limits only)."""
    lo, hi, v = row.get("limit_low"), row.get("limit_high"), row.get("measurement_value")
    if not all(isinstance(x, (int, float)) for x in (lo, hi, v)) or not hi > lo:  # type: ignore[operator]
        return ""
    span = hi - lo  # type: ignore[operator]
    left, right = lo - span * 0.25, hi + span * 0.25  # type: ignore[operator]

    def at(x: float) -> float:
        return max(0.0, min(100.0, (x - left) / (right - left) * 100))

    return (f'<span class="bar" title="{_num(lo)} … {_num(hi)}"><span class="band" style="left:{at(lo):.1f}%;'
            f'width:{at(hi) - at(lo):.1f}%"></span><span class="dot" style="left:{at(v):.1f}%"></span></span>')


def _measurement_row(row: Mapping[str, Any]) -> str:
    from litmus_seq.reporters.render import failure_text, from_row, limit_text

    m = from_row(row)
    shown = _num(m["value"]) if m["value"] is not None else _e(m["text"])
    units = _e(m.get("units") or "")
    limit = limit_text(m["limit"]) if m["limit"] else ""
    why = f'<div class="err">{_e(failure_text(m))}</div>' if m["outcome"] in ("failed", "errored") else ""
    marginal = ' <span class="muted">marginal</span>' if row.get("measurement_marginal") else ""
    retry = f' <span class="muted">attempt {row["vector_retry"] + 1}</span>' if row.get("vector_retry") else ""
    trace = " ".join(_e(x) for x in (row.get("instrument_name"), row.get("instrument_model"),
                                     row.get("instrument_serial")) if x)
    return (f"<tr><td>{_e(m['name'])}{retry}</td><td>{shown} {units}{marginal}{why}</td><td>{_e(limit)}"
            f'</td><td>{_bar(row)}</td><td>{_outcome(m["outcome"])}</td>'
            f'<td class="muted">{trace}</td></tr>')


def _params(step_row: Mapping[str, Any]) -> dict[str, Any]:
    return {k[3:]: v for k, v in step_row.items() if k.startswith("in_") and v is not None}


def _sweep_param(vectors: Sequence[Mapping[str, Any]]) -> str | None:
    """The one numeric parameter that changes from vector to vector, if there is exactly one."""
    if len(vectors) < 2:
        return None
    keys = set().union(*(_params(v) for v in vectors))
    varying = [k for k in sorted(keys)
               if len({_params(v).get(k) for v in vectors}) > 1
               and all(isinstance(_params(v).get(k), (int, float)) for v in vectors)]
    return varying[0] if len(varying) == 1 else None


def _plot(name: str, param: str, points: list[tuple[float, float, Any, Any]]) -> str:
    """An inline SVG: value against ``param``, with the limit band shaded."""
    w, h, pad = 420, 200, 36
    xs = [p[0] for p in points]
    ys = [p[1] for p in points] + [b for p in points for b in (p[2], p[3]) if isinstance(b, (int, float))]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y1 = y0 + 1
    ym = (y1 - y0) * 0.1
    y0, y1 = y0 - ym, y1 + ym

    def sx(x: float) -> float:
        return pad + (x - x0) / (x1 - x0) * (w - 2 * pad)

    def sy(y: float) -> float:
        return h - pad + (y0 - y) / (y1 - y0) * (h - 2 * pad)

    parts = [f'<svg width="{w}" height="{h}" role="img" aria-label="{_e(name)} against {_e(param)}">']
    band = [(sx(x), sy(hi), sy(lo)) for x, _, lo, hi in points
            if isinstance(lo, (int, float)) and isinstance(hi, (int, float))]
    if band:
        top = " ".join(f"{x:.1f},{yh:.1f}" for x, yh, _ in band)
        bottom = " ".join(f"{x:.1f},{yl:.1f}" for x, _, yl in reversed(band))
        parts.append(f'<polygon points="{top} {bottom}" fill="#aceebb" opacity="0.7"/>')
    line = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y, _, _ in points)
    parts.append(f'<polyline points="{line}" fill="none" stroke="#0969da" stroke-width="1.5"/>')
    parts += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="#0969da"/>' for x, y, _, _ in points]
    parts.append(f'<text x="{w / 2:.0f}" y="{h - 6}" text-anchor="middle" font-size="11">{_e(param)}</text>')
    parts.append(f'<text x="4" y="14" font-size="11">{_e(name)}</text>')
    for v, y in ((y0 + ym, sy(y0 + ym)), (y1 - ym, sy(y1 - ym))):
        parts.append(f'<text x="2" y="{y:.0f}" font-size="10" class="muted">{_num(round(v, 6))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _sweep_plots(vectors: Sequence[Mapping[str, Any]], meas: Sequence[Mapping[str, Any]]) -> str:
    param = _sweep_param(vectors)
    if param is None:
        return ""
    by_name: dict[str, list[tuple[float, float, Any, Any]]] = {}
    for m in meas:
        v = m.get("measurement_value")
        x = m.get(f"in_{param}")
        if isinstance(v, (int, float)) and isinstance(x, (int, float)) and math.isfinite(v):
            by_name.setdefault(m["measurement_name"], []).append((x, v, m.get("limit_low"), m.get("limit_high")))
    return "".join(_plot(name, param, sorted(pts)) for name, pts in by_name.items() if len(pts) > 1)


def _instruments(run: Mapping[str, Any]) -> str:
    names = run.get("step_instruments_name") or []
    if not names:
        return '<p class="muted">no instruments</p>'
    cols = ("name", "driver", "resource", "manufacturer", "model", "serial", "firmware", "cal_due",
            "cal_certificate", "mocked")
    lists = {c: list(run.get(f"step_instruments_{c}") or [None] * len(names)) for c in cols}
    head = "".join(f"<th>{_e(c.replace('_', ' '))}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{_e(lists[c][i] if i < len(lists[c]) else None)}</td>" for c in cols)
                   + "</tr>" for i in range(len(names)))
    return f"<table><tr>{head}</tr>{body}</table>"


def _header(run: Mapping[str, Any]) -> str:
    outcome = run.get("run_outcome")
    fields = [("DUT", run.get("dut_serial")), ("product", run.get("product_id")), ("station", run.get("station_id")),
              ("operator", run.get("operator_name")), ("phase", run.get("test_phase")),
              ("sequence", run.get("sequence_name")), ("started", run.get("run_started_at")),
              ("ended", run.get("run_ended_at")), ("run", run.get("run_id"))]
    rows = "".join(f"<tr><th>{k}</th><td>{_e(v)}</td></tr>" for k, v in fields if v is not None)
    cause = f'<p class="err">{_e(run["run_error"])}</p>' if run.get("run_error") else ""
    return (f'<h1>{_e(run.get("dut_serial") or "run")} — {_e(run.get("sequence_name") or "")}</h1>'
            f'<p><span class="verdict" id="verdict" style="background:{_COLOURS.get(outcome, "#57606a")}">'
            f'{_e((outcome or "unknown").upper())}</span></p>{cause}<table>{rows}</table>')


def _steps(steps: Iterable[Mapping[str, Any]], meas: Iterable[Mapping[str, Any]]) -> str:
    by_step: dict[str, list[Mapping[str, Any]]] = {}
    for s in steps:
        by_step.setdefault(s["step_path"], []).append(s)
    by_vector: dict[tuple[str, Any], list[Mapping[str, Any]]] = {}
    for m in meas:
        by_vector.setdefault((m["step_path"], m.get("vector_index")), []).append(m)
    out = []
    for path, vectors in by_step.items():
        first = vectors[0]
        outcome = first.get("step_outcome")
        err = first.get("step_error")
        out.append(f'<div class="step" data-step="{_e(path)}"><h2>{_e(path)} {_outcome(outcome)}</h2>')
        if err and outcome not in ("passed", "done"):
            out.append(f'<p class="err">{_e(err)}</p>')
        rows = []
        for v in vectors:
            params = ", ".join(f"{k}={_num(x)}" for k, x in _params(v).items())
            if len(vectors) > 1 or params:
                rows.append(f'<tr><th colspan="6">vector {_e(v.get("vector_index"))} {_e(params)} '
                            f'{_outcome(v.get("vector_outcome") or v.get("step_outcome"))}</th></tr>')
            rows += [_measurement_row(m) for m in by_vector.get((path, v.get("vector_index")), [])]
        if rows:
            out.append("<table><tr><th>measurement</th><th>value</th><th>limit</th><th></th><th>verdict</th>"
                       f"<th>instrument</th></tr>{''.join(rows)}</table>")
        all_meas = [m for v in vectors for m in by_vector.get((path, v.get("vector_index")), [])]
        out.append(_sweep_plots(vectors, all_meas))
        out.append("</div>")
    return "".join(out)


def render_report(rows: Sequence[Mapping[str, Any]]) -> str:
    """The HTML report of one run from its parquet rows (every ``record_type``)."""
    run = next((r for r in rows if r.get("record_type") == "run"), None)
    if run is None:
        raise ValueError("no run row: not a litmus-seq run file")
    steps = sorted((r for r in rows if r.get("record_type") == "step"),
                   key=lambda r: (r.get("step_index") or 0, r.get("vector_index") or 0))
    meas = [r for r in rows if r.get("record_type") == "measurement"]
    never = [s["step_path"] for s in steps if s.get("step_outcome") is None]
    never_html = ("<h2>Never ran</h2><ul>" + "".join(f"<li>{_e(p)}</li>" for p in dict.fromkeys(never)) + "</ul>"
                  if never else "")
    title = f"{run.get('dut_serial') or run.get('run_id')} {run.get('run_outcome') or ''}"
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f"<style>{_CSS}</style></head><body>{_header(run)}<h2>Instruments</h2>{_instruments(run)}"
            f"{_steps(steps, meas)}{never_html}</body></html>")


def write_run_report(parquet: Path, out: Path) -> Path:
    """Write the report of the run in ``parquet`` to ``out`` (atomically: a reader never sees
    half a page); returns ``out``."""
    import pyarrow.parquet as pq

    from litmus_seq.reporters import atomic_write

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, render_report(pq.read_table(parquet).to_pylist()).encode("utf-8"))
    return out
