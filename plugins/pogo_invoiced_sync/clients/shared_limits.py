"""API limits shared by every process that uses one credential, coordinated through PostgreSQL.

PowerOffice Go allows 10 requests per second per *subscription key*, and one integration's key serves every client
(tenant) it syncs; Invoiced caps the requests in flight per API key. Limiters inside one process cannot see the
tasks of other tenants or other Celery workers, so here a credential's budget lives in a table every worker reaches:
the link-store database, which every task already needs.

One model covers both limits: a credential owns ``limit`` *slots*. A request holds a slot while it is in flight;
on release the slot *cools down* for ``cooldown`` seconds before anyone may take it again.

- Requests per second: ``cooldown`` = 1 s. The server counts arrivals in a sliding one-second window, and arrivals
  happen between our send and our receipt; a slot that is free again only one second after its request *completed*
  can never put more than ``limit`` arrivals into any window, whatever the latency (the same rule as the
  process-local :class:`RequestRateLimiter`).
- Requests in flight: ``cooldown`` = 0.

Two refinements keep a per-second budget close to its floor without ever loosening that rule:

- A released slot cools from when its request *completed*, measured by the releasing thread, not from when the
  release reached the database (a busy database or connection pool would otherwise add its delay to every cycle).
- A waiter may *reserve* a slot that frees within ``reserve_ahead`` seconds: it holds it, and starts its request
  only once the database said the slot is free (it sleeps the remainder the database reported, measured after the
  answer arrived). The take's round trip and the sleeper's wake-up then overlap the cooldown instead of adding to
  it. Only one thread per process and limiter waits at the database; the others queue behind it in the process.

An in-flight budget can be *kept* (:meth:`SharedSlots.keep`): inside that scope a thread keeps its slot for up to
``KEEP_SECONDS`` across consecutive requests instead of taking and releasing it around each one, which saves two
statements per request on a writer's fan-out (a slot held between two requests is idle, never over the limit). At
the end of the keep time the slot is released, so other processes waiting for the key get their turn; the scope's
end releases every kept slot at once.

Times come from the database clock (``clock_timestamp()``), so hosts with skewed clocks agree. A slot is taken with
a *lease* (``held_until``): a worker that dies while holding one frees it when the lease ends, without anyone's help.
Keys are credential fingerprints (hashes), never secrets.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

log = logging.getLogger(__name__)

SCHEMA = "pogo_invoiced_sync_limits"
MAX_CONNECTIONS = 4  # per limiter and process
POLL_SECONDS = 0.05  # longest sleep between two looks at a credential whose slots are all in flight
RESERVE_AHEAD = 0.1  # a per-second budget's waiter takes a cooling slot this long before it frees (see above)
MAX_SLEEP = 1.0  # longest sleep until a cooling slot is due
KEEP_SECONDS = 1.0  # how long a thread keeps an in-flight slot across requests inside keep() (far below the lease)

# The statements below name the schema literally (``pogo_invoiced_sync_limits``, as SCHEMA): fixed SQL text, values
# only as parameters.


class SharedSlots:
    """``limit`` slots of one credential, shared through PostgreSQL by every process and thread that uses it.

    :param connect: opens a psycopg 3 connection to the database holding the slots (the link store's).
    :param credential: the credential's fingerprint (a hash; never the secret).
    :param limit: how many slots the credential has (requests per second, or requests in flight).
    :param cooldown: seconds a released slot stays unavailable (1.0 for a per-second limit, 0 for in flight).
    :param lease: seconds after which a slot held by a vanished process is free again (longer than any request).
    :param reserve_ahead: how long before a cooling slot frees a waiter may take it (default ``RESERVE_AHEAD`` with a
        cooldown, 0 without: an in-flight slot is free the moment it is released).
    """

    def __init__(
        self,
        connect: Callable[[], Any],
        credential: str,
        limit: int,
        *,
        cooldown: float,
        lease: float = 120.0,
        margin: float = 0.01,
        reserve_ahead: float | None = None,
    ) -> None:
        if limit < 1:
            raise ValueError("a shared limit needs at least one slot")
        if reserve_ahead is None:
            reserve_ahead = RESERVE_AHEAD if cooldown else 0.0
        if reserve_ahead < 0 or (reserve_ahead and not cooldown):
            raise ValueError("reserve_ahead needs a cooldown and cannot be negative")
        self._connect = connect
        self.credential = credential
        self.limit = int(limit)
        self.cooldown = cooldown + (margin if cooldown else 0.0)
        self.lease = lease
        # A few connections per limiter: one would serialise the take and release statements of every thread.
        self.max_connections = min(MAX_CONNECTIONS, self.limit)
        self._pool = threading.Condition()
        self._idle: list[Any] = []
        self._opened = 0
        self.reserve_ahead = float(reserve_ahead)
        self._wake = threading.Condition()
        # With reservations one thread per process waits at the database: slots come at most `limit` per second,
        # and a crowd of pollers would only cost the database's time (and this process's GIL).
        self._gate: threading.Lock | None = threading.Lock() if self.reserve_ahead else None
        # keep(): scopes open in this process, and the kept slots no request is using (slot, holder, kept until).
        self._keeping = 0
        self._kept: list[tuple[int, str, float]] = []
        self._kept_lock = threading.Lock()

    # -- the database ------------------------------------------------------------------------------------------

    def _run(self, work: Callable[[Any], list[tuple]]) -> list[tuple]:
        """Run ``work`` on one of the limiter's autocommitted connections, reconnecting once if it was lost."""
        conn = self._checkout()
        try:
            for attempt in (1, 2):
                try:
                    if conn is None or conn.closed:
                        conn = self._open()
                    return work(conn)
                except Exception:
                    if attempt == 2 or conn is None or not conn.closed:
                        raise
                    conn = None
            raise AssertionError("unreachable")
        finally:
            self._checkin(conn)

    def _checkout(self) -> Any:
        """An idle connection, or None when the caller may open a new one (below ``max_connections``)."""
        with self._pool:
            while True:
                if self._idle:
                    return self._idle.pop()
                if self._opened < self.max_connections:
                    self._opened += 1
                    return None
                self._pool.wait()

    def _checkin(self, conn: Any) -> None:
        with self._pool:
            if conn is None or conn.closed:
                self._opened -= 1
            else:
                self._idle.append(conn)
            self._pool.notify()

    def _open(self) -> Any:
        conn = self._connect()
        conn.autocommit = True
        with conn.transaction():
            # Concurrent first uses must not race on CREATE SCHEMA / TABLE.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('pogo_invoiced_sync_limits:ddl'))")
            conn.execute("CREATE SCHEMA IF NOT EXISTS pogo_invoiced_sync_limits")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS pogo_invoiced_sync_limits.slots ("
                " credential text NOT NULL, slot integer NOT NULL, free_at timestamptz NOT NULL DEFAULT 'epoch',"
                " holder uuid, held_until timestamptz, PRIMARY KEY (credential, slot))"
            )
        conn.execute(
            "INSERT INTO pogo_invoiced_sync_limits.slots (credential, slot) "
            "SELECT %(credential)s, n FROM generate_series(0, %(limit)s - 1) AS n ON CONFLICT DO NOTHING",
            {"credential": self.credential, "limit": self.limit},
        )
        return conn

    def close(self) -> None:
        """Close the limiter's idle connections (slots it holds are released by their ``slot()`` blocks first)."""
        with self._pool:
            for conn in self._idle:
                if not conn.closed:
                    conn.close()
            self._opened -= len(self._idle)
            self._idle.clear()

    # -- the limiter interface ---------------------------------------------------------------------------------

    def acquire(self) -> tuple[int, str, float]:
        """Block until a slot is ours and free; return it, our holder id and the seconds waited."""
        started = time.monotonic()
        holder = str(uuid.uuid4())
        with self._gate or contextlib.nullcontext():
            slot, due, _ = self._take(holder)
        if due > 0:
            time.sleep(due)  # a reserved slot: the database said it frees in `due` seconds, counted from its answer
        return slot, holder, time.monotonic() - started

    def _take(
        self, holder: str, adopt: Callable[[], tuple[int, str, float] | None] | None = None
    ) -> tuple[int, float, tuple[int, str, float] | None]:
        """Take the slot that became (or becomes, within ``reserve_ahead``) free the earliest; it and its wait.

        ``adopt``, asked between two looks at the database, may hand over a slot this process already holds (a kept
        one gone idle): it is returned as the third element.
        """
        params = {
            "credential": self.credential,
            "limit": self.limit,
            "holder": holder,
            "lease": self.lease,
            "ahead": self.reserve_ahead,
        }
        while True:
            # SKIP LOCKED: concurrent takers get different slots. A reserved slot's lease runs from when it frees.
            rows = self._run(
                lambda conn: conn.execute(
                    "WITH now AS (SELECT clock_timestamp() AS t), "
                    "pick AS (SELECT s.slot, s.free_at FROM pogo_invoiced_sync_limits.slots s, now "
                    "  WHERE s.credential = %(credential)s AND s.slot < %(limit)s "
                    "    AND s.free_at <= now.t + %(ahead)s * interval '1 second' "
                    "    AND (s.holder IS NULL OR s.held_until <= now.t) "
                    "  ORDER BY s.free_at LIMIT 1 FOR UPDATE SKIP LOCKED) "
                    "UPDATE pogo_invoiced_sync_limits.slots s "
                    "SET holder = %(holder)s, "
                    "  held_until = greatest(pick.free_at, now.t) + %(lease)s * interval '1 second' "
                    "FROM pick, now WHERE s.credential = %(credential)s AND s.slot = pick.slot "
                    "RETURNING s.slot, greatest(extract(epoch FROM pick.free_at - now.t), 0)",
                    params,
                ).fetchall()
            )
            if rows:
                return rows[0][0], float(rows[0][1]), None
            if adopt is not None and (kept := adopt()) is not None:
                return kept[0], 0.0, kept
            # Otherwise: how long until the next one is free (a held slot counts from the end of its lease).
            wait = self._run(
                lambda conn: conn.execute(
                    "SELECT extract(epoch FROM greatest(min(CASE WHEN holder IS NULL "
                    "  OR held_until <= clock_timestamp() THEN free_at ELSE held_until END), clock_timestamp()) "
                    "  - clock_timestamp()) "
                    "FROM pogo_invoiced_sync_limits.slots WHERE credential = %(credential)s AND slot < %(limit)s",
                    params,
                ).fetchall()
            )[0][0]
            # Released slots are not announced: look again when the next is due to free (less what we may take
            # ahead), or soon if all are in flight (a lease end is far off; a release comes any moment).
            if wait is None or float(wait) > MAX_SLEEP + self.reserve_ahead:
                pause = POLL_SECONDS
            else:
                pause = max(float(wait) - self.reserve_ahead, 0.002)
                pause = pause if self.reserve_ahead else min(pause, POLL_SECONDS)
            with self._wake:
                self._wake.wait(pause)

    def release(self, slot: int, holder: str, completed: float | None = None) -> None:
        """Give the slot back; it cools down before anyone takes it again.

        :param completed: ``time.monotonic()`` when the slot's request completed (default: now); the cooldown
            counts from then.
        """
        completed = time.monotonic() if completed is None else completed
        params = {"credential": self.credential, "slot": slot, "holder": holder}

        def free(conn: Any) -> list[tuple]:
            # Measured just before the statement leaves, so the database's clock_timestamp() (later still) minus it
            # is never earlier than the completion: the cooldown is never shortened.
            since = time.monotonic() - completed
            return conn.execute(
                "UPDATE pogo_invoiced_sync_limits.slots SET holder = NULL, held_until = NULL, "
                "free_at = clock_timestamp() + %(cooldown)s * interval '1 second' "
                "WHERE credential = %(credential)s AND slot = %(slot)s AND holder = %(holder)s RETURNING slot",
                {**params, "cooldown": max(self.cooldown - since, 0.0) if self.cooldown else 0.0},
            ).fetchall()

        self._run(free)
        if not self.cooldown:
            with self._wake:
                self._wake.notify_all()  # free now: threads of this process may take it

    @contextlib.contextmanager
    def slot(self) -> Iterator[float]:
        """Hold a slot for the duration of one request; yields the seconds waited."""
        if self._keeping and not self.cooldown:
            with self._kept_slot() as waited:
                yield waited
            return
        slot, holder, waited = self.acquire()
        try:
            yield waited
        finally:
            self._release_quietly(slot, holder, time.monotonic())

    def _release_quietly(self, slot: int, holder: str, completed: float | None = None) -> None:
        try:
            self.release(slot, holder, completed)
        except Exception:  # the lease frees it; a failed release must not hide the request's own outcome
            log.warning("could not release a shared API slot; it frees itself within %.0f s", self.lease, exc_info=True)

    @contextlib.contextmanager
    def keep(self) -> Iterator[None]:
        """Within this scope in-flight slots are kept across requests for ``KEEP_SECONDS`` (see the module's doc).

        A per-second budget is never kept: its slots must cool down after every request.
        """
        with self._kept_lock:
            self._keeping += 1
        kept: list[tuple[int, str, float]] = []
        try:
            yield
        finally:
            with self._kept_lock:
                self._keeping -= 1
                if not self._keeping:
                    kept, self._kept = self._kept, []
            for slot, holder, _until in kept:
                self._release_quietly(slot, holder)

    def _adopt_idle(self) -> tuple[int, str, float] | None:
        """A kept slot no request of this process is using (None if there is none)."""
        with self._kept_lock:
            return self._kept.pop() if self._kept else None

    @contextlib.contextmanager
    def _kept_slot(self) -> Iterator[float]:
        """An idle kept slot, if within its keep time; else a fresh one, kept.

        Kept slots belong to no thread: any thread takes an idle one, also while it waits at the database, or a
        thread gone idle would hold its slot while another waits for slots other processes keep the same way.
        """
        kept = self._adopt_idle()
        waited = 0.0
        if kept is not None and time.monotonic() >= kept[2]:
            self._release_quietly(kept[0], kept[1])  # kept long enough: others waiting for the key get a turn
            kept = None
        if kept is None:
            started = time.monotonic()
            holder = str(uuid.uuid4())
            slot, _due, adopted = self._take(holder, self._adopt_idle)  # an in-flight slot is never reserved ahead
            waited = time.monotonic() - started
            kept = adopted or (slot, holder, time.monotonic() + KEEP_SECONDS)
        try:
            yield waited
        finally:
            with self._kept_lock:
                if self._keeping:
                    self._kept.append(kept)
                    kept = None
            if kept is None:
                with self._wake:
                    self._wake.notify_all()  # a thread of this process waiting for a slot may adopt this one
            else:  # the scope ended during the request: give the slot back now
                self._release_quietly(kept[0], kept[1])


def rate_limiter(connect: Callable[[], Any], credential: str, per_second: float, lease: float = 120.0) -> SharedSlots:
    """At most ``per_second`` request arrivals in any one-second window, across every process using ``credential``."""
    return SharedSlots(connect, credential, max(1, int(per_second)), cooldown=1.0, lease=lease)


def in_flight_limiter(connect: Callable[[], Any], credential: str, limit: int, lease: float = 120.0) -> SharedSlots:
    """At most ``limit`` requests in flight at once, across every process using ``credential``."""
    return SharedSlots(connect, credential, limit, cooldown=0.0, lease=lease)


def slot_state(connect: Callable[[], Any], credential: str) -> list[dict[str, Any]]:
    """The slots of one credential as the database holds them (for tests and the operator's curiosity)."""
    with connect() as conn:
        rows = conn.execute(
            "SELECT slot, free_at, holder, held_until FROM pogo_invoiced_sync_limits.slots WHERE credential = %s "
            "ORDER BY slot",
            (credential,),
        ).fetchall()
    return [{"slot": s, "free_at": f, "holder": h, "held_until": u} for s, f, h, u in rows]
