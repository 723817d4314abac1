"""litmus-seq benchmarks: one command, one table, ``bench/RESULTS.md``.

    python bench/run.py            # full run (~6-10 min on 2 cores)
    python bench/run.py --quick    # 1-2 min: N = 1,000 only, 100k-measurement throughput, 1,000 files
    python bench/run.py --profile  # also cProfile the per-step and throughput workloads (top hot spots)

Every figure comes from fresh child processes (``bench/*_child.py``), so one workload's warm
caches, garbage or leaked memory never flatter another's, and peak RSS is the child's own
(``os.wait4`` rusage of that very child). Marginal costs are ``(T(N) - T(1)) / (N - 1)`` with both
made in the same process after a warm-up run (T(1) the median of five one-item runs, T(N) one run),
the median over several processes; ratios are
taken between medians measured in this same invocation, so machine speed cancels out.

Workloads (see ``bench/projects.py``): per step = N steps × 1 vector × 1 mocked measurement;
per extra measurement = 1 step with N measurements; throughput = 10 steps × 1,000 sweep points ×
100 measurements = 1,000,000 measurements into one sealed parquet file; DuckDB = thousands of
5-step runs made by ``run_plan`` (the code path of ``litmus-seq run``), then a GROUP BY over
the run folder with ``union_by_name = true``.

Nothing here is part of the test suite; generated projects and data live in a temp dir.
"""

from __future__ import annotations

import argparse
import itertools
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import projects  # noqa: E402  (bench/ is not a package: imported from its folder)

NOTES_MARKER = "<!-- hand-written notes below this line are kept when run.py rewrites the file -->"


class ChildFailed(RuntimeError):
    """A benchmark child exited non-zero; carries the tail of its stderr."""


@dataclass
class Child:
    """What one child process reported (its JSON line) and what the kernel says it used."""

    out: dict[str, Any]
    wall_s: float
    maxrss_mb: float
    cpu_s: float


def run_child(argv: Sequence[str], *, cwd: Path | None = None, timeout: float = 900.0,
              env: dict[str, str] | None = None) -> Child:
    """Run ``argv`` to completion; parse its last stdout line as JSON; rusage via ``os.wait4``.

    ``os.wait4`` returns the rusage of exactly this child (``RUSAGE_CHILDREN`` would be the
    maximum over every child so far, which would mix workloads).
    """
    with tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(argv), stdout=out, stderr=err, cwd=cwd, env=env)
        deadline = t0 + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.005)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    if proc.returncode != 0:
        tail = "\n".join((stderr.strip() or stdout.strip()).splitlines()[-6:])
        raise ChildFailed(f"{' '.join(map(str, argv[:3]))} ... exited {proc.returncode}: {tail}")
    lines = [ln for ln in stdout.strip().splitlines() if ln.startswith("{")]
    data = json.loads(lines[-1]) if lines else {}
    kb = usage.ru_maxrss
    return Child(data, wall, kb / 1024 if sys.platform != "darwin" else kb / 2**20, usage.ru_utime + usage.ru_stime)


def py(script: str, *args: object) -> list[str]:
    return [sys.executable, str(HERE / script), *map(str, args)]


# -- results --------------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the table: a figure, its unit, the target (if any) and whether it is met."""

    section: str
    label: str
    value: float | None
    unit: str
    fmt: str = "{:,.1f}"
    target: str = ""
    ok: bool | None = None
    note: str = ""

    def shown(self) -> str:
        return "—" if self.value is None else self.fmt.format(self.value)

    def status(self) -> str:
        return {True: "ok", False: "MISSED", None: ""}[self.ok]


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)

    def add(self, section: str, label: str, value: float | None, unit: str, *, fmt: str = "{:,.1f}",
            target: float | None = None, better: str = "", note: str = "") -> None:
        ok = None
        tgt = ""
        if target is not None and better:
            tgt = f"{'≤' if better == 'lower' else '≥'} {target:,g}"
            if value is not None:
                ok = value <= target if better == "lower" else value >= target
        self.rows.append(Row(section, label, value, unit, fmt, tgt, ok, note))
        print(f"  {label:<58} {self.rows[-1].shown():>12} {unit:<10} {tgt:<10} {self.rows[-1].status()}"
              f"{'  ' + note if note else ''}", flush=True)

    def error(self, section: str, label: str, exc: Exception) -> None:
        self.errors.append(f"{section} / {label}: {exc}")
        self.rows.append(Row(section, label, None, "", note=f"not measured: {str(exc).splitlines()[0][:120]}"))
        print(f"  {label:<58} {'—':>12}  not measured: {exc}", flush=True)


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)


