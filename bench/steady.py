"""The steady-state hourly no-change run at size N, without paying for an initial sync at 50 ms latency.

1. A fresh link-store database; both sandboxes with their real limits; PowerOffice Go seeded as by ``bench/run.py``
   (N customers, half persons, and N sales orders), Invoiced empty.
2. Initial sync and one no-change run with no added latency (the sandbox creates ~1,400 records/s): they only
   set the state up and are not measured.
3. The measured runs: ``--runs`` no-change runs at the bench's usual 50 ms latency, each in a fresh process
   (``bench/sync_phase.py``). The first of them is the 2nd no-change run of ``bench/run.py``.

Per measured run it prints wall time, CPU time of the sync process and of the sandboxes, link-store time by method,
per-task time, API calls and writes, and the load average. ``--checkout PATH`` runs the sync phase of another
checkout (its ``bench/sync_phase.py``, ``plugins`` and ``dags``) for A/B comparisons on the same machine.

Usage: ``python bench/steady.py 10000 [--runs 2] [--checkout /work/main] [--json OUT.json]``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT / "plugins", ROOT):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from bench import run as bench  # noqa: E402
from sandboxes.process import SandboxProcess  # noqa: E402

PROFILE_DIR: Path | None = None  # --py-spy: where the last measured run's profile goes
PROFILED = ""
QUIET_SECONDS = 35  # the extract's LISTING_MARGIN and the largest overlap, rounded up


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a running process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def phase(label: str, env: dict, workdir: Path, process: SandboxProcess, checkout: Path) -> dict:
    """One sync cycle in a fresh process, with the CPU time it and the sandboxes used and the calls it made."""
    bench.clear_counters(process)
    assert process.proc is not None
    cpu, sandbox_cpu, load = _children_cpu(), _proc_cpu(process.proc.pid), os.getloadavg()
    result = _run_sync(checkout, label, env, workdir)
    result["cpu_seconds"] = round(_children_cpu() - cpu, 2)
    result["sandbox_cpu_seconds"] = round(_proc_cpu(process.proc.pid) - sandbox_cpu, 2)
    result["loadavg_start"], result["loadavg_end"] = load, os.getloadavg()
    result["api"] = bench.counters(process)
    return result


def _run_sync(checkout: Path, label: str, env: dict, workdir: Path) -> dict:
    """``bench/sync_phase.py`` of ``checkout`` (as ``bench.run_phase`` runs this checkout's)."""
    import subprocess

    out = workdir / f"{label}.json"
    started = time.perf_counter()
    command = [sys.executable, str(checkout / "bench" / "sync_phase.py"), str(out), label]
    if PROFILE_DIR is not None and label == PROFILED:
        # py-spy samples the sync process (collapsed stacks: one line per stack with its sample count).
        py_spy = Path(sys.executable).with_name("py-spy")
        command = [str(py_spy), "record", "--rate", "250", "--format", "raw", "--nonblocking",
                   "-o", str(PROFILE_DIR / f"{label}.txt"), "--", *command]
    proc = subprocess.run(command,
                          env={**os.environ, **env}, cwd=checkout, timeout=3600, capture_output=True, text=True)
    result = json.loads(out.read_text()) if out.exists() else {"failure": "no result file"}
    result["process_seconds"] = round(time.perf_counter() - started, 2)
    if proc.returncode != 0 or result.get("failure"):
        result.setdefault("failure", f"exit {proc.returncode}")
        result["stderr_tail"] = proc.stderr[-3000:]
    return result


def describe(label: str, r: dict) -> str:
    """A short text report of one run."""
    if r.get("failure"):
        return f"{label}: FAILED {r['failure']}\n{r.get('stderr_tail', '')}"
    kinds = bench.calls_by_kind(r["api"])
    load = ", ".join(f"{x:.2f}" for x in r["loadavg_start"])
    lines = [f"{label}: wall {r['wall_seconds']:.1f} s, sync process CPU {r['cpu_seconds']:.1f} s (imports "
             f"{r['import_seconds']} s), sandboxes CPU {r['sandbox_cpu_seconds']:.1f} s, link store "
             f"{r['store_seconds']:.1f} s, {kinds['total']} calls ({bench._kinds_text(kinds)}), "
             f"{kinds['writes']} writes, peak RSS {r['peak_rss_mib']:.0f} MiB; load average {load}",
             "  link store by method (s, calls): " + ", ".join(
                 f"{k} {v['seconds']:.1f} ({v['calls']})" for k, v in list(r["store_by_method"].items())[:8])]
    for t in r["tasks"]:
        if t["seconds"] >= 0.05:
            res = t["result"] if isinstance(t["result"], dict) else {}
            api = res.get("api") or {}
            note = f", {api['calls_total']} calls" if api.get("calls_total") else ""
            if t["task"] == "map":
                note += ", " + "; ".join(f"{s}: {v}" for s, v in res.items() if isinstance(v, dict))
            lines.append(f"  {t['flow']:22} {t['task']:24} {t['seconds']:6.1f} s (stage link store "
                         f"{t['store_seconds']:.1f} s{note})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n", type=int)
    parser.add_argument("--runs", type=int, default=1, help="measured no-change runs at 50 ms latency (default 1)")
    parser.add_argument("--checkout", type=Path, default=ROOT,
                        help="the checkout whose engine runs the sync (default: this one)")
    parser.add_argument("--json", type=Path, help="write every phase's result here")
    parser.add_argument("--py-spy", type=Path, metavar="DIR",
                        help="profile the last measured run with py-spy (pip install py-spy) into DIR/<run>.txt")
    args = parser.parse_args(argv)
    global PROFILE_DIR, PROFILED
    PROFILED = f"steady{args.runs}"
    if args.py_spy:
        args.py_spy.mkdir(parents=True, exist_ok=True)
        PROFILE_DIR = args.py_spy.resolve()
    import psycopg

    from tools.postgres import ensure_postgres, with_database

    checkout = args.checkout.resolve()
    server_dsn, where = ensure_postgres(Path(tempfile.gettempdir()) / "pogo-bench-postgres")
    bench.log(f"PostgreSQL: {where}; engine of {checkout}")
    workdir = Path(tempfile.mkdtemp(prefix=f"pogo-steady-{args.n}-"))
    dbname = f"pogo_steady_{args.n}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    process = SandboxProcess(log_path=workdir / "sandbox.log").start()
    out: dict = {"n": args.n, "checkout": str(checkout), "loadavg": os.getloadavg(), "runs": []}
    failed = False
    try:
        out["seeded"] = bench.prepare(process, args.n)
        env = {**bench.airflow_env(workdir / "airflow"),
               **bench.connections_env(process, with_database(server_dsn, dbname))}
        env["PYTHONPATH"] = os.pathsep.join([str(checkout / "plugins"), str(checkout)])
        env["AIRFLOW__CORE__DAGS_FOLDER"] = str(checkout / "dags")
        env["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(checkout / "plugins")
        for label in ("initial", "nochange"):
            if label == "nochange":
                # An hourly run starts long after the last write; a cursor is its listing's start minus the
                # listing margin (30 s), so a run started sooner would read the initial sync's last writes again.
                time.sleep(QUIET_SECONDS)
            bench.log(f"N={args.n}: {label} (no added latency, not measured)")
            out[label] = phase(label, env, workdir, process, checkout)
            if out[label].get("failure"):
                print(describe(label, out[label]))
                return 1
            bench.log(f"N={args.n}: {label} {out[label]['wall_seconds']:.1f} s")
        bench.add_latency(process)
        for i in range(args.runs):
            label = f"steady{i + 1}"
            bench.log(f"N={args.n}: {label} (50 ms latency)")
            r = phase(label, env, workdir, process, checkout)
            out["runs"].append(r)
            print(describe(f"N={args.n} {label}", r), flush=True)
            failed |= bool(r.get("failure"))
    finally:
        process.stop()
        with psycopg.connect(server_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        if args.json:
            args.json.write_text(json.dumps(out, indent=1, default=str))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
