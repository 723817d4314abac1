"""litmus-seq side of the benchmarks, run in a fresh child process per measurement.

Each workload drives the in-process API that ``litmus-seq run`` itself uses (``build_plan`` →
``Session`` → ``run_plan``) with every store live: the event store (Arrow IPC), the channel
store and the run materializer (one sealed parquet per run). Plans are built off the clock; the
clock covers ``Session(...)`` + ``open`` + ``run_plan`` + ``close``, i.e. everything from "plan in
hand" to "all three stores sealed on disk". A 1-item warm-up run first pays the lazy imports
(pyarrow, drivers), so the figures are steady-state costs of a fresh process, not import time
(cold start is measured separately by :mod:`bench.run`).

Every timed run is checked: outcome ``passed`` and the parquet row count the workload implies
(1 run row + step rows + measurement rows), so a benchmark can never time a run that silently
did less work.

Usage: ``python bench/litmus_child.py marginal SEQ_1 SEQ_N --expect-1 R1 --expect-n RN --tmp DIR``,
``... million SEQ --expect-n RN --tmp DIR``, ``... breakdown SEQ --expect-n RN --tmp DIR``, ``... tiny SEQ --runs R --tmp DIR``. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any


T1_RUNS = 5  # one-item runs per process whose median is T(1)


def _load(seq: Path) -> tuple[Any, Any, Any]:
    from litmus_seq.plan import build_plan
    from litmus_seq.project import ProjectContext

    ctx = ProjectContext.for_path(seq)
    plan = build_plan(seq, project=ctx)
    station = ctx.load_station("stations/mock.yaml")
    return ctx, plan, station


def _check(result: Any, expect_rows: int) -> None:
    import pyarrow.parquet as pq

    if result.outcome != "passed":
        raise SystemExit(f"run {result.run_id} ended {result.outcome!r}, expected 'passed'")
    if result.parquet is None:
        raise SystemExit(f"run {result.run_id} left no parquet file")
    rows = pq.read_metadata(result.parquet).num_rows
    if rows != expect_rows:
        raise SystemExit(f"{result.parquet}: {rows} rows, expected {expect_rows}")


def timed_session(ctx: Any, plan: Any, station: Any, data_dir: Path) -> tuple[float, float, Any]:
    """(open+run+close seconds, run-only seconds, result) of one run in a fresh Session."""
    from litmus_seq.plugins import get_plugin_manager
    from litmus_seq.run import Session, run_plan, station_process
    from litmus_seq.stores import register_stores

    t0 = time.perf_counter()
    pm = get_plugin_manager(project_root=ctx.root)
    with station_process(), register_stores(pm, data_dir), Session(station, pm=pm, root=ctx.root) as session:
        t1 = time.perf_counter()
        result = run_plan(session, plan, dut_serial="SN1")
        t2 = time.perf_counter()
    t3 = time.perf_counter()
    return t3 - t0, t2 - t1, result


def _maybe_freeze(a: argparse.Namespace) -> None:
    """``--gc-freeze``: what-if for a proposed engine fix (``gc.freeze()`` once the plan is built).

    The loaded YAML node trees and the plan are long-lived; without a freeze every full
    collection during the run walks all of them.
    """
    if a.gc_freeze:
        import gc

        gc.collect()
        gc.freeze()


def marginal(a: argparse.Namespace) -> dict[str, Any]:
    """T(1) and T(N) for the first run of each plan, and again for a second run of the same plans.

    The second run is the production case: a station loads the sequence once and tests unit after
    unit, and what a plan can do once (its JSON for the run file, its step identities) is not
    redone per unit.
    """
    ctx1, plan1, station1 = _load(a.seq[0])
    ctxn, plann, stationn = _load(a.seq[1])
    _, _, warm = timed_session(ctx1, plan1, station1, a.tmp / "warmup")
    _check(warm, a.expect_1)
    _maybe_freeze(a)
    # T(1), the fixed cost, is the median of T1_RUNS one-item runs, each of a fresh plan (the
    # warm-up must not have built its JSON): one sample of ~20 ms swung the N = 1,000 figure by
    # several µs a step. T(N) is one run, the first big one of the process, as `litmus-seq run`.
    ones = []
    for i in range(T1_RUNS):
        ctx1, plan1, station1 = _load(a.seq[0])
        t1, r1, res1 = timed_session(ctx1, plan1, station1, a.tmp / f"one_{i}")
        _check(res1, a.expect_1)
        ones.append((t1, r1, ctx1, plan1, station1))
    tn, rn, resn = timed_session(ctxn, plann, stationn, a.tmp / "n")
    _check(resn, a.expect_n)
    again = []
    for i, (_, _, ctx1, plan1, station1) in enumerate(ones):
        t1b, _, res1b = timed_session(ctx1, plan1, station1, a.tmp / f"one_again_{i}")
        _check(res1b, a.expect_1)
        again.append(t1b)
    tnb, _, resnb = timed_session(ctxn, plann, stationn, a.tmp / "n_again")
    _check(resnb, a.expect_n)
    return {"t1": statistics.median(t for t, *_ in ones), "tn": tn,
            "run1": statistics.median(r for _, r, *_ in ones), "runn": rn,
            "t1_next": statistics.median(again), "tn_next": tnb, "t1_all": [t for t, *_ in ones],
            "parquet_bytes": resn.parquet.stat().st_size}


class _Clock:
    """Accumulated wall time of wrapped methods (what each subscriber costs inside a run)."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}

    def wrap(self, cls: type, name: str, label: str) -> None:
        import functools

        fn = getattr(cls, name)
        totals = self.totals
        totals.setdefault(label, 0.0)
        perf = time.perf_counter

        @functools.wraps(fn)  # keeps pluggy's hookimpl marker (it lives in the function's __dict__)
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = perf()
            try:
                return fn(*args, **kwargs)
            finally:
                totals[label] += perf() - t0

        setattr(cls, name, timed)


