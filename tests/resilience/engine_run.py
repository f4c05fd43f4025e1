"""One run of a flow's engine steps in this process, as the DAG's tasks would do them, stoppable at any step.

Used to abandon a run part-way (a killed task), or to run two runs of one flow at the same time.
"""

from __future__ import annotations

import threading

import psycopg

from pogo_invoiced_sync.engine import steps
from pogo_invoiced_sync.engine.flow_mapping import INVOICED, POGO, load_mapping
from pogo_invoiced_sync.engine.link_store import LinkStore
from pogo_invoiced_sync.operators.sync import _hook

SCHEMA = "pogo_invoiced_sync"
# The DAG's task order; a run stopped "after" one of these has done it and everything before it.
STEPS = ("extract", "map", "reconcile", "upsert_invoiced", "upsert_poweroffice_go", "report")


class Killed(BaseException):
    """The task's process died (not an Exception: nothing in the engine may catch and record it)."""


class DyingHook:
    """A client whose process dies right after its ``writes_before_death``-th write reached the API.

    The write is stored by the API but its answer never gets back: the worst moment to die.
    """

    WRITES = ("create", "patch", "update")

    def __init__(self, hook, writes_before_death: int) -> None:
        self._hook = hook
        self._left = writes_before_death
        self._lock = threading.Lock()

    def __getattr__(self, name):
        attr = getattr(self._hook, name)
        if name not in self.WRITES:
            return attr

        def write(*args, **kwargs):
            with self._lock:
                dead = self._left <= 0
                self._left -= 1
            if dead:
                raise Killed("the process was already dead")
            result = attr(*args, **kwargs)
            with self._lock:
                if self._left <= 0:
                    raise Killed(f"killed after a {name} reached the API")
            return result

        return write


def sibling_flows(stack, flow: str) -> tuple[str, ...]:
    return tuple(stack.dagbag.dags[f"sync_{flow}"].get_task("reconcile").sibling_flows)


def run_steps(
    stack,
    flow: str,
    run_id: str,
    *,
    until: str = "report",
    hooks: dict | None = None,
    before_upsert: threading.Barrier | None = None,
) -> dict:
    """Do the steps of one run up to and including ``until``; return their results.

    ``hooks`` replaces the API clients by system; ``before_upsert`` makes concurrent runs meet before writing.
    """
    store = LinkStore(lambda: psycopg.connect(stack.dsn), SCHEMA)
    store.migrate()
    mapping = load_mapping(flow)
    hooks = hooks or {}
    hook = lambda system: hooks.get(system) or _hook(system, None).get_conn()  # noqa: E731
    done: dict = {}
    try:
        store.start_run(flow, run_id, {})
        done["extract"] = [steps.extract(store, mapping, s, hook(s), run_id) for s in (POGO, INVOICED)]
        if until == "extract":
            return done
        done["map"] = [steps.map_records(store, mapping, s, run_id) for s in (POGO, INVOICED)]
        if until == "map":
            return done
        done["reconcile"] = steps.reconcile(store, mapping, run_id, sibling_flows(stack, flow))
        if until == "reconcile":
            return done
        if before_upsert is not None:
            before_upsert.wait(60)
        for target in (INVOICED, POGO):
            done[f"upsert_{target}"] = steps.upsert(store, mapping, target, hook(target), run_id)
            if until == f"upsert_{target}":
                return done
        done["report"] = steps.summarise(store, mapping, run_id)
        return done
    finally:
        store.close()
