"""A randomized convergence soak: users edit both systems while the three flows run under faults; nothing is lost.

One soak, for a seed:

1. both sandboxes are seeded and synced once, cleanly;
2. faults go on in both sandboxes (latency, 5xx, answers dropped before and after the write, and a burst of 429s
   every few seconds), the users (:mod:`tests.soak.users`) start in a thread, and the flows run cycle after cycle
   (company, person, orders) in this thread until the time is up; now and then a user also acts while a run's
   listing is between two pages;
3. the users stop, the faults go off, and the flows run until a cycle has no failed run and no successful write
   (at most ``MAX_SETTLE_CYCLES``);
4. :mod:`tests.soak.check` compares both systems, the links, the sync log and every user edit.

The flows run through :func:`tests.resilience.engine_run.run_steps` (the DAG's steps in this process), not through
``dag.test()``: a DAG run costs seconds of Airflow bookkeeping (parsing, the metadata database, task instances), so
in the same time the engine runs many more cycles and listings, which is where the traps are; and ``dag.test()``
drives Airflow's own session and state, which is not made to run beside other threads, while the engine's steps
are. Every engine code path is the DAG's; only the operators' thin glue is left out (the DAG suites cover it).

Listings are made to span several pages with small pages (``page_size``), so users' edits land in the middle of
listings: the hooks take a page size per call but not from the connection, so the hooks handed to the engine are
wrapped to ask for smaller pages (:class:`SmallPages`). Everything else is the real hook over real HTTP.
"""
from __future__ import annotations

import dataclasses
import inspect
import random
import threading
import time
from collections import Counter

from pogo_invoiced_sync.engine.flow_mapping import INVOICED, POGO
from pogo_invoiced_sync.operators.sync import _hook
from tests.resilience import engine_run
from tests.soak import check as soak_check
from tests.soak.users import Users

FLOWS = ("customers_company", "customers_person", "salesorders_invoices")
MAX_SETTLE_CYCLES = 8
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


@dataclasses.dataclass
class Result:
    seed: int
    seconds: float
    cycles: int
    runs: Counter
    settle_cycles: int
    settled: bool
    users: Users
    verdict: soak_check.Verdict

    def summary(self) -> str:
        actions = ", ".join(f"{k} {n}" for k, n in sorted(self.users.actions.items()))
        failed = ", ".join(f"{k} {n}" for k, n in sorted(self.users.failed.items())) or "none"
        runs = ", ".join(f"{k} {n}" for k, n in sorted(self.runs.items()))
        samples = "".join(f"\n    {line}" for line in self.users.failure_samples[:5])
        return (f"soak seed {self.seed}: {self.seconds:.0f} s of users, {self.cycles} cycles under faults; "
                f"runs: {runs}\n  users: {len(self.users.edits)} edits kept ({self.users.mid_listing_actions} "
                f"actions between two pages of a listing); actions: {actions}; failed user calls: {failed}{samples}\n"
                f"  settled after {self.settle_cycles} clean cycle(s): {'yes' if self.settled else 'NO'}\n"
                f"  {self.verdict.summary()}")


class SmallPages:
    """A hook that lists in pages of ``size`` and may let a user act after a page (the rest passes through).

    ``between_pages`` is called after each page but the last that a listing reads: a user's edit landing while a run
    pages through a listing, at the moment that matters, not only when the threads happen to meet there.
    """

    def __init__(self, hook, size: int | None, between_pages=None) -> None:
        self._hook, self._size, self._between = hook, size, between_pages

    def __getattr__(self, name):
        attr = getattr(self._hook, name)
        if name not in ("iter_pages", "iter_changed"):
            return attr
        parameters = inspect.signature(attr).parameters
        keyword = next((k for k in ("page_size", "per_page") if k in parameters), None)

        def listing(*args, **kwargs):
            if keyword and self._size:
                kwargs.setdefault(keyword, self._size)
            pages = iter(attr(*args, **kwargs))
            page = next(pages, None)
            while page is not None:
                following = next(pages, None) if self._between is None else None
                yield page
                if self._between is not None:
                    following = next(pages, None)
                    if following is not None:
                        self._between()
                page = following

        return listing


def hooks(page_size: int | None, between_pages=None) -> dict:
    made = {s: _hook(s, None).get_conn() for s in (POGO, INVOICED)}
    if not page_size and between_pages is None:
        return made
    return {s: SmallPages(h, page_size, between_pages) for s, h in made.items()}


def successful_writes(stack) -> int:
    """Write calls both sandboxes answered with 2xx since their counters were cleared."""
    total = 0
    for admin in (stack.sandboxes.pogo, stack.sandboxes.invoiced):
        for route, statuses in admin.counters()["statuses"].items():
            if route.split(" ")[0] in WRITE_METHODS:
                total += sum(n for status, n in statuses.items() if status.isdigit() and 200 <= int(status) < 300)
    return total


