"""Benchmark of tenants sharing one integration's keys: N tenants × M records under CeleryExecutor.

    .venv/bin/python bench/tenants.py [--tenants 10] [--records 1000] [--origin invoiced] [--workers 2]

Every tenant runs against ONE PowerOffice Go sandbox (one subscription key, a client key per tenant: 10 requests/s
for all of them) and ONE Invoiced sandbox (an account per tenant), on the Celery stack of tools/celery_stack.py
(``shared_keys``); every flow of every tenant is triggered at once. ``--origin`` says where the M records of each
tenant start: ``invoiced`` (customers and invoices to create in PowerOffice Go, the case that loads the shared
subscription key), ``poweroffice_go`` (lists there, creates in Invoiced) or ``both`` (half each). Prints the calls
and 429s each sandbox counted, the time from the first to the last PowerOffice Go call, and the shared-key floor
(PowerOffice Go calls / 10 per second). Needs Redis (Celery's broker) and PostgreSQL like the stack.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
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
            runs = stack.run_cycle(timeout=max(600.0, tenants * records * 1.0))
            wall = time.monotonic() - cycle_started
            pogo, invoiced = sandboxes.pogo.counters(), sandboxes.invoiced.counters()
    failed = [f"{d} {r['dag_run_id']}" for d, rs in runs.items() for r in rs if r["state"] != "success"]
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
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--records", type=int, default=1000, help="records per tenant")
    parser.add_argument("--origin", choices=["invoiced", "poweroffice_go", "both"], default="invoiced")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args(argv)
    problem = redis_reachable()
    if problem:
        print(problem, file=sys.stderr)
        return 2
    r = run(args.tenants, args.records, args.origin, args.workers, args.concurrency)
    span, floor = r["pogo_span_s"], r["floor_s"]
    print(
        f"{r['tenants']} tenants × {r['records_per_tenant']:,} records (origin {r['origin']}), shared keys: "
        f"{r['runs']} runs in {r['wall_s']} s (stack start {r['stack_start_s']} s before)\n"
        f"  PowerOffice Go: {r['pogo_calls']:,} calls ({r['pogo_writes']:,} writes), {r['pogo_429']} × 429; "
        f"first to last call {span} s vs shared-key floor {floor} s"
        + (f" ({span / floor:.2f}×)" if floor else "")
        + f"\n  Invoiced: {r['invoiced_calls']:,} calls, {r['invoiced_429']} × 429",
        flush=True,
    )
    if r["failed"]:
        print("not successful: " + ", ".join(r["failed"]), flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