# -- 0: end to end: whole processes of litmus-seq, OpenHTF, pytest, Robot Framework -------------


def bench_e2e(res: Results, tmp: Path, quick: bool, rounds: int, openhtf: bool) -> None:
    """Whole `litmus-seq run` processes against whole OpenHTF / pytest / robot processes."""
    import e2e

    big = [1_000, 10_000] if quick else [1_000, 10_000, 100_000]
    meas = [1_000, 10_000] if quick else [1_000, 10_000, 30_000]
    sizes = {"steps": big, "meas": meas, "vectors": [1_000, 10_000]}
    others = e2e.available(openhtf)
    plan: list[tuple[Any, str, int]] = [(e2e.LITMUS, k, n) for k, ns in sizes.items() for n in [1, *ns]]
    plan += [(t, k, n) for t in others for k in ("steps", "meas") for n in (1, 1_000)]
    print(f"end to end (whole processes, {rounds} interleaved rounds, median; "
          f"tools: litmus-seq, {', '.join(t.name for t in others)})", flush=True)
    try:
        s = e2e.measure(run_child, tmp, plan, rounds)
    except ChildFailed as exc:
        res.error("e2e", "end-to-end processes", exc)
        return
    res.raw["e2e"] = {f"{k[0]}|{k[1]}|{k[2]}": [(c.wall_s, c.maxrss_mb) for c in v] for k, v in s.items()}
    lit = "litmus-seq"
    for kind, label, target in (("steps", "per step", 50.0), ("meas", "per extra measurement", 5.0)):
        mine = e2e.per_item_us(s, lit, kind, 1_000)
        for n in sizes[kind]:
            res.add("e2e", f"litmus-seq run {label} (N={n:,})", e2e.per_item_us(s, lit, kind, n), "µs",
                    target=target, better="lower",
                    note=f"CPU time, rounds {e2e.spread_us(s, lit, kind, n)}; wall {e2e.per_item_us(s, lit, kind, n, 'wall_s'):,.0f} µs/item; "
                         f"whole process: {e2e.wall_s(s, lit, kind, n):.2f} s, peak RSS "
                         f"{e2e.rss_mb(s, lit, kind, n):,.0f} MB (N=1: {e2e.wall_s(s, lit, kind, 1):.2f} s)")
        for t in others:
            theirs = e2e.per_item_us(s, t.name, kind, 1_000)
            res.add("e2e", f"{t.name} {label} (N=1,000)", theirs, "µs",
                    note=f"CPU time, rounds {e2e.spread_us(s, t.name, kind, 1_000)}; wall {e2e.per_item_us(s, t.name, kind, 1_000, 'wall_s'):,.0f} µs/item; "
                         f"whole process: {e2e.wall_s(s, t.name, kind, 1_000):.2f} s, peak RSS "
                         f"{e2e.rss_mb(s, t.name, kind, 1_000):,.0f} MB (N=1: {e2e.wall_s(s, t.name, kind, 1):.2f} s)")
            goal = {"OpenHTF": 10.0, "Robot Framework": 2.0}.get(t.name) if kind == "steps" else None
            res.add("e2e", f"ratio {t.name} / litmus-seq {label} (N=1,000)", theirs / mine, "×",
                    target=goal, better="higher" if goal else "")
    print("scaling (per-item cost at the larger size over the cost at the smaller; above "
          f"{e2e.SUPERLINEAR} is super-linear)", flush=True)
    for kind, ns in sizes.items():
        for a, b in itertools.pairwise(ns):
            ca, cb = e2e.per_item_us(s, lit, kind, a), e2e.per_item_us(s, lit, kind, b)
            if ca <= 0 or cb <= 0:  # a marginal below the process-to-process noise: no ratio to judge
                res.add("scaling", f"{kind}: per item at {b:,} / at {a:,}", None, "×",
                        note=f"{ca:,.1f} → {cb:,.1f} µs per item: below the noise, run more rounds or larger N")
                continue
            ratio = cb / ca
            res.add("scaling", f"{kind}: per item at {b:,} / at {a:,}", ratio, "×", fmt="{:.2f}",
                    target=e2e.SUPERLINEAR, better="lower",
                    note=f"{ca:,.1f} → {cb:,.1f} µs per item; peak RSS {e2e.rss_mb(s, lit, kind, a):,.0f} → "
                         f"{e2e.rss_mb(s, lit, kind, b):,.0f} MB" + ("; SUPER-LINEAR" if ratio > e2e.SUPERLINEAR else ""))