def breakdown(a: argparse.Namespace) -> dict[str, Any]:
    """Where the time of one N-item run goes: engine vs. each store, in seconds.

    The same plan runs (second run of the plan, best of three each) with the stores switched off
    one by one: the engine alone (both stores' hooks do nothing), the engine and the event store,
    then everything. Each part is a difference of whole runs, so work a store does on its own
    thread (the event store compresses and writes beside the engine) counts only as far as it
    delays the run. The materializer's file write, which runs in the engine's thread at
    ``run.ended``, is timed directly to split it from its per-event handling.
    """
    from litmus_seq.hookspecs import hookimpl
    from litmus_seq.stores.events import EventStore
    from litmus_seq.stores.materializer import RunMaterializer

    ctx, plan, station = _load(a.seq[0])
    timed_session(ctx, plan, station, a.tmp / "warmup")  # lazy imports, and the plan's JSON
    _maybe_freeze(a)
    real = {cls: cls.litmus_seq_events for cls in (EventStore, RunMaterializer)}

    @hookimpl
    def nothing(self: Any, events: list[dict[str, Any]]) -> None:
        return None

    clock = _Clock()
    clock.wrap(RunMaterializer, "_write", "materializer file write")
    best: dict[str, float] = {}
    file_s = 0.0
    gc_s = [0.0, 0.0, 0.0]
    for mode, off in (("engine", (EventStore, RunMaterializer)), ("engine+events", (RunMaterializer,)),
                      ("all", ())):
        for cls, fn in real.items():
            setattr(cls, "litmus_seq_events", nothing if cls in off else fn)
        for i in range(3):
            clock.totals["materializer file write"] = 0.0
            gcs = _gc_clock()
            total, run_s, result = timed_session(ctx, plan, station, a.tmp / f"{mode}_{i}")
            if mode == "all":
                _check(result, a.expect_n)
            if total < best.get(mode, float("inf")):
                best[mode] = total
                if mode == "all":
                    file_s, gc_s = clock.totals["materializer file write"], list(gcs)
            import gc

            gc.callbacks.clear()
    mat = best["all"] - best["engine+events"]
    parts = {
        "engine": best["engine"],
        "event store": best["engine+events"] - best["engine"],
        "materializer (events)": mat - file_s,
        "materializer (parquet file)": file_s,
    }
    return {"total_s": best["all"], "parts_s": parts, "gc_full_s": gc_s[2], "gc_young_s": gc_s[0] + gc_s[1]}


def _gc_clock() -> list[float]:
    """Seconds spent in garbage collections per generation from now on (via ``gc.callbacks``)."""
    import gc

    spent = [0.0, 0.0, 0.0]
    start = [0.0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            start[0] = time.perf_counter()
        else:
            spent[info["generation"]] += time.perf_counter() - start[0]

    gc.callbacks.append(on_gc)
    return spent


def million(a: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    ctx, plan, station = _load(a.seq[0])
    plan_s = time.perf_counter() - t0
    rss_plan = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    _maybe_freeze(a)
    total, run_s, result = timed_session(ctx, plan, station, a.tmp / "million")
    _check(result, a.expect_n)
    return {"plan_s": plan_s, "total_s": total, "run_s": run_s, "rss_after_plan_mb": rss_plan,
            "parquet_bytes": result.parquet.stat().st_size}


def tiny(a: argparse.Namespace) -> dict[str, Any]:
    """``--runs`` small runs in one session (as a station testing board after board would)."""
    from litmus_seq.plugins import get_plugin_manager
    from litmus_seq.run import Session, run_plan, station_process
    from litmus_seq.stores import register_stores

    ctx, plan, station = _load(a.seq[0])
    t0 = time.perf_counter()
    files = 0
    pm = get_plugin_manager(project_root=ctx.root)
    with station_process(), register_stores(pm, a.tmp), Session(station, pm=pm, root=ctx.root) as session:
        for i in range(a.runs):
            result = run_plan(session, plan, dut_serial=f"SN{i:06d}")
            if result.parquet is None:
                raise SystemExit(f"run {i} left no parquet file")
            files += 1
    return {"gen_s": time.perf_counter() - t0, "files": files}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("workload", choices=("marginal", "million", "tiny", "breakdown"))
    p.add_argument("seq", nargs="+", type=Path)
    p.add_argument("--expect-1", type=int, default=0)
    p.add_argument("--expect-n", type=int, default=0)
    p.add_argument("--runs", type=int, default=0)
    p.add_argument("--tmp", type=Path, required=True)
    p.add_argument("--gc-freeze", action="store_true", help="gc.freeze() after planning (what-if)")
    a = p.parse_args(argv)
    out = {"marginal": marginal, "million": million, "tiny": tiny, "breakdown": breakdown}[a.workload](a)
    out["rss_self_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
