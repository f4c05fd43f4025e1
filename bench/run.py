"""Benchmark of the initial sync and the next no-change run against the API floor (issue 5 §5).

For each N: PowerOffice Go seeded with N customers (half companies, half persons, no contact persons) and N sales
orders, Invoiced empty, both sandboxes with 50 ms added latency and their real limits (10 requests/s; 20 in flight).
The Invoiced connection has ``max_in_flight: 20`` (the server's limit: the bench owns its key), the PowerOffice Go
one ``requests_per_second: 10``.

1. Calibration (no added latency, empty sandboxes): per-call time of Invoiced creates and list pages one at a
   time, and the sandbox's capacity at 19 in flight; per-page time of 5,000-record PowerOffice Go pages.
2. Initial sync: ``bench/sync_phase.py`` in a process of its own runs the three flows through the operators'
   ``execute`` (see there). Calls by kind come from the sandboxes' counters; peak RSS is that process's.
3. No-change run right after, in another process: must write nothing and list only what its cursors need.
4. Naive client (``bench/naive.py``) on freshly reset and re-seeded sandboxes: one call at a time, plain requests;
   above ``--naive-sample`` creates it is measured on a sample and extrapolated.

Writes ``bench/results/<date>-<N>.md`` (+ ``.json``) per N and regenerates ``docs/benchmark.md`` from the newest
result of each N. Usage: ``python bench/run.py 1000 10000 100000`` (``make bench``).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT / "plugins", ROOT):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from bench import naive  # noqa: E402
from sandboxes.process import SandboxProcess  # noqa: E402

RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "benchmark.md"
LATENCY_MS = 50
POGO_RPS = 10
INVOICED_SERVER_IN_FLIGHT = 20
# The server's limit: the bench's key is used by nothing else, and shared limits coordinate every task using it.
INVOICED_CLIENT_IN_FLIGHT = int(os.environ.get("BENCH_INVOICED_IN_FLIGHT", "20"))  # another value only for A/B runs
POGO_PAGE = 5000
POGO_MAX_PAGE = 20000
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- environment -------------------------------------------------------------------------------------------------

def connections_env(process: SandboxProcess, dsn: str) -> dict[str, str]:
    """AIRFLOW_CONN_* variables for the sync process, as the DAG tests set them."""
    from tools.postgres import airflow_connection_json

    s = process.settings
    pogo = {"conn_type": "http", "host": f"{process.pogo_url}/v2", "login": s.pogo_application_key,
            "password": s.pogo_client_key,
            "extra": {"subscription_key": s.pogo_subscription_key, "requests_per_second": POGO_RPS}}
    invoiced = {"conn_type": "http", "host": process.invoiced_url, "login": s.invoiced_api_key,
                "extra": {"max_in_flight": INVOICED_CLIENT_IN_FLIGHT}}
    return {"AIRFLOW_CONN_POWEROFFICE_GO_DEFAULT": json.dumps(pogo),
            "AIRFLOW_CONN_INVOICED_DEFAULT": json.dumps(invoiced),
            "AIRFLOW_CONN_SYNC_STATE_DEFAULT": airflow_connection_json(dsn)}


def airflow_env(home: Path) -> dict[str, str]:
    return {"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"), "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT)])}


def run_phase(label: str, env: dict[str, str], workdir: Path, timeout: float) -> dict:
    out = workdir / f"{label}.json"
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "sync_phase.py"), str(out), label],
                          env={**os.environ, **env}, cwd=ROOT, timeout=timeout, capture_output=True, text=True)
    result = json.loads(out.read_text()) if out.exists() else {"failure": "no result file"}
    result["process_seconds"] = round(time.perf_counter() - started, 2)
    if proc.returncode != 0 or result.get("failure"):
        result.setdefault("failure", f"exit {proc.returncode}")
        result["stderr_tail"] = proc.stderr[-3000:]
        log(f"{label} FAILED: {result['failure']}\n{proc.stderr[-3000:]}")
    return result


def counters(process: SandboxProcess) -> dict:
    """Calls by system, method and path (ids folded), with statuses, since the last clear."""
    out = {}
    for system, admin in (("poweroffice_go", process.pogo), ("invoiced", process.invoiced)):
        c = admin.counters()
        # The token request is a POST but writes no data: it is not counted as a write.
        token = sum(n for route, n in c["routes"].items() if route.upper().endswith("/OAUTH/TOKEN"))
        out[system] = {"total": c["total"], "writes": c["writes"] - token, "routes": c["routes"],
                       "statuses": c["statuses"]}
    return out


def clear_counters(process: SandboxProcess) -> None:
    process.pogo.clear_counters()
    process.invoiced.clear_counters()


def prepare(process: SandboxProcess, n: int) -> dict:
    """Reset, real limits, PowerOffice Go seeded, Invoiced empty, 50 ms latency on both."""
    process.reset()
    process.pogo.configure(rate_limit_per_second=POGO_RPS)
    process.invoiced.configure(max_in_flight=INVOICED_SERVER_IN_FLIGHT)
    spec = {"companies": n // 2, "persons": n - n // 2, "contact_persons_per_company": 0, "sales_orders": n}
    started = time.perf_counter()
    seeded = process.pogo.seed(**spec)
    seeded["seconds"] = round(time.perf_counter() - started, 1)
    return seeded


def add_latency(process: SandboxProcess) -> None:
    process.pogo.faults(latency_ms=LATENCY_MS)
    process.invoiced.faults(latency_ms=LATENCY_MS)


def link_counts(dsn: str) -> dict:
    import psycopg

    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT flow, count(*) FROM pogo_invoiced_sync.links GROUP BY flow ORDER BY flow"
        ).fetchall()
    return dict(rows)


# -- floor -------------------------------------------------------------------------------------------------------

def floor(n: int, calib: dict) -> dict:
    """The fewest calls the initial sync needs, and the least time the two APIs' limits allow for them.

    PowerOffice Go: 1 token + ceil(N/page) customer pages + ceil(N/page) order pages, at 10 requests/s.
    Invoiced: 1 customer list + 1 invoice list (both empty) + N customer creates + N invoice creates, with at most
    20 in flight, each taking the added latency plus the sandbox's measured per-call time:
        T_invoiced = sum over calls (L + S_kind) / 20
    floor = T_pogo + T_invoiced (the creates need the listed records; at N >= 10,000 T_pogo is < 1 % anyway).
    """
    lat = LATENCY_MS / 1000
    s_cust = calib["invoiced_post_customers_ms"]["mean"] / 1000
    s_inv = calib["invoiced_post_invoices_ms"]["mean"] / 1000
    s_list = calib["invoiced_get_page_100_ms"]["mean"] / 1000
    pogo_calls = 1 + 2 * math.ceil(n / POGO_PAGE)
    pogo_calls_max_page = 1 + 2 * math.ceil(n / POGO_MAX_PAGE)
    inv_busy = n * (lat + s_cust) + n * (lat + s_inv) + 2 * (lat + s_list)
    t_pogo = pogo_calls / POGO_RPS
    t_inv = inv_busy / INVOICED_SERVER_IN_FLIGHT
    return {"pogo_calls": pogo_calls, "pogo_calls_at_20000": pogo_calls_max_page, "invoiced_calls": 2 + 2 * n,
            "t_pogo": round(t_pogo, 2), "t_invoiced": round(t_inv, 2), "seconds": round(t_pogo + t_inv, 2),
            "client_in_flight": INVOICED_CLIENT_IN_FLIGHT,
            "seconds_at_19_in_flight": round(t_pogo + inv_busy / 19, 2),
            "sandbox_capacity_seconds": round(2 * n / calib["invoiced_capacity_creates_per_s"], 2)}


# -- one size ----------------------------------------------------------------------------------------------------

def run_size(n: int, server_dsn: str, naive_sample: int) -> dict:
    import psycopg

    from tools.postgres import with_database

    workdir = Path(tempfile.mkdtemp(prefix=f"pogo-bench-{n}-"))
    dbname = f"pogo_bench_{n}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    dsn = with_database(server_dsn, dbname)
    process = SandboxProcess(log_path=workdir / "sandbox.log").start()
    result: dict = {"n": n, "date": dt.datetime.now().astimezone().date().isoformat(), "machine": machine(server_dsn)}
    try:
        log(f"N={n}: calibrating the sandboxes (no added latency)")
        process.reset()
        calib = naive.service_time(process)
        seeded = prepare(process, n)
        calib.update(naive.pogo_page_time(process))
        result["calibration"] = calib
        result["seeded"] = seeded
        result["floor"] = floor(n, calib)
        log(f"N={n}: seeded {seeded}; floor {result['floor']}")

        add_latency(process)
        clear_counters(process)
        env = {**airflow_env(workdir / "airflow"), **connections_env(process, dsn)}
        timeout = 3600 + n * 0.05
        log(f"N={n}: initial sync")
        result["initial"] = run_phase("initial", env, workdir, timeout)
        result["initial"]["api"] = counters(process)
        result["initial"]["links"] = link_counts(dsn)
        log(f"N={n}: initial sync {result['initial'].get('wall_seconds', '?')} s")

        clear_counters(process)
        log(f"N={n}: no-change run")
        result["nochange"] = run_phase("nochange", env, workdir, timeout)
        result["nochange"]["api"] = counters(process)
        log(f"N={n}: no-change run {result['nochange'].get('wall_seconds')} s")

        clear_counters(process)
        log(f"N={n}: second no-change run (steady state)")
        result["steady"] = run_phase("steady", env, workdir, timeout)
        result["steady"]["api"] = counters(process)
        log(f"N={n}: second no-change run {result['steady'].get('wall_seconds')} s")

        log(f"N={n}: naive sequential client")
        prepare(process, n)
        add_latency(process)
        clear_counters(process)
        sample = None if 2 * n <= naive_sample else naive_sample
        result["naive"] = naive.naive_sync(process, n, sample)
        result["naive"]["api"] = counters(process)
        log(f"N={n}: naive {result['naive']['wall_seconds']} s")
        result["loadavg_end"] = os.getloadavg()
    finally:
        process.stop()
        with psycopg.connect(server_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
    return result


# -- machine -----------------------------------------------------------------------------------------------------

def machine(server_dsn: str) -> dict:
    import psycopg

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    with psycopg.connect(server_dsn) as conn:
        pg = conn.execute("SHOW server_version").fetchone()[0]
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                         text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "plugins"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    return {"nproc": os.cpu_count(), "cpu": cpu,
            "free_h": subprocess.run(["free", "-h"], capture_output=True, text=True).stdout.strip(),
            "python": platform.python_version(), "postgres": pg, "loadavg": os.getloadavg(),
            "commit": git + (" + uncommitted engine changes in the work tree" if dirty else "")}


# -- report ------------------------------------------------------------------------------------------------------

def _records(n: int) -> int:
    return 2 * n  # N customers and N sales orders become N Invoiced customers and N invoices


def calls_by_kind(api: dict) -> dict:
    """Calls of one run by kind: PowerOffice Go token and list pages, Invoiced list pages, creates and updates."""
    kinds = {"pogo_token": 0, "pogo_lists": 0, "pogo_writes": 0, "invoiced_lists": 0, "invoiced_creates": 0,
             "invoiced_updates": 0, "invoiced_other": 0}
    for route, count in api["poweroffice_go"]["routes"].items():
        method = route.split(" ", 1)[0].upper()
        if route.upper().endswith("/OAUTH/TOKEN"):
            kinds["pogo_token"] += count
        elif method == "GET":
            kinds["pogo_lists"] += count
        else:
            kinds["pogo_writes"] += count
    for route, count in api["invoiced"]["routes"].items():
        method = route.split(" ", 1)[0].upper()
        key = {"GET": "invoiced_lists", "POST": "invoiced_creates", "PATCH": "invoiced_updates",
               "PUT": "invoiced_updates"}.get(method, "invoiced_other")
        kinds[key] += count
    kinds["total"] = api["poweroffice_go"]["total"] + api["invoiced"]["total"]
    kinds["writes"] = api["poweroffice_go"]["writes"] + api["invoiced"]["writes"]
    return kinds


def _kinds_text(k: dict) -> str:
    text = f"PoGo {k['pogo_token']} token + {k['pogo_lists']:,} list"
    if k["pogo_writes"]:
        text += f" + {k['pogo_writes']:,} write"
    text += f"; Invoiced {k['invoiced_lists']:,} list"
    if k["invoiced_creates"] or k["invoiced_updates"]:
        text += f" + {k['invoiced_creates']:,} create"
    if k["invoiced_updates"]:
        text += f" + {k['invoiced_updates']:,} update"
    return text


def summary_row(r: dict) -> str:
    n, ini, no, fl, nv = r["n"], r["initial"], r.get("nochange", {}), r["floor"], r.get("naive")
    wall = ini.get("wall_seconds")
    if wall is None or ini.get("failure") or "api" not in no:
        return f"| {n:,} | failed: {ini.get('failure') or no.get('failure')} |"
    ratio = wall / fl["seconds"]
    store_pct = 100 * ini["store_seconds"] / wall
    kinds, no_kinds = calls_by_kind(ini["api"]), calls_by_kind(no["api"])
    naive_note = "*" if nv and nv["extrapolated"] else ""
    naive_s = f"{nv['wall_seconds']:,.0f}{naive_note} | {nv['wall_seconds'] / wall:.1f}×" if nv else "– | –"
    return (f"| {n:,} | {wall:,.1f} | {fl['seconds']:,.1f} | **{ratio:.2f}×** | {_records(n) / wall:,.0f} "
            f"| {_kinds_text(kinds)} | {naive_s} | {ini['peak_rss_mib']:,.0f} "
            f"| {ini['store_seconds']:,.1f} ({store_pct:.0f} %) | {no.get('wall_seconds', float('nan')):,.1f} "
            f"| {no_kinds['total']:,} ({_kinds_text(no_kinds)}) | **{no_kinds['writes']}** | {no['peak_rss_mib']:,.0f} "
            f"| {_steady(r)} |")


def _steady(r: dict) -> str:
    st = r.get("steady")
    if not st or "api" not in st or st.get("failure"):
        return "–"
    k = calls_by_kind(st["api"])
    return f"{k['total']:,} calls, {k['writes']} writes, {st['wall_seconds']:,.1f} s"


SUMMARY_HEAD = ("| N | initial wall (s) | floor (s) | wall / floor | records/s | initial sync calls by kind "
                "| naive (s) | engine vs naive | peak RSS (MiB) | link store (s) | no-change wall (s) "
                "| no-change calls (by kind) | no-change writes | no-change peak RSS (MiB) | 2nd no-change run |\n"
                "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")

README_HEAD = ("| N | wall (s) | floor (s) | wall / floor | records/s | peak RSS (MiB) | no-change run calls "
               "| no-change run writes |\n|---|---|---|---|---|---|---|---|")


def readme_row(r: dict) -> str:
    n, ini, no, fl = r["n"], r["initial"], r.get("nochange", {}), r["floor"]
    wall = ini.get("wall_seconds")
    if wall is None or ini.get("failure") or "api" not in no:
        return f"| {n:,} | failed: {ini.get('failure') or no.get('failure')} |"
    k = calls_by_kind(no["api"])
    return (f"| {n:,} | {wall:,.1f} | {fl['seconds']:,.1f} | {wall / fl['seconds']:.2f}× | {_records(n) / wall:,.0f} "
            f"| {ini['peak_rss_mib']:,.0f} | {k['total']:,} | {k['writes']} |")


def newest_results() -> list[dict]:
    """The newest result of each N (results/ holds only runs of the engine as committed)."""
    newest: dict[int, dict] = {}
    for path in sorted(RESULTS.glob("*.json")):
        r = json.loads(path.read_text())
        newest[r["n"]] = r
    return [newest[n] for n in sorted(newest)]


def readme_table() -> str:
    return "\n".join([README_HEAD] + [readme_row(r) for r in newest_results()])


def _calls_table(api: dict, minimum: dict | None = None) -> list[str]:
    lines = ["| system | call (method path) | count | statuses |", "|---|---|---|---|"]
    for system in ("poweroffice_go", "invoiced"):
        for route, count in sorted(api[system]["routes"].items()):
            statuses = ", ".join(f"{k}: {v}" for k, v in sorted(api[system]["statuses"].get(route, {}).items()))
            lines.append(f"| {system} | `{route}` | {count:,} | {statuses} |")
        lines.append(f"| {system} | **total** (writes) | **{api[system]['total']:,}** ({api[system]['writes']:,}) | |")
    return lines


def detail(r: dict) -> str:
    n, ini, no, fl, nv, cal = r["n"], r["initial"], r.get("nochange", {}), r["floor"], r.get("naive"), r["calibration"]
    load = ", ".join(f"{x:.2f}" for x in r["machine"]["loadavg"])
    load_end = ", ".join(f"{x:.2f}" for x in r["loadavg_end"]) if r.get("loadavg_end") else "–"
    out = [f"## N = {n:,}  ({r['date']}, {r['machine']['commit']}; load average {load} at the start, "
           f"{load_end} at the end)", ""]
    if ini.get("failure"):
        out += [f"**Initial sync failed**: {ini['failure']}", "", "```", ini.get("stderr_tail", ""), "```", ""]
    out += [SUMMARY_HEAD, summary_row(r), "",
            f"Seeded PowerOffice Go: {r['seeded']['companies']:,} companies, {r['seeded']['persons']:,} persons, "
            f"{r['seeded']['sales_orders']:,} sales orders. Links after the initial sync: {ini.get('links')}.", "",
            ("**Floor**: PowerOffice Go {pc} calls ({pc20} at PageSize 20,000) / 10 rps = {tp} s; "
             "Invoiced {ic:,} calls × (50 ms + S) / 20 in flight = {ti:,} s; floor = {fs:,} s. "
             # Results from before 2026-12-08 ran at the hook's cap of 19 then.
             + ("" if fl.get("client_in_flight", 19) == 20 else "At the hook's 19 in flight: {f19:,} s. ")
             + "The sandbox's own capacity (no latency, 19 in flight, {cap} creates/s) alone would take {capt:,} s.")
            .format(pc=fl["pogo_calls"], pc20=fl["pogo_calls_at_20000"], tp=fl["t_pogo"], ic=fl["invoiced_calls"],
                    ti=fl["t_invoiced"], fs=fl["seconds"], f19=fl["seconds_at_19_in_flight"],
                    cap=cal["invoiced_capacity_creates_per_s"], capt=fl["sandbox_capacity_seconds"]), "",
            "**Service time S** (no added latency, one call at a time, plain requests; ms mean / median / p90): "
            + "; ".join(f"{k.removesuffix('_ms')} {v['mean']} / {v['median']} / {v['p90']}"
                        for k, v in cal.items() if isinstance(v, dict)), ""]
    if not ini.get("failure"):
        out += ["### Initial sync: API calls by kind", "", *_calls_table(ini["api"]), ""]
        out += ["### Initial sync: tasks", "", "| flow | task | s | link store s | peak RSS MiB | API calls |",
                "|---|---|---|---|---|---|"]
        for t in ini["tasks"]:
            api = (t["result"] or {}).get("api") if isinstance(t["result"], dict) else None
            calls = api.get("calls_total") if api else ""
            out.append(f"| {t['flow']} | {t['task']} | {t['seconds']:,.1f} | {t['store_seconds']:,.1f} "
                       f"| {t['peak_rss_mib']:,.0f} | {calls} |")
        out += ["", f"Link store total {ini['store_seconds']:,.1f} s; by method (s, calls): "
                + ", ".join(f"{k} {v['seconds']:.1f} ({v['calls']})"
                            for k, v in list(ini["store_by_method"].items())[:10]),
                f"Sync process: imports {ini['import_seconds']} s, RSS after imports {ini['baseline_rss_mib']} MiB, "
                f"peak {ini['peak_rss_mib']} MiB.", ""]
    out += _nochange_section("No-change run right after the initial sync", no)
    if r.get("steady"):
        out += _nochange_section("Second no-change run (steady state: cursors past the initial sync's own writes)",
                                 r["steady"])
    if not nv:
        return "\n".join(out)
    out += ["### Naive sequential client", "",
            f"Lists {nv['list_seconds']} s; {nv['measured_creates']:,} creates measured in "
            f"{nv['create_seconds_measured']} s ({nv['per_create_ms']} ms each)"
            + (f", extrapolated to {nv['total_creates']:,} creates" if nv["extrapolated"] else "")
            + f": **{nv['wall_seconds']:,.0f} s**.", ""]
    return "\n".join(out)


def _nochange_section(title: str, run: dict) -> list[str]:
    out = [f"### {title}: API calls by kind", ""]
    if run.get("failure"):
        return [*out, f"**failed**: {run['failure']}", ""]
    out += [*_calls_table(run["api"]), "", "| flow | task | s | link store s | API calls |", "|---|---|---|---|---|"]
    for t in run["tasks"]:
        if t["seconds"] >= 0.05 or "extract" in t["task"]:
            api = (t["result"] or {}).get("api") if isinstance(t["result"], dict) else None
            out.append(f"| {t['flow']} | {t['task']} | {t['seconds']:,.1f} | {t['store_seconds']:,.1f} "
                       f"| {api.get('calls_total') if api else ''} |")
    writes = run["api"]["poweroffice_go"]["writes"] + run["api"]["invoiced"]["writes"]
    return [*out, "", f"Wall {run['wall_seconds']:,.1f} s, link store {run['store_seconds']:,.1f} s, peak RSS "
            f"{run['peak_rss_mib']:,.0f} MiB, **{writes} writes** (tasks under 0.05 s left out).", ""]


def write_results(r: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    base = RESULTS / f"{r['date']}-{r['n']}"
    base.with_suffix(".json").write_text(json.dumps(r, indent=1, default=str))
    base.with_suffix(".md").write_text(detail(r) + "\n")
    return base.with_suffix(".md")


def _memory_total() -> str:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return "?"


def write_doc() -> None:
    """docs/benchmark.md: method (bench/README.md), results table of the newest result of each N, findings
    (bench/findings.md), then each size's details."""
    rows = newest_results()
    if not rows:
        return
    m = rows[-1]["machine"]
    intro = (ROOT / "bench" / "README.md").read_text() if (ROOT / "bench" / "README.md").exists() else ""
    dates = sorted({r["date"] for r in rows})
    commits = sorted({r["machine"]["commit"] for r in rows})
    loads = "; ".join(f"N = {r['n']:,}: {', '.join(f'{x:.2f}' for x in r['machine']['loadavg'])}"
                      + (f" → {', '.join(f'{x:.2f}' for x in r['loadavg_end'])}" if r.get("loadavg_end") else "")
                      for r in rows)
    text = [intro.rstrip(), "", "# Results", "",
            f"Run on {', '.join(dates)} at commit {', '.join(commits)} (HEAD when each size started), with "
            f"`make bench` (or `.venv/bin/python bench/run.py {' '.join(str(r['n']) for r in rows)}`).", "",
            f"Machine: {m['nproc']} cores (nproc), {m['cpu']}, {_memory_total()} memory, Python {m['python']}, "
            f"PostgreSQL {m['postgres']}. The machine is shared: load average (1, 5, 15 min) at the start → end of "
            f"each size: {loads}.", "",
            SUMMARY_HEAD] + [summary_row(r) for r in rows] + [
            "", "\\* naive client extrapolated from a measured sample (see the size's section). Calls by kind: "
            "PoGo = PowerOffice Go; a list call is one page. The no-change run is the hourly run right after the "
            "initial sync; the 2nd no-change run is the one after it.", "",
            "As `bench/run.py` prints it for the README:", "", readme_table(), ""]
    findings = ROOT / "bench" / "findings.md"
    if findings.exists():
        text += [findings.read_text().rstrip(), ""]
    text += [detail(r) for r in rows]
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text("\n".join(text) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sizes", nargs="*", type=int, default=[1000, 10000, 100000])
    parser.add_argument("--naive-sample", type=int, default=2000,
                        help="measure the naive client on this many creates and extrapolate above it (default 2000)")
    parser.add_argument("--doc-only", action="store_true", help="only regenerate docs/benchmark.md from results")
    parser.add_argument("--table", action="store_true", help="only print the README's table from results")
    args = parser.parse_args(argv)
    if args.doc_only:
        write_doc()
        return 0
    if args.table:
        print(readme_table())
        return 0
    from tools.postgres import ensure_postgres

    server_dsn, where = ensure_postgres(Path(tempfile.gettempdir()) / "pogo-bench-postgres")
    log(f"PostgreSQL: {where}")
    failed = False
    for n in args.sizes:
        r = run_size(n, server_dsn, args.naive_sample)
        path = write_results(r)
        write_doc()
        print(SUMMARY_HEAD)
        print(summary_row(r))
        print()
        print(detail(r))
        log(f"N={n}: written {path.relative_to(ROOT)} and {DOC.relative_to(ROOT)}")
        failed |= any(r.get(k, {}).get("failure") for k in ("initial", "nochange", "steady"))
    print("Newest result of each N (the README's table):")
    print(readme_table())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