# -- 1 & 2: marginal costs: litmus-seq, pyarrow floor, OpenHTF -----------------------------------


def _marginal(samples: list[Child], n: int) -> float:
    """Median over processes of (T(N) - T(1)) / (N - 1), in µs."""
    return median([(c.out["tn"] - c.out["t1"]) / (n - 1) * 1e6 for c in samples])


LITMUS_FLAGS: list[str] = []  # ``--gc-freeze`` is passed through to every litmus-seq child


def bench_marginal(res: Results, tmp: Path, sizes: Sequence[int], procs: int, htf_procs: int,
                   openhtf: bool) -> None:
    print("engine overhead (marginal cost between N and 1, median of fresh processes)", flush=True)
    for kind, label, n_expect, floor_shape, target in (
        ("steps", "per step", lambda n: 1 + 2 * n, lambda n: (n, 1), 30.0),
        ("meas", "per extra measurement", lambda n: 2 + n, lambda n: (1, n), 5.0),
    ):
        make = projects.steps if kind == "steps" else projects.meas
        seq1 = make(tmp / "projects" / f"{kind}_1", 1)
        for n in sizes:
            seqn = make(tmp / "projects" / f"{kind}_{n}", n)
            key = f"{kind}_{n}"
            try:
                lit = [run_child(py("litmus_child.py", "marginal", seq1, seqn, "--expect-1", n_expect(1),
                                    "--expect-n", n_expect(n), "--tmp", tmp / "out" / f"{key}_{i}", *LITMUS_FLAGS))
                       for i in range(procs)]
            except ChildFailed as exc:
                res.error("engine", f"litmus-seq {label} (N={n:,})", exc)
                continue
            us = _marginal(lit, n)
            res.raw[f"litmus_{key}"] = [c.out for c in lit]
            res.add("engine", f"litmus-seq {label} (N={n:,})", us, "µs", target=target, better="lower",
                    note=f"first run of a loaded plan (as `litmus-seq run`); run+stores of 1 item: "
                         f"{median([c.out['t1'] for c in lit]) * 1e3:.1f} ms")
            nxt = median([(c.out["tn_next"] - c.out["t1_next"]) / (n - 1) * 1e6 for c in lit])
            res.add("engine", f"litmus-seq {label}, next unit (N={n:,})", nxt, "µs",
                    note="second run of the same plan in a new session (a station testing unit after unit)")
            # the floor writes litmus-seq's exact schema: take it from the file just written
            template = next((tmp / "out" / f"{key}_0" / "n" / "runs").rglob("*.parquet"))
            steps, meas = floor_shape(n)
            try:
                flo = [run_child(py("floor_child.py", template, "--steps", steps, "--meas", meas,
                                    "--tmp", tmp / "out" / f"floor_{key}_{i}")) for i in range(procs)]
                f_us = _marginal(flo, n)
                res.raw[f"floor_{key}"] = [c.out for c in flo]
                res.add("floor", f"pyarrow floor {label} (N={n:,})", f_us, "µs", fmt="{:,.2f}")
                res.add("floor", f"ratio litmus-seq / floor {label} (N={n:,})", us / f_us, "×", fmt="{:,.1f}")
            except ChildFailed as exc:
                res.error("floor", f"pyarrow floor {label} (N={n:,})", exc)
            if not openhtf:
                continue
            try:
                htf = [run_child(py("openhtf_child.py", kind, "--n", n, "--tmp", tmp / "out" / f"htf_{key}_{i}"))
                       for i in range(htf_procs)]
                h_us = _marginal(htf, n)
                res.raw[f"openhtf_{key}"] = [c.out for c in htf]
                res.add("openhtf", f"OpenHTF {label} (N={n:,})", h_us, "µs")
                res.add("openhtf", f"ratio OpenHTF / litmus-seq {label} (N={n:,})", h_us / us, "×",
                        target=15.0 if kind == "steps" else None, better="higher" if kind == "steps" else "")
            except ChildFailed as exc:
                res.error("openhtf", f"OpenHTF {label} (N={n:,})", exc)


