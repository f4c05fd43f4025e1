"""Benchmark of tenants sharing one integration's keys: N tenants × M records under CeleryExecutor.

    .venv/bin/python bench/tenants.py [--tenants 10] [--records 1000] [--origin invoiced] [--workers 2]

Every tenant runs against ONE PowerOffice Go sandbox (one subscription key, a client key per tenant: 10 requests/s
for all of them) and ONE Invoiced sandbox (an account per tenant), on the Celery stack of tools/celery_stack.py
(``shared_keys``); every flow of every tenant is triggered at once. ``--origin`` says where the M records of each
tenant start: ``invoiced`` (customers and invoices to create in PowerOffice Go, the case that loads the shared
subscription key), ``poweroffice_go`` (lists there, creates in Invoiced) or ``both`` (half each). Prints the calls
and 429s each sandbox counted, the time from the first to the last PowerOffice Go call, and the shared-key floor
(PowerOffice Go calls / 10 per second), where the time beyond the floor went (``Timeline``), and the calls and
writes of the same cycle run again with nothing changed (no writes expected). Needs Redis (Celery's broker) and
PostgreSQL like the stack.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT / "plugins", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from tools.celery_stack import CeleryStack, redis_reachable  # noqa: E402

REQUESTS_PER_SECOND = 10  # PowerOffice Go, per subscription key


def seed_spec(records: int, origin: str) -> dict:
    """Seeds giving each tenant ``records`` records: customers (half companies, half persons) and as many orders."""
    pogo_share = {"invoiced": 0, "poweroffice_go": records, "both": records // 2}[origin]
    inv_share = records - pogo_share

    def split(n: int) -> tuple[int, int, int]:
        customers = n // 2
        return customers // 2, customers - customers // 2, n - customers

    companies, persons, orders = split(pogo_share)
    inv_companies, inv_persons, invoices = split(inv_share)
    return {
        "poweroffice_go": {
            "companies": companies,
            "persons": persons,
            "contact_persons_per_company": 0,
            "sales_orders": orders,
        },
        "invoiced": {"companies": inv_companies, "persons": inv_persons, "invoices": invoices},
    }


def statuses(counters: dict) -> dict[str, int]:
    """Calls by status over every route."""
    totals: dict[str, int] = {}
    for by_status in counters["statuses"].values():
        for status, n in by_status.items():
            totals[status] = totals.get(status, 0) + n
    return totals


class Timeline:
    """Once a second during the cycle: PowerOffice Go calls so far, running tasks by task id, the shared key's slots.

    Says where the time between the shared-key floor and the span goes: seconds with no PowerOffice Go writer
    (upsert task) running are the scheduling's; seconds with one but a slot free are the writers' demand; seconds
    with every slot held or cooling are the limiter's (their rate is ``10 / (1 s + hold time)``).
    """

    def __init__(self, stack: CeleryStack, pogo_admin, every: float = 1.0) -> None:
        self.stack, self.pogo, self.every = stack, pogo_admin, every
        self.samples: list[dict] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="timeline", daemon=True)

    def __enter__(self) -> Timeline:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        import psycopg

        started = time.monotonic()
        with (
            psycopg.connect(self.stack.meta_dsn, autocommit=True) as meta,
            psycopg.connect(self.stack.link_dsn, autocommit=True) as links,
        ):
            while not self._stop.wait(self.every):
                try:
                    running = dict(
                        meta.execute(
                            "SELECT task_id, count(*) FROM task_instance WHERE state = 'running' GROUP BY task_id"
                        ).fetchall()
                    )
                    waiting = meta.execute(
                        "SELECT count(*) FROM task_instance WHERE state IN ('scheduled', 'queued')"
                    ).fetchone()[0]
                except psycopg.Error:
                    running, waiting = {}, 0
                try:
                    slots = links.execute(
                        "SELECT credential, count(*) FILTER (WHERE holder IS NOT NULL AND held_until > now), "
                        " count(*) FILTER (WHERE holder IS NOT NULL AND held_until > now AND free_at > now), "
                        " count(*) FILTER (WHERE holder IS NULL AND free_at > now) "
                        "FROM pogo_invoiced_sync_limits.slots, (SELECT clock_timestamp() AS now) c GROUP BY credential"
                    ).fetchall()
                except psycopg.Error:  # the slots table appears with the first task
                    slots = []
                self.samples.append(
                    {
                        "t": time.monotonic() - started,
                        "calls": self.pogo.counters()["total"],
                        "running": running,
                        "waiting": waiting,
                        "load": os.getloadavg()[0],
                        "slots": {c: (held, reserved, cooling) for c, held, reserved, cooling in slots},
                    }
                )

    def breakdown(self, rate: int) -> dict:
        """Seconds and calls by what held the key back (see the class docstring)."""
        # The key's credential is the one whose slots cool down (Invoiced's in-flight slots never do).
        cooled: dict[str, int] = {}
        for s in self.samples:
            for c, (_h, _r, cooling) in s["slots"].items():
                cooled[c] = cooled.get(c, 0) + cooling
        key = max(cooled, key=cooled.get) if cooled else None
        parts = {name: {"seconds": 0.0, "calls": 0} for name in ("no_writer", "slot_free", "all_busy")}
        busy = {"held": 0.0, "cooling": 0.0}
        tasks: dict[str, float] = {}
        pairs = [(a, b) for a, b in zip(self.samples, self.samples[1:], strict=False) if b["calls"] > 0]
        first = next((i for i, (a, _b) in enumerate(pairs) if a["calls"] > 0), 0)
        last = max((i for i, (a, b) in enumerate(pairs) if b["calls"] > a["calls"]), default=-1)
        for a, b in pairs[first : last + 1]:
            dt, calls = b["t"] - a["t"], b["calls"] - a["calls"]
            held, _reserved, cooling = b["slots"].get(key, (0, 0, 0))
            writers = b["running"].get("upsert_poweroffice_go", 0)
            part = "no_writer" if not writers else ("all_busy" if held + cooling >= rate else "slot_free")
            parts[part]["seconds"] += dt
            parts[part]["calls"] += calls
            if part == "all_busy":
                busy["held"] += held * dt
                busy["cooling"] += cooling * dt
            for task, n in b["running"].items():
                tasks[task] = tasks.get(task, 0.0) + n * dt
        span = sum(p["seconds"] for p in parts.values())
        return {
            "span_s": round(span, 1),
            **{f"{name}_{k}": round(v, 1) if k == "seconds" else v for name, p in parts.items() for k, v in p.items()},
            "all_busy_held_share": round(busy["held"] / (busy["held"] + busy["cooling"]), 3)
            if busy["held"] + busy["cooling"]
            else None,
            "mean_load_average_1min": round(sum(s["load"] for s in self.samples) / len(self.samples), 2)
            if self.samples
            else None,
            "mean_running_tasks": {t: round(v / span, 2) for t, v in sorted(tasks.items())} if span else {},
        }


def data_writes(counters: dict) -> int:
    """Write calls other than token requests (a token POST changes no data)."""
    return sum(
        n
        for route, n in counters["routes"].items()
        if route.split(" ")[0] in {"POST", "PUT", "PATCH", "DELETE"} and "/oauth/token" not in route.lower()
    )


def run(tenants: int, records: int, origin: str, workers: int, concurrency: int) -> dict:
    """Start the shared-key stack, run every flow of every tenant once, and measure; the numbers."""
    names = [f"t{i + 1:02d}" for i in range(tenants)]
    with tempfile.TemporaryDirectory(prefix="bench-tenants-") as workdir:
        stack = CeleryStack(
            Path(workdir), names, workers, concurrency, seed=seed_spec(records, origin), shared_keys=True
        )
        started = time.monotonic()
        with stack:
            ready = time.monotonic() - started
            sandboxes = next(iter(stack.tenants.values())).sandboxes
            sandboxes.pogo.clear_counters()
            sandboxes.invoiced.clear_counters()
            cycle_started = time.monotonic()
            # The floor alone is PowerOffice Go calls / 10 s: allow for several times that.
            with Timeline(stack, sandboxes.pogo) as timeline:
                runs = stack.run_cycle(timeout=max(600.0, tenants * records * 1.0))
            wall = time.monotonic() - cycle_started
            pogo, invoiced = sandboxes.pogo.counters(), sandboxes.invoiced.counters()
            # The same cycle again with nothing changed in between: it must write nothing.
            sandboxes.pogo.clear_counters()
            sandboxes.invoiced.clear_counters()
            again = stack.run_cycle(timeout=max(600.0, tenants * records * 0.2))
            quiet = {"poweroffice_go": sandboxes.pogo.counters(), "invoiced": sandboxes.invoiced.counters()}
    failed = [
        f"{d} {r['dag_run_id']}" for d, rs in [*runs.items(), *again.items()] for r in rs if r["state"] != "success"
    ]
    return {
        "tenants": tenants,
        "records_per_tenant": records,
        "origin": origin,
        "stack_start_s": round(ready, 1),
        "wall_s": round(wall, 1),
        "runs": sum(len(rs) for rs in runs.values()),
        "failed": failed,
        "pogo_calls": pogo["total"],
        "pogo_writes": pogo["writes"],
        "pogo_429": statuses(pogo).get("429", 0),
        "pogo_span_s": round((pogo["last_at"] or 0) - (pogo["first_at"] or 0), 1),
        "floor_s": round(pogo["total"] / REQUESTS_PER_SECOND, 1),
        "invoiced_calls": invoiced["total"],
        "invoiced_429": statuses(invoiced).get("429", 0),
        "pogo_data_writes": data_writes(pogo),
        "invoiced_data_writes": data_writes(invoiced),
        "no_change_calls": {system: c["total"] for system, c in quiet.items()},
        "no_change_data_writes": {system: data_writes(c) for system, c in quiet.items()},
        "breakdown": timeline.breakdown(REQUESTS_PER_SECOND),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "samples": timeline.samples,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--records", type=int, default=1000, help="records per tenant")
    parser.add_argument("--origin", choices=["invoiced", "poweroffice_go", "both"], default="invoiced")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the numbers and the per-second timeline here")
    args = parser.parse_args(argv)
    problem = redis_reachable()
    if problem:
        print(problem, file=sys.stderr)
        return 2
    r = run(args.tenants, args.records, args.origin, args.workers, args.concurrency)
    if args.json:
        args.json.write_text(json.dumps(r, indent=1, default=str))
    span, floor = r["pogo_span_s"], r["floor_s"]
    print(
        f"{r['tenants']} tenants × {r['records_per_tenant']:,} records (origin {r['origin']}), shared keys: "
        f"{r['runs']} runs in {r['wall_s']} s (stack start {r['stack_start_s']} s before)\n"
        f"  PowerOffice Go: {r['pogo_calls']:,} calls ({r['pogo_writes']:,} writes), {r['pogo_429']} × 429; "
        f"first to last call {span} s vs shared-key floor {floor} s"
        + (f" ({span / floor:.2f}×)" if floor else "")
        + f"\n  Invoiced: {r['invoiced_calls']:,} calls, {r['invoiced_429']} × 429"
        + f"\n  writes other than token requests: PowerOffice Go {r['pogo_data_writes']:,}, Invoiced "
        f"{r['invoiced_data_writes']:,}; the no-change cycle after it: calls {r['no_change_calls']}, "
        f"writes {r['no_change_data_writes']}"
        + f"\n  breakdown: {r['breakdown']}\n  load average at the end: {r['load_average']}",
        flush=True,
    )
    if r["failed"]:
        print("not successful: " + ", ".join(r["failed"]), flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