def cycle(stack, tag: str, page_size: int | None, runs: Counter, failures: list[str] | None = None,
          between_pages=None) -> bool:
    """One run of each flow in dependency order; a run that raises is counted (as Airflow would fail the task)."""
    clean = True
    for flow in FLOWS:
        try:
            engine_run.run_steps(stack, flow, f"soak__{tag}__{flow}", hooks=hooks(page_size, between_pages))
            runs[f"{flow} ok"] += 1
        except Exception as exc:  # noqa: BLE001 - a failed run is what faults cause; the next cycle retries
            clean = False
            runs[f"{flow} failed ({type(exc).__name__})"] += 1
            if failures is not None:
                failures.append(f"{tag} {flow}: {type(exc).__name__}: {str(exc)[:300]}")
    return clean


class FaultWeather:
    """Faults in both sandboxes: steady latency, 5xx and dropped answers, and a burst of 429s every few seconds."""

    def __init__(self, stack, seed: int) -> None:
        self.stack, self.rng = stack, random.Random(f"soak-faults:{seed}")
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="soak-faults", daemon=True)

    def _settings(self, burst: int) -> dict:
        return {"latency_ms": 10, "error_rate": 0.03, "error_status": self.rng.choice((500, 502, 503)),
                "drop_rate": 0.01, "drop_after_rate": 0.02, "burst_429": burst, "retry_after": 0.2,
                "seed": self.rng.randrange(2**31)}

    def _run(self) -> None:
        while not self.stop.is_set():
            for admin in (self.stack.sandboxes.pogo, self.stack.sandboxes.invoiced):
                admin.faults(**self._settings(self.rng.choice((0, 0, 3, 8))))
            self.stop.wait(self.rng.uniform(2, 6))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(30)
        self.stack.sandboxes.pogo.faults()
        self.stack.sandboxes.invoiced.faults()


def seed_data(stack, seed: int, size: int) -> None:
    """Both systems hold customers, persons and orders/invoices of their own before the first sync."""
    data_seed = seed % 100_000 + 1
    stack.sandboxes.pogo.seed(companies=size, persons=size, sales_orders=size, seed=data_seed)
    stack.sandboxes.invoiced.seed(companies=size, persons=size, invoices=size, seed=data_seed)


def run_soak(stack, seed: int, seconds: float, *, size: int = 25, page_size: int | None = 20,
             weights: dict | None = None, faults: bool = True, log=print) -> Result:
    """Run one soak (see the module docstring) and return what it saw; asserts nothing itself."""
    log(f"soak seed {seed} ({seconds:.0f} s of users): replay with SOAK_SEED={seed} SOAK_SECONDS={seconds:g} make soak")
    seed_data(stack, seed, size)
    runs: Counter = Counter()
    failures: list[str] = []
    if not cycle(stack, "first", page_size, runs, failures):
        raise AssertionError(f"the clean first sync failed: {failures}")
    cycle(stack, "first-orders", page_size, runs, failures)  # orders whose customers the first cycle linked late

    users = Users(stack, seed, weights)
    stop = threading.Event()
    thread = threading.Thread(target=users.run, args=(stop,), name="soak-users", daemon=True)
    cycles = 0
    weather = FaultWeather(stack, seed) if faults else None
    try:
        if weather:
            weather.__enter__()
        thread.start()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and users.error is None:
            cycles += 1
            cycle(stack, f"c{cycles}", page_size, runs, failures, users.between_pages)
    finally:
        stop.set()
        thread.join(60)
        if weather:
            weather.__exit__()
    if users.error is not None:
        raise AssertionError(f"the users' generator broke (seed {seed})") from users.error

    settled, settle, quiet_but_failing = False, 0, 0
    failures_before = len(failures)
    while settle < MAX_SETTLE_CYCLES and not settled:
        settle += 1
        for admin in (stack.sandboxes.pogo, stack.sandboxes.invoiced):
            admin.clear_counters()
        clean = cycle(stack, f"settle{settle}", page_size, runs, failures)
        writes = successful_writes(stack)
        settled = clean and writes == 0
        quiet_but_failing = quiet_but_failing + 1 if writes == 0 and not clean else 0
        if quiet_but_failing >= 2:
            break  # runs keep failing without faults and without writing: a finding, no use repeating it
    verdict = soak_check.check(stack, users.edits)
    if not settled:
        verdict.problem("unexplained", f"the flows did not settle without faults in {settle} cycles (a cycle without "
                                       f"failed runs or writes); run failures since the faults went off: "
                                       f"{failures[failures_before:][-3:]}")
    result = Result(seed, seconds, cycles, runs, settle, settled, users, verdict)
    log(result.summary())
    for line in (verdict.problems + verdict.races)[:40]:
        log(f"  - {line}")
    return result