def bench_breakdown(res: Results, tmp: Path, n: int) -> None:
    """One N-item run per workload with the stores' hooks timed: where a step / a measurement goes."""
    print(f"where the time goes (runs of N={n:,} with the stores switched off one by one)", flush=True)
    for kind, label, expect in (("steps", "step", 1 + 2 * n), ("meas", "measurement", 2 + n)):
        seq = (projects.steps if kind == "steps" else projects.meas)(tmp / "projects" / f"{kind}_{n}", n)
        try:
            c = run_child(py("litmus_child.py", "breakdown", seq, "--expect-n", expect,
                             "--tmp", tmp / "out" / f"breakdown_{kind}", *LITMUS_FLAGS))
        except ChildFailed as exc:
            res.error("breakdown", f"per {label} breakdown", exc)
            continue
        res.raw[f"breakdown_{kind}_{n}"] = c.out
        parts = c.out["parts_s"]
        for part in ("engine", "event store", "materializer (events)", "materializer (parquet file)"):
            res.add("breakdown", f"per {label}: {part}", parts[part] / n * 1e6, "µs", fmt="{:,.1f}")
        res.add("breakdown", f"per {label}: of which full GC pauses", c.out["gc_full_s"] / n * 1e6, "µs",
                fmt="{:,.1f}", note="inside the parts above (they land wherever allocation triggers them)")


# -- 3: sustained throughput and peak RSS ----------------------------------------------------------


def bench_million(res: Results, tmp: Path, shape: tuple[int, int, int], procs: int) -> None:
    s, v, m = shape
    n = s * v * m
    print(f"sustained throughput: {s} steps × {v:,} sweep points × {m} measurements = {n:,}"
          f" (median of {procs} fresh processes)", flush=True)
    seq = projects.sweep(tmp / "projects" / "million", s, v, m)
    expect = 1 + s * v + n  # run row + one step row per (step, vector) + measurement rows
    try:
        kids = [run_child(py("litmus_child.py", "million", seq, "--expect-n", expect, "--tmp",
                             tmp / "out" / f"million_{i}", *LITMUS_FLAGS)) for i in range(procs)]
    except ChildFailed as exc:
        res.error("throughput", f"measurements/s sealed ({n:,})", exc)
        return
    res.raw["million"] = [c.out for c in kids]
    totals = sorted(c.out["total_s"] for c in kids)
    rss = sorted(c.maxrss_mb for c in kids)
    c = kids[0]
    res.add("throughput", f"measurements/s into sealed parquet ({n:,})", n / median(totals), "meas/s",
            fmt="{:,.0f}", target=100_000, better="higher",
            note=f"{median(totals):.1f} s open→sealed (range {totals[0]:.1f}–{totals[-1]:.1f} s); "
                 f"plan built in {c.out['plan_s']:.1f} s (untimed)")
    res.add("throughput", f"peak RSS of the child ({n:,} measurements)", median(rss), "MB", fmt="{:,.0f}",
            target=300 if n >= 1_000_000 else None, better="lower" if n >= 1_000_000 else "",
            note=f"range {rss[0]:.0f}–{rss[-1]:.0f} MB; after plan: {c.out['rss_after_plan_mb']:.0f} MB; "
                 f"file {c.out['parquet_bytes'] / 1e6:.1f} MB")


# -- 4: cold start ---------------------------------------------------------------------------------


def _cli() -> list[str]:
    exe = shutil.which("litmus-seq")
    return [exe] if exe else [sys.executable, "-m", "litmus_seq.cli.main"]


def _cached_env(tmp: Path) -> dict[str, str]:
    """The environment of an installed litmus-seq: Python may cache bytecode.

    ``pip install`` byte-compiles a package and a checkout caches on its first import, unless
    ``PYTHONDONTWRITEBYTECODE`` is set (as on the machines these figures come from): then every
    start recompiles litmus-seq's own modules (~40 ms). The cache goes to a temp folder
    (``PYTHONPYCACHEPREFIX``), never into the repository; the untimed warm-up run fills it.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    return env


def _wall(argv: Sequence[str], repeats: int, cwd: Path, env: dict[str, str] | None = None) -> float:
    """Median wall time of ``argv`` (fresh interpreter each time; one untimed run warms the page cache)."""
    times = []
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        p = subprocess.run(list(argv), cwd=cwd, capture_output=True, env=env)
        dt_ = time.perf_counter() - t0
        if p.returncode != 0:
            raise ChildFailed(f"{' '.join(argv)} exited {p.returncode}: {p.stderr.decode()[-400:]}")
        if i:
            times.append(dt_)
    return median(times)


def bench_cold(res: Results, tmp: Path, repeats: int) -> None:
    print(f"cold start (fresh interpreter, warm OS page cache, median of {repeats})", flush=True)
    root = tmp / "projects" / "cold"
    seq = projects.steps(root, 10)
    station = root / "stations" / "mock.yaml"
    cli = _cli()
    env = _cached_env(tmp)
    try:
        base = _wall([sys.executable, "-c", "pass"], repeats, root, env)
        res.add("cold", "python -c pass (interpreter floor)", base, "s", fmt="{:.3f}")
        res.add("cold", "litmus-seq --help", _wall([*cli, "--help"], repeats, root, env), "s", fmt="{:.3f}")
        res.add("cold", "litmus-seq validate (10-step sequence + station)",
                _wall([*cli, "validate", str(seq), str(station)], repeats, root, env), "s", fmt="{:.3f}",
                target=0.3, better="lower", note="bytecode cached, as after pip install")
        if os.environ.get("PYTHONDONTWRITEBYTECODE"):
            res.add("cold", "litmus-seq validate, no bytecode cache",
                    _wall([*cli, "validate", str(seq), str(station)], repeats, root), "s", fmt="{:.3f}",
                    note="PYTHONDONTWRITEBYTECODE is set here: every start recompiles litmus-seq")
    except ChildFailed as exc:
        res.error("cold", "litmus-seq --help / validate", exc)
    import pyarrow.parquet as pq

    firsts, totals = [], []
    try:
        for i in range(repeats + 1):
            data = tmp / "out" / f"cold_run_{i}"
            t_spawn = time.time()
            t0 = time.perf_counter()
            p = subprocess.run([*cli, "run", str(seq), "--station", str(station), "--data-dir", str(data),
                                "--dut", "SN1", "--yes"], cwd=root, capture_output=True, env=env)
            total = time.perf_counter() - t0
            if p.returncode != 0:
                raise ChildFailed(f"litmus-seq run exited {p.returncode}: {p.stderr.decode()[-400:]}")
            f = next(data.rglob("runs/**/*.parquet"))
            t = pq.read_table(f, columns=["record_type", "step_started_at"])
            started = [x for kind, x in zip(t["record_type"].to_pylist(), t["step_started_at"].to_pylist())
                       if kind == "step" and x is not None]
            if i:
                firsts.append(min(started).timestamp() - t_spawn)
                totals.append(total)
        res.add("cold", "litmus-seq run: spawn → first step started", median(firsts), "s", fmt="{:.3f}",
                note=f"whole 10-step run incl. exit: {median(totals):.3f} s")
    except ChildFailed as exc:
        res.error("cold", "litmus-seq run: time to first step", exc)
    except StopIteration:
        res.error("cold", "litmus-seq run: time to first step", ChildFailed("the run left no parquet file"))


# -- 5: DuckDB over thousands of run files ---------------------------------------------------------


def bench_duckdb(res: Results, tmp: Path, sizes: Sequence[int]) -> None:
    print("DuckDB GROUP BY (per-step outcome counts) over run files written by run_plan", flush=True)
    made = 0
    globs: list[str] = []
    for n in sorted(sizes):
        todo = n - made
        # the first 1,000 runs alone time generation; beyond that two children share the 2 cores
        parts = [todo] if made == 0 else [todo - todo // 2, todo // 2]
        children = []
        for k, part in enumerate(parts):
            seed = len(globs) + 1
            seq = projects.tiny(tmp / "projects" / f"tiny_{seed}", part, seed=seed)
            data = tmp / "out" / f"runs_{seed}"
            globs.append(str(data / "runs" / "**" / "*.parquet"))
            children.append((py("litmus_child.py", "tiny", seq, "--runs", part, "--tmp", data), part))
        try:
            if len(children) == 1:
                c = run_child(children[0][0], timeout=3600)
                res.add("duckdb", f"run_plan of a 5-step run (making {n:,} files)", c.out["gen_s"] / n * 1e3,
                        "ms/run", fmt="{:.1f}", note="fixed per-run cost incl. sealing its parquet file")
            else:
                procs = [subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                         for argv, _part in children]
                for proc in procs:
                    _, err = proc.communicate(timeout=3600)
                    if proc.returncode:
                        raise ChildFailed(err.decode()[-400:])
        except (ChildFailed, subprocess.TimeoutExpired) as exc:
            res.error("duckdb", f"make {n:,} run files", exc)
            return
        made = n
        try:
            q = run_child(py("duckdb_child.py", *globs, "--expect-rows", n * projects.TINY_STEPS))
        except ChildFailed as exc:
            res.error("duckdb", f"GROUP BY over {n:,} files", exc)
            continue
        res.raw[f"duckdb_{n}"] = q.out
        res.add("duckdb", f"GROUP BY over {n:,} run files (first / median)", q.out["median_s"], "s", fmt="{:.3f}",
                note=f"first {q.out['first_s']:.3f} s; {q.out['median_s'] / n * 1e6:.0f} µs/file; "
                     f"{q.out['groups']} groups, outcomes {'/'.join(q.out['outcomes'])}")


# -- profile ---------------------------------------------------------------------------------------


def bench_profile(tmp: Path, n: int, shape: tuple[int, int, int]) -> str:
    """cProfile (tottime) of the per-step workload and of the throughput workload, top 15 each."""
    out = []
    for name, seq, expect in (
        (f"{n:,} steps", projects.steps(tmp / "projects" / f"prof_steps_{n}", n), 1 + 2 * n),
        ("sweep " + "×".join(map(str, shape)), projects.sweep(tmp / "projects" / "prof_sweep", *shape),
         1 + shape[0] * shape[1] + shape[0] * shape[1] * shape[2]),
    ):
        stats = tmp / "out" / f"prof_{len(out)}.pstats"
        code = (
            "import cProfile, sys; sys.path.insert(0, %r); import litmus_child as L; import argparse\n"
            "a = argparse.Namespace(seq=[__import__('pathlib').Path(%r)], expect_n=%d, tmp=__import__('pathlib').Path(%r))\n"
            "ctx, plan, st = L._load(a.seq[0]); L.timed_session(ctx, plan, st, a.tmp / 'w')\n"
            "pr = cProfile.Profile(); pr.enable(); _, _, r = L.timed_session(ctx, plan, st, a.tmp / 'p'); pr.disable()\n"
            "L._check(r, a.expect_n); pr.dump_stats(%r)\n"
        ) % (str(HERE), str(seq), expect, str(tmp / "out" / f"prof_{len(out)}"), str(stats))
        p = subprocess.run([sys.executable, "-c", code], capture_output=True)
        if p.returncode:
            out.append(f"### {name}\nprofile failed: {p.stderr.decode()[-400:]}")
            continue
        import io
        import pstats

        buf = io.StringIO()
        pstats.Stats(str(stats), stream=buf).strip_dirs().sort_stats("tottime").print_stats(15)
        body = buf.getvalue()
        body = body[body.find("ncalls"):]
        out.append(f"### {name} (cProfile, sorted by own time)\n```\n{body.rstrip()}\n```")
    return "\n\n".join(out)


# -- machine and report ----------------------------------------------------------------------------


def machine() -> dict[str, str]:
    from importlib import metadata

    info: dict[str, str] = {"nproc": str(os.cpu_count())}
    try:
        cpu = [ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
               if ln.startswith("model name")]
        info["cpu"] = cpu[0] if cpu else platform.processor() or "?"
    except OSError:
        info["cpu"] = platform.processor() or "?"
    try:
        kb = next(int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines()
                  if ln.startswith("MemTotal"))
        info["ram"] = f"{kb / 2**20:.1f} GiB"
    except (OSError, StopIteration):
        info["ram"] = "?"
    info["os"] = platform.platform()
    info["python"] = platform.python_version() + " " + platform.python_implementation()
    versions = []
    for dist in ("litmus-seq", "pyarrow", "duckdb", "pydantic", "pluggy", "PyYAML", "click", "PyVISA", "openhtf"):
        try:
            versions.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{dist} (not installed)")
    info["packages"] = ", ".join(versions)
    try:
        info["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                                        text=True).stdout.strip() or "?"
    except OSError:
        info["commit"] = "?"
    return info


def table(rows: list[Row]) -> list[str]:
    lines = ["| section | figure | value | unit | target | status | note |", "|---|---|---:|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.section} | {r.label} | {r.shown()} | {r.unit} | {r.target} | {r.status()} | {r.note} |")
    return lines


def report(res: Results, args: argparse.Namespace, info: dict[str, str], load: tuple[str, str], took: float,
           profile: str, path: Path) -> None:
    kept = ""
    if path.exists():
        old = path.read_text()
        if NOTES_MARKER in old:
            kept = old.split(NOTES_MARKER, 1)[1].strip("\n")
    mode = ("quick" if args.quick else "full") + (", what-if gc.freeze() after planning" if args.gc_freeze else "")
    lines = [
        "# litmus-seq benchmark results",
        "",
        f"Generated by `{args.command}` ({mode} mode) on "
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC in {took / 60:.1f} min; commit {info['commit']}.",
        "",
        "## Machine",
        "",
        f"- CPU: {info['cpu']} — `nproc` {info['nproc']}",
        f"- RAM: {info['ram']}",
        f"- OS: {info['os']}",
        f"- Python: {info['python']}",
        f"- Packages: {info['packages']}",
        f"- Load average (1/5/15 min) before: {load[0]}; after: {load[1]} "
        "(other processes on a 2-core machine inflate wall-clock figures; compare ratios first)",
        "",
        "## Results",
        "",
        *table(res.rows),
        "",
        "## Method",
        "",
        "- **End to end** (`e2e`, `scaling`): every sample is a whole fresh process: `python -m "
        "litmus_seq.cli.main run SEQ --station mock.yaml --dut SN1 --yes` with a fresh data dir (parse, plan, "
        "run, event store, channels, parquet file; stdout/stderr to files, so the console is off a TTY); "
        "OpenHTF = a script that imports it, builds one phase per step with `in_range` and executes with the "
        "JSON output callback; pytest = `python -m pytest -q --junitxml` over one test per step (a reading "
        "asserted against its limits; for measurements one test with N asserts); Robot Framework = "
        "`robot` over one test per step calling a keyword library that reads and checks its own limits, "
        "outputs on (output.xml, log.html, report.html). Per item = median over rounds of "
        "`(T(N) − T(1)) / (N − 1)` with T the process's CPU time (user + system, all threads, `os.wait4`); "
        "rounds interleave every tool and size; wall time per item is in the note. Scaling = per-item cost "
        "at the larger size over the smaller (steps, sweep vectors, measurements in one step); above 1.5 "
        "is flagged SUPER-LINEAR. Peak RSS = median `ru_maxrss`.",
        "- **Per step / per extra measurement** (engine breakdown): `(T(N) − T(1)) / (N − 1)`, T = wall time of "
        "`Session(...)` + `open` + `run` + `close` with the event store, channel store and run "
        "materializer live (everything sealed on disk), plan built off the clock, after a warm-up run in "
        "the same process; T(1) is the median of 5 one-item runs (fresh plans) in that process, T(N) one "
        "run (the process's first big one); the same for the floor and OpenHTF; "
        f"median over {args.procs} fresh processes ({args.htf_procs} for OpenHTF). "
        "Per step: N steps × 1 vector × 1 mocked measurement (limit 3.0–3.6). Per measurement: 1 step with "
        "N distinct measurements in `do:`. *First run* is each plan's first run (what `litmus-seq run`, one "
        "DUT per process, pays); *next unit* runs the same plans again in new sessions (a station testing "
        "unit after unit, where what a plan builds once is not redone).",
        "- **Breakdown**: the same N-item plan run (second run of the plan, best of 3) with both stores' "
        "hooks switched off, then the event store on, then everything; each part is a difference of "
        "whole runs (work the event store's writer thread does beside the engine counts only as far as it "
        "delays the run); the materializer's file write (engine thread, at `run.ended`) is timed directly.",
        "- **pyarrow floor**: the same loop hand-written (call the instrument, timestamp, judge, collect "
        "per-column lists) writing the same rows with litmus-seq's exact schema through a temp file + "
        "rename; constant columns broadcast with `pa.repeat`. No event store.",
        "- **OpenHTF**: 1 phase per step with one `Measurement(...).in_range(3.0, 3.6)`, "
        "the JSON output callback, `test.execute(test_start=lambda: 'SN1')`; logging disabled.",
        "- **Throughput**: 10 steps × 1,000 sweep points × 100 measurements (1,000,000 measurements, "
        "10,000 vectors) in one run; rate = measurements / median (open → sealed) over 3 fresh "
        "processes (1 in quick mode). Peak RSS is `ru_maxrss` of each child from `os.wait4` (includes "
        "the interpreter, imports and the plan), median.",
        "- **Cold start**: fresh interpreter each time, median; OS page cache warm; bytecode cache on "
        "(`PYTHONPYCACHEPREFIX` in a temp folder, as an installed package has it). Time to first step = "
        "the first step's `step_started_at` in the run file minus the wall clock just before spawning.",
        "- **DuckDB**: runs of 5 steps (seeded readings, ~1 in 10 fail) made by `run_plan`; query "
        "`SELECT step_name, step_outcome, count(*) ... WHERE record_type = 'step' GROUP BY ...` over "
        "`read_parquet([...globs], union_by_name = true)` in a fresh process; counts checked.",
    ]
    if res.errors:
        lines += ["", "## Not measured", "", *[f"- {e}" for e in res.errors]]
    if profile:
        lines += ["", "## Profile", "", profile]
    lines += ["", NOTES_MARKER, ""]
    if kept:
        lines += [kept, ""]
    path.write_text("\n".join(lines))


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="1-2 minute version (smaller N, fewer processes)")
    p.add_argument("--profile", action="store_true", help="append cProfile hot spots of the engine workloads")
    p.add_argument("--no-openhtf", action="store_true", help="skip the OpenHTF comparison")
    p.add_argument("--only", action="append", choices=("e2e", "engine", "throughput", "cold", "duckdb"),
                   help="run only these sections (repeatable)")
    p.add_argument("--procs", type=int, help="fresh processes per litmus-seq/floor figure (default 5, quick 3)")
    p.add_argument("--gc-freeze", action="store_true",
                   help="what-if: litmus-seq children call gc.freeze() after planning (a proposed engine fix)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (generated projects and data)")
    p.add_argument("--out", type=Path, default=HERE / "RESULTS.md", help="where to write the results")
    args = p.parse_args(argv)
    args.command = " ".join(["python bench/run.py", *(sys.argv[1:] if argv is None else argv)])
    args.procs = args.procs or (3 if args.quick else 5)
    args.htf_procs = 2 if args.quick else 5  # as many as litmus-seq: the ratio divides two medians
    sizes = [1_000] if args.quick else [1_000, 10_000]
    shape = (10, 100, 100) if args.quick else (10, 1_000, 100)
    files = [1_000] if args.quick else [1_000, 10_000]
    if args.gc_freeze:
        LITMUS_FLAGS.append("--gc-freeze")
    only = set(args.only or ("e2e", "engine", "throughput", "cold", "duckdb"))
    openhtf = not args.no_openhtf
    if openhtf:
        try:
            import openhtf as _  # noqa: F401
        except Exception as exc:  # an optional extra: its absence blocks one column only
            print(f"OpenHTF not importable ({exc}); install with `pip install -e '.[bench]'`", flush=True)
            openhtf = False

    load0 = loadavg()
    t0 = time.perf_counter()
    res = Results()
    tmp = Path(tempfile.mkdtemp(prefix="litmus-bench-"))
    profile = ""
    try:
        print(f"{'figure':<60} {'value':>12} {'unit':<10} {'target':<10} status", flush=True)
        if "e2e" in only:
            bench_e2e(res, tmp, args.quick, args.procs, openhtf)
        if "engine" in only:
            bench_marginal(res, tmp, sizes, args.procs, args.htf_procs, openhtf)
            bench_breakdown(res, tmp, sizes[-1])
        if "throughput" in only:
            bench_million(res, tmp, shape, 1 if args.quick else 3)
        if "cold" in only:
            bench_cold(res, tmp, 3 if args.quick else 5)
        if "duckdb" in only:
            bench_duckdb(res, tmp, files)
        if args.profile:
            print("profiling ...", flush=True)
            profile = bench_profile(tmp, 10_000 if not args.quick else 1_000, (10, 100, 100))
            print(profile)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    took = time.perf_counter() - t0
    report(res, args, machine(), (load0, loadavg()), took, profile, args.out)
    missed = [r for r in res.rows if r.ok is False]
    print(f"\n{len(res.rows)} figures, {len(missed)} target(s) missed, {len(res.errors)} not measured; "
          f"{took / 60:.1f} min; written {args.out}")
    json_path = args.out.with_suffix(".json")
    json_path.write_text(json.dumps({"rows": [r.__dict__ for r in res.rows], "raw": res.raw}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
