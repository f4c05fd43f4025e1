"""What the console reads from and writes to the link store: health per flow, records, lists, operator actions.

Every read is one indexed query with a limit (see migration 7); every action is one transaction that checks its
preconditions under row locks, writes its change and a sync-log row naming who asked, or raises and writes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from pogo_invoiced_sync.engine.flow_mapping import DIRECTIONS, INVOICED, POGO, SYSTEMS, FlowMapping, other
from pogo_invoiced_sync.engine.link_store import DEFAULT_SCHEMA, LinkStore

CONSOLE_RUN = "console"  # run_id of the sync-log rows the console writes
PAGE = 50
HISTORY = 200
LOG_COLUMNS = (
    "id",
    "logged_at",
    "run_id",
    "flow",
    "direction",
    "operation",
    "outcome",
    "reason",
    "poweroffice_go_id",
    "invoiced_id",
    "before",
    "after",
    "actor",
)


class ActionError(Exception):
    """An action that cannot be carried out; ``status`` is the HTTP status that says why (404, 409, 422)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _one(cur: psycopg.Cursor) -> tuple:
    """The row a statement that always returns one (``RETURNING``, an aggregate) returned."""
    row = cur.fetchone()
    assert row is not None
    return row


def _log_dict(row: tuple) -> dict:
    return dict(zip(LOG_COLUMNS, row, strict=True))


class ConsoleStore:
    """The console's queries over one link-store schema."""

    def __init__(
        self,
        connect: Callable[[], psycopg.Connection],
        mappings: dict[str, FlowMapping],
        schema: str = DEFAULT_SCHEMA,
        dag_id: Callable[[str], str] | None = None,
    ) -> None:
        self.store = LinkStore(connect, schema)
        self.mappings = mappings
        self.dag_id = dag_id or (lambda flow: f"sync_{flow}")

    def close(self) -> None:
        self.store.close()

    def q(self, text: str, **identifiers: str):
        return self.store.q(text, **identifiers)

    def _rows(self, run: Callable[[psycopg.Cursor], Any]) -> list[tuple]:
        """The rows of one statement, which ``run`` executes on a cursor (the SQL stays visible at the call)."""
        with self.store.transaction() as cur:
            run(cur)
            return cur.fetchall()

    def mapping(self, flow: str) -> FlowMapping:
        if flow not in self.mappings:
            raise ActionError(404, f"unknown flow {flow!r}; flows: {', '.join(sorted(self.mappings))}")
        return self.mappings[flow]

    def migrated(self) -> bool:
        """Whether the link store exists yet (no run has happened before the first one migrates it)."""
        rows = self._rows(
            lambda cur: cur.execute(
                self.q("SELECT to_regclass(%s) IS NOT NULL"), (f'"{self.store.schema}".operator_decisions',)
            )
        )
        return bool(rows[0][0])

    # -- health -------------------------------------------------------------------------------------------------

    def health(self, flow: str) -> dict:
        """One flow's state: last run, linked pairs, open conflicts, last run's failures, waiting, last drift."""
        self.mapping(flow)
        last = self._rows(
            lambda cur: cur.execute(
                self.q(
                    "SELECT run_id, started_at, finished_at, summary, params FROM {s}.runs WHERE flow = %s "
                    "ORDER BY started_at DESC LIMIT 1"
                ),
                (flow,),
            )
        )
        links = self._rows(
            lambda cur: cur.execute(
                self.q("SELECT state, count(*) FROM {s}.links WHERE flow = %s GROUP BY state"), (flow,)
            )
        )
        open_conflicts = self._rows(
            lambda cur: cur.execute(self.q("SELECT count(*) FROM {s}.v_undecided_conflicts WHERE flow = %s"), (flow,))
        )[0][0]
        waiting = self._rows(
            lambda cur: cur.execute(self.q("SELECT count(*) FROM {s}.v_waiting WHERE flow = %s"), (flow,))
        )[0][0]
        excluded = self._rows(
            lambda cur: cur.execute(self.q("SELECT count(*) FROM {s}.exclusions WHERE flow = %s"), (flow,))
        )[0][0]
        pending = self._rows(
            lambda cur: cur.execute(
                self.q("SELECT count(*) FROM {s}.operator_decisions WHERE flow = %s AND status = 'pending'"), (flow,)
            )
        )[0][0]
        result: dict[str, Any] = {
            "flow": flow,
            "dag_id": self.dag_id(flow),
            "last_run": None,
            "linked": sum(n for state, n in links if state == "active"),
            "links_by_state": dict(links),
            "open_conflicts": open_conflicts,
            "waiting": waiting,
            "excluded": excluded,
            "pending_decisions": pending,
            "failures": 0,
            "drift": None,
        }
        if last:
            run_id, started, finished, summary, params = last[0]
            failed = self._rows(
                lambda cur: cur.execute(
                    self.q("SELECT count(*) FROM {s}.sync_log WHERE flow = %s AND run_id = %s AND outcome = 'failed'"),
                    (flow, run_id),
                )
            )[0][0]
            guard = self._rows(
                lambda cur: cur.execute(
                    self.q("SELECT count(*) FROM {s}.sync_log WHERE flow = %s AND run_id = %s AND operation = 'guard'"),
                    (flow, run_id),
                )
            )[0][0]
            outcome = (
                "running"
                if finished is None
                else (
                    "stopped by the change guard"
                    if guard
                    else "finished with rejected records"
                    if failed
                    else "finished"
                )
            )
            result["last_run"] = {
                "run_id": run_id,
                "started_at": started,
                "finished_at": finished,
                "outcome": outcome,
                "summary": summary,
                "params": params,
            }
            result["failures"] = failed
        drift_run = self._rows(
            lambda cur: cur.execute(
                self.q(
                    "SELECT run_id, started_at FROM {s}.runs WHERE flow = %s AND finished_at IS NOT NULL AND "
                    "(params->>'full_refresh' = 'true' OR summary::text LIKE '%%\"drift\"%%') "
                    "ORDER BY started_at DESC LIMIT 1"
                ),
                (flow,),
            )
        )
        if drift_run:
            run_id, started = drift_run[0]
            counts = self._rows(
                lambda cur: cur.execute(
                    self.q(
                        "SELECT count(*) FILTER (WHERE reason LIKE 'fields differ%%'), "
                        "count(*) FILTER (WHERE reason LIKE 'only in%%') FROM {s}.sync_log "
                        "WHERE flow = %s AND run_id = %s AND operation = 'drift'"
                    ),
                    (flow, run_id),
                )
            )[0]
            result["drift"] = {
                "run_id": run_id,
                "started_at": started,
                "pairs_differing": counts[0],
                "one_side_only": counts[1],
            }
        return result

    def runs_chart(self, flow: str, days: int = 14) -> list[dict]:
        """Per run of the last ``days``: created, updated, conflicts, rejected (all directions), API calls and 429s."""
        self.mapping(flow)
        rows = self._rows(
            lambda cur: cur.execute(
                self.q(
                    "SELECT r.run_id, r.started_at, r.summary, "
                    "(SELECT coalesce(sum(e.api_calls), 0) FROM {s}.extracts e "
                    "WHERE e.flow = r.flow AND e.run_id = r.run_id) FROM {s}.runs r WHERE r.flow = %s "
                    "AND r.started_at > now() - make_interval(days => %s) AND r.summary IS NOT NULL "
                    "ORDER BY r.started_at DESC LIMIT 500"
                ),
                (flow, days),
            )
        )
        out = []
        for run_id, started, summary, extract_calls in reversed(rows):
            counts = {"created": 0, "updated": 0, "conflicts": 0, "rejected": 0}
            for bucket in (summary.get("by_direction") or {}).values():
                for key in counts:
                    counts[key] += int(bucket.get(key, 0))
            api = summary.get("api") or {}
            calls = sum(int(v.get("calls_total", 0)) for v in api.values() if isinstance(v, dict)) if api else None
            throttled = (
                sum(int((v.get("statuses") or {}).get("429", 0)) for v in api.values() if isinstance(v, dict))
                if api
                else None
            )
            out.append(
                {
                    "run_id": run_id,
                    "started_at": started,
                    **counts,
                    "api_calls": calls if calls is not None else int(extract_calls),
                    "api_calls_source": "summary" if calls is not None else "listing calls (extracts)",
                    "http_429": throttled,
                }
            )
        return out

    # -- lists behind the numbers ------------------------------------------------------------------------------

    def listing(
        self, kind: str, flow: str, run_id: str | None = None, before_id: int | None = None, after: str | None = None
    ) -> dict:
        """The rows behind a number of the health page, newest first, a page at a time (keyset on the log id)."""
        self.mapping(flow)
        if kind == "links":
            rows = self._rows(
                lambda cur: cur.execute(
                    self.q(
                        "SELECT poweroffice_go_id, invoiced_id, state, updated_at FROM {s}.links WHERE flow = %s "
                        "AND poweroffice_go_id > %s ORDER BY poweroffice_go_id LIMIT %s"
                    ),
                    (flow, after or "", PAGE + 1),
                )
            )
            pairs = [
                dict(zip(("poweroffice_go_id", "invoiced_id", "state", "updated_at"), r, strict=True)) for r in rows
            ]
            more = len(pairs) > PAGE
            pairs = pairs[:PAGE]
            return {"kind": kind, "flow": flow, "rows": pairs, "next": pairs[-1]["poweroffice_go_id"] if more else None}
        cols = (
            "l.id, l.logged_at, l.run_id, l.flow, l.direction, l.operation, l.outcome, l.reason, "
            "l.poweroffice_go_id, l.invoiced_id, l.before, l.after, l.actor"
        )
        cursor = "AND l.id < %(before)s" if before_id else ""
        params: dict[str, Any] = {"flow": flow, "run_id": run_id, "before": before_id, "limit": PAGE + 1}
        if kind == "conflicts":
            source, cond = "v_undecided_conflicts", ""
        elif kind in ("failures", "drift", "run"):
            if run_id is None:
                raise ActionError(422, f"{kind} needs a run_id")
            source = "sync_log"
            cond = (
                "AND l.run_id = %(run_id)s AND l.outcome = 'failed'"
                if kind == "failures"
                else "AND l.run_id = %(run_id)s AND l.operation = 'drift'"
                if kind == "drift"
                else "AND l.run_id = %(run_id)s"
            )
        elif kind in ("waiting", "excluded"):
            return self._by_time(kind, flow, after)
        else:
            raise ActionError(404, f"unknown list {kind!r}")
        entries = [
            _log_dict(r)
            for r in self._rows(
                lambda cur: cur.execute(
                    self.q(
                        f"SELECT {cols} FROM {{s}}.{source} l WHERE l.flow = %(flow)s {cond} {cursor} "
                        "ORDER BY l.id DESC LIMIT %(limit)s"
                    ),
                    params,
                )
            )
        ]
        more = len(entries) > PAGE
        entries = entries[:PAGE]
        return {
            "kind": kind,
            "flow": flow,
            "run_id": run_id,
            "rows": entries,
            "next": entries[-1]["id"] if more else None,
        }

    def _by_time(self, kind: str, flow: str, after: str | None) -> dict:
        """Waiting or excluded records newest first, a page at a time: keyset on (time, system, id), as ``after``."""
        # Fixed SQL per list (the security scan checks that no value is formatted into SQL text).
        if kind == "waiting":
            select, at = "SELECT system, record_id, reason, since FROM {s}.v_waiting", "since"
            extra: tuple[str, ...] = ("reason",)
        else:
            select, at = "SELECT system, record_id, actor, reason, excluded_at FROM {s}.exclusions", "excluded_at"
            extra = ("actor", "reason")
        params: list[Any] = [flow]
        if after:
            try:
                since, system, record_id = after.split("|", 2)
                params += [dt.datetime.fromisoformat(since).isoformat(), system, record_id]
            except ValueError:
                raise ActionError(422, f"after must be a cursor this list returned as next: {after!r}") from None
        cond = ""
        if after:
            cond = (
                "AND (since, system, record_id) < (%s::timestamptz, %s, %s)"
                if kind == "waiting"
                else "AND (excluded_at, system, record_id) < (%s::timestamptz, %s, %s)"
            )
        params.append(PAGE + 1)
        sql = f"{select} WHERE flow = %s {cond} ORDER BY {at} DESC, system DESC, record_id DESC LIMIT %s"
        rows = self._rows(lambda cur: cur.execute(self.q(sql), params))
        names = ("system", "record_id", *extra, "since")
        found = [dict(zip(names, r, strict=True)) for r in rows]
        more = len(found) > PAGE
        found = found[:PAGE]
        last = found[-1] if found else None
        after_last = f"{last['since'].isoformat()}|{last['system']}|{last['record_id']}" if more and last else None
        return {"kind": kind, "flow": flow, "rows": found, "next": after_last}

    # -- records -----------------------------------------------------------------------------------------------

    def search(self, text: str) -> list[dict]:
        """Records whose id on either system is ``text``, or whose name starts with it (case-insensitive)."""
        text = text.strip()
        if not text:
            return []
        flows = list(self.mappings)
        rows = self._rows(
            lambda cur: cur.execute(
                self.q(
                    "(SELECT flow, system, record_id, vals->>'name' FROM {s}.records "
                    "WHERE flow = ANY(%s) AND system = ANY(%s) "
                    "AND record_id = %s) UNION "
                    "(SELECT flow, system, record_id, vals->>'name' FROM {s}.records "
                    "WHERE lower(vals->>'name') LIKE %s "
                    "ORDER BY lower(vals->>'name') LIMIT %s)"
                ),
                (flows, list(SYSTEMS), text, _prefix(text.lower()), PAGE),
            )
        )
        return [dict(zip(("flow", "system", "record_id", "name"), r, strict=True)) for r in rows][:PAGE]

    def record(self, flow: str, system: str, record_id: str) -> dict:
        """A record, its counterpart and link, both mirrored values, exclusions, decisions and its history."""
        self.mapping(flow)
        if system not in SYSTEMS:
            raise ActionError(404, f"unknown system {system!r}; systems: {', '.join(SYSTEMS)}")
        column = "poweroffice_go_id" if system == POGO else "invoiced_id"
        link = self._rows(
            lambda cur: cur.execute(
                self.q(
                    "SELECT poweroffice_go_id, invoiced_id, base, state, state_reason, created_at, updated_at "
                    f"FROM {{s}}.links WHERE flow = %s AND {column} = %s"
                ),
                (flow, record_id),
            )
        )
        ids = {system: record_id, other(system): None}
        link_info = None
        if link:
            row = link[0]
            ids = {POGO: row[0], INVOICED: row[1]}
            link_info = dict(
                zip(
                    ("poweroffice_go_id", "invoiced_id", "base", "state", "state_reason", "created_at", "updated_at"),
                    row,
                    strict=True,
                )
            )
        sides: dict[str, dict[str, Any] | None] = {}
        for s in SYSTEMS:
            sides[s] = None
            if ids[s] is not None:
                got = self._rows(
                    lambda cur, s=s: cur.execute(  # type: ignore[misc]
                        self.q(
                            "SELECT record_id, vals, routed, external_ref, changed_at, dirty, seen_run "
                            "FROM {s}.records WHERE flow = %s AND system = %s AND record_id = %s"
                        ),
                        (flow, s, ids[s]),
                    )
                )
                if got:
                    sides[s] = dict(
                        zip(
                            ("record_id", "vals", "routed", "external_ref", "changed_at", "dirty", "seen_run"),
                            got[0],
                            strict=True,
                        )
                    )
        if sides[system] is None and link_info is None:
            raise ActionError(404, f"no {system} record {record_id!r} in flow {flow}")
        excluded = self._rows(
            lambda cur: cur.execute(
                self.q(
                    "SELECT system, record_id, actor, reason, excluded_at FROM {s}.exclusions "
                    "WHERE flow = %s AND ((system = 'poweroffice_go' AND record_id = %s) "
                    "OR (system = 'invoiced' AND record_id = %s))"
                ),
                (flow, ids[POGO], ids[INVOICED]),
            )
        )
        cols = (
            "id, logged_at, run_id, flow, direction, operation, outcome, reason, poweroffice_go_id, invoiced_id, "
            "before, after, actor"
        )
        history = self._rows(
            lambda cur: cur.execute(
                self.q(
                    f"SELECT {cols} FROM {{s}}.sync_log WHERE flow = %s AND poweroffice_go_id = %s UNION "
                    f"SELECT {cols} FROM {{s}}.sync_log WHERE flow = %s AND invoiced_id = %s ORDER BY id DESC LIMIT %s"
                ),
                (flow, ids[POGO], flow, ids[INVOICED], HISTORY),
            )
        )
        decisions = []
        if ids[POGO] is not None:
            decisions = [
                dict(
                    zip(
                        (
                            "id",
                            "kind",
                            "field",
                            "value",
                            "conflict_id",
                            "actor",
                            "decided_at",
                            "status",
                            "run_id",
                            "done_at",
                        ),
                        r,
                        strict=True,
                    )
                )
                for r in self._rows(
                    lambda cur: cur.execute(
                        self.q(
                            "SELECT id, kind, field, value, conflict_id, actor, decided_at, status, run_id, done_at "
                            "FROM {s}.operator_decisions WHERE flow = %s AND poweroffice_go_id = %s "
                            "ORDER BY id DESC LIMIT 50"
                        ),
                        (flow, ids[POGO]),
                    )
                )
            ]
        open_ids = set()
        if ids[POGO] is not None:
            open_ids = {
                r[0]
                for r in self._rows(
                    lambda cur: cur.execute(
                        self.q("SELECT id FROM {s}.v_undecided_conflicts WHERE flow = %s AND poweroffice_go_id = %s"),
                        (flow, ids[POGO]),
                    )
                )
            }
        mapping = self.mappings[flow]
        return {
            "flow": flow,
            "system": system,
            "record_id": record_id,
            "ids": ids,
            "link": link_info,
            "records": sides,
            "fields": [f.name for f in mapping.fields],
            "excluded": [
                dict(zip(("system", "record_id", "actor", "reason", "excluded_at"), r, strict=True)) for r in excluded
            ],
            "decisions": decisions,
            "open_conflicts": sorted(open_ids, reverse=True),
            "history": [_log_dict(r) for r in history],
        }

    # -- actions -----------------------------------------------------------------------------------------------

    def _log(
        self,
        cur,
        flow: str,
        actor: str,
        operation: str,
        reason: str,
        pogo_id=None,
        inv_id=None,
        before=None,
        after=None,
        outcome: str = "ok",
    ) -> None:
        cur.execute(
            self.q(
                "INSERT INTO {s}.sync_log (run_id, flow, operation, outcome, reason, poweroffice_go_id, invoiced_id, "
                "before, after, actor) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            ),
            (
                CONSOLE_RUN,
                flow,
                operation,
                outcome,
                reason,
                pogo_id,
                inv_id,
                None if before is None else Jsonb(before),
                None if after is None else Jsonb(after),
                actor,
            ),
        )

    def _dirty(self, cur, flow: str, pairs: list[tuple[str, str | None]]) -> None:
        for system, record_id in pairs:
            if record_id is not None:
                cur.execute(
                    self.q("UPDATE {s}.records SET dirty = true WHERE flow = %s AND system = %s AND record_id = %s"),
                    (flow, system, record_id),
                )

    def resolve(
        self, flow: str, conflict_id: int, choice: str, value: Any = None, *, actor: str, preview: bool = False
    ) -> dict:
        """Decide a conflict's field: the value one side had (``choice`` a system) or ``value`` (``choice`` 'value')."""
        mapping = self.mapping(flow)
        with self.store.transaction() as cur:
            cols = (
                "id, logged_at, run_id, flow, direction, operation, outcome, reason, poweroffice_go_id, invoiced_id, "
                "before, after, actor"
            )
            cur.execute(
                self.q(f"SELECT {cols} FROM {{s}}.sync_log WHERE id = %s AND flow = %s FOR UPDATE"), (conflict_id, flow)
            )
            row = cur.fetchone()
            if row is None:
                raise ActionError(404, f"no conflict {conflict_id} in flow {flow}")
            entry = _log_dict(row)
            if entry["operation"] not in ("conflict", "report"):
                raise ActionError(422, f"sync-log row {conflict_id} is a {entry['operation']}, not a conflict")
            pogo_id, inv_id = entry["poweroffice_go_id"], entry["invoiced_id"]
            cur.execute(
                self.q(
                    "SELECT id, kind, actor, decided_at, conflict_id FROM {s}.operator_decisions "
                    "WHERE flow = %s AND status <> 'cancelled' AND (conflict_id = %s OR "
                    "(poweroffice_go_id = %s AND conflict_id > %s)) ORDER BY id DESC LIMIT 1"
                ),
                (flow, conflict_id, pogo_id, conflict_id),
            )
            taken = cur.fetchone()
            if taken:
                raise ActionError(
                    409,
                    f"conflict {conflict_id} is already decided: decision {taken[0]} ({taken[1]}) "
                    f"by {taken[2]} at {taken[3]:%Y-%m-%d %H:%M:%S %Z} on conflict {taken[4]}",
                )
            fields = list((entry["after"] or {}) | (entry["before"] or {}))
            if entry["operation"] == "conflict" and pogo_id is not None:
                cur.execute(
                    self.q(
                        "SELECT id FROM {s}.sync_log WHERE flow = %s AND poweroffice_go_id = %s "
                        "AND operation = 'conflict' AND id > %s AND before ?| %s ORDER BY id DESC LIMIT 1"
                    ),
                    (flow, pogo_id, conflict_id, fields),
                )
                newer = cur.fetchone()
                if newer:
                    raise ActionError(
                        409,
                        f"conflict {conflict_id} is stale: conflict {newer[0]} on the same field "
                        "is newer; decide that one",
                    )
            if entry["operation"] == "report" or choice == "dismiss":
                if choice != "dismiss":
                    raise ActionError(
                        422,
                        "a reported record is resolved by hand in the systems; mark it reviewed with choice 'dismiss'",
                    )
                text = (
                    f"mark {entry['operation']} {conflict_id} of pair {pogo_id} / {inv_id} as reviewed; "
                    "nothing is written"
                )
                if not preview:
                    cur.execute(
                        self.q(
                            "INSERT INTO {s}.operator_decisions (flow, kind, poweroffice_go_id, invoiced_id, "
                            "conflict_id, actor, status, done_at) VALUES (%s, 'dismiss', %s, %s, %s, %s, "
                            "'done', now()) RETURNING id"
                        ),
                        (flow, pogo_id, inv_id, conflict_id, actor),
                    )
                    self._log(cur, flow, actor, "operator_dismiss", f"{text} (by {actor})", pogo_id, inv_id)
                return {"action": "dismiss", "applied": not preview, "message": text}
            field = fields[0] if len(fields) == 1 else None
            if field is None:
                raise ActionError(422, f"conflict {conflict_id} names no single field")
            spec = mapping.field(field)
            if spec.is_reference or spec.immutable_on:
                raise ActionError(
                    422, f"{field} is a reference or cannot change on one side; resolve it in the systems"
                )
            loser = DIRECTIONS.get(entry["direction"] or "")
            if loser is None:
                raise ActionError(422, f"conflict {conflict_id} has no direction")
            sides = {loser: (entry["before"] or {}).get(field), other(loser): (entry["after"] or {}).get(field)}
            if choice in SYSTEMS:
                chosen = sides[choice]
            elif choice == "value":
                chosen = None if value in (None, "") else str(value)
            else:
                raise ActionError(422, f"choice must be poweroffice_go, invoiced, value or dismiss: {choice!r}")
            cur.execute(
                self.q(
                    "SELECT system, vals->%s FROM {s}.records WHERE flow = %s AND ((system = 'poweroffice_go' "
                    "AND record_id = %s) OR (system = 'invoiced' AND record_id = %s))"
                ),
                (field, flow, pogo_id, inv_id),
            )
            now = dict(cur.fetchall())
            writes = [s for s in SYSTEMS if now.get(s) != chosen]
            text = (
                f"{field} of pair {pogo_id} / {inv_id} becomes {chosen!r}; the next run writes it to "
                f"{' and '.join(writes) if writes else 'neither side (both hold it already)'}"
                f" (now: poweroffice_go {now.get(POGO)!r}, invoiced {now.get(INVOICED)!r})"
            )
            if preview:
                return {
                    "action": "resolve",
                    "applied": False,
                    "message": text,
                    "field": field,
                    "value": chosen,
                    "writes": writes,
                }
            # A newer pending decision on the same field replaces the older one.
            cur.execute(
                self.q(
                    "UPDATE {s}.operator_decisions SET status = 'cancelled' WHERE flow = %s AND "
                    "poweroffice_go_id = %s AND field = %s AND status = 'pending'"
                ),
                (flow, pogo_id, field),
            )
            cur.execute(
                self.q(
                    "INSERT INTO {s}.operator_decisions (flow, kind, poweroffice_go_id, invoiced_id, field, "
                    "value, conflict_id, actor) VALUES (%s, 'resolve', %s, %s, %s, %s, %s, %s) RETURNING id"
                ),
                (flow, pogo_id, inv_id, field, Jsonb(chosen), conflict_id, actor),
            )
            decision = _one(cur)[0]
            self._log(
                cur,
                flow,
                actor,
                "operator_resolve",
                f"decision {decision} by {actor}: {text}",
                pogo_id,
                inv_id,
                before={field: now.get(POGO) if now.get(POGO) != chosen else now.get(INVOICED)},
                after={field: chosen},
                outcome="requested",
            )
            self._dirty(cur, flow, [(POGO, pogo_id), (INVOICED, inv_id)])
        return {
            "action": "resolve",
            "applied": True,
            "decision": decision,
            "message": text,
            "field": field,
            "value": chosen,
            "writes": writes,
        }

    def mark_for_retry(self, flow: str, system: str, record_id: str, *, actor: str, preview: bool = False) -> dict:
        """Make a record (and its counterpart) dirty, so the next run reconciles and writes it again."""
        record = self.record(flow, system, record_id)
        if record["records"][system] is None:
            raise ActionError(404, f"no {system} record {record_id!r} mirrored in flow {flow}")
        if record["excluded"]:
            raise ActionError(409, f"{system} record {record_id} is excluded from syncing; include it first")
        text = (
            f"{system} record {record_id} is retried: marked for the next run of {self.dag_id(flow)}, which starts now"
        )
        if preview:
            return {"action": "retry", "applied": False, "message": text}
        with self.store.transaction() as cur:
            self._dirty(cur, flow, list(record["ids"].items()))
            self._log(
                cur, flow, actor, "operator_retry", f"{text} (by {actor})", record["ids"][POGO], record["ids"][INVOICED]
            )
        return {"action": "retry", "applied": True, "message": text}

    def unlink(self, flow: str, pogo_id: str, *, actor: str, preview: bool = False) -> dict:
        """Remove a pair's link and pin both records, so no run links them again or creates counterparts."""
        self.mapping(flow)
        with self.store.transaction() as cur:
            cur.execute(
                self.q(
                    "SELECT invoiced_id, base, state FROM {s}.links WHERE flow = %s AND poweroffice_go_id = %s "
                    "FOR UPDATE"
                ),
                (flow, pogo_id),
            )
            row = cur.fetchone()
            if row is None:
                raise ActionError(404, f"no link of poweroffice_go record {pogo_id!r} in flow {flow}")
            inv_id, base, state = row
            text = (
                f"unlink poweroffice_go {pogo_id} from invoiced {inv_id} and exclude both from syncing (no run "
                "re-links them or creates counterparts until they are included or relinked); the merge base "
                "is kept in the sync log"
            )
            if preview:
                return {"action": "unlink", "applied": False, "message": text}
            cur.execute(self.q("DELETE FROM {s}.links WHERE flow = %s AND poweroffice_go_id = %s"), (flow, pogo_id))
            for system, rid in ((POGO, pogo_id), (INVOICED, inv_id)):
                cur.execute(
                    self.q(
                        "INSERT INTO {s}.exclusions (flow, system, record_id, actor, reason) VALUES "
                        "(%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
                    ),
                    (
                        flow,
                        system,
                        rid,
                        actor,
                        f"unlinked from {other(system)} {inv_id if system == POGO else pogo_id}",
                    ),
                )
            cur.execute(
                self.q(
                    "UPDATE {s}.operator_decisions SET status = 'cancelled' WHERE flow = %s "
                    "AND poweroffice_go_id = %s AND status = 'pending'"
                ),
                (flow, pogo_id),
            )
            self._log(
                cur,
                flow,
                actor,
                "operator_unlink",
                f"{text} (by {actor}; link state was {state})",
                pogo_id,
                inv_id,
                before=base,
            )
        return {"action": "unlink", "applied": True, "message": text}

    def relink(self, flow: str, pogo_id: str, inv_id: str, *, actor: str, preview: bool = False) -> dict:
        """Link two unlinked records of the flow; the next run merges them without a merge base (the flow's policy)."""
        mapping = self.mapping(flow)
        with self.store.transaction() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{self.store.schema}:console:{flow}",))
            for system, rid in ((POGO, pogo_id), (INVOICED, inv_id)):
                cur.execute(
                    self.q("SELECT 1 FROM {s}.records WHERE flow = %s AND system = %s AND record_id = %s"),
                    (flow, system, rid),
                )
                if cur.fetchone() is None:
                    raise ActionError(404, f"no {system} record {rid!r} mirrored in flow {flow}")
                column = "poweroffice_go_id" if system == POGO else "invoiced_id"
                cur.execute(
                    self.q(f"SELECT poweroffice_go_id, invoiced_id FROM {{s}}.links WHERE flow = %s AND {column} = %s"),
                    (flow, rid),
                )
                taken = cur.fetchone()
                if taken:
                    raise ActionError(
                        409,
                        f"{system} record {rid} is already linked (poweroffice_go {taken[0]} / "
                        f"invoiced {taken[1]}); unlink that pair first",
                    )
            text = (
                f"link poweroffice_go {pogo_id} with invoiced {inv_id} and include both in syncing; the next run "
                f"merges them without a merge base: differing fields go by the flow's policy ({mapping.conflict})"
            )
            if preview:
                return {"action": "relink", "applied": False, "message": text}
            cur.execute(
                self.q(
                    "INSERT INTO {s}.links (flow, poweroffice_go_id, invoiced_id, base) VALUES (%s, %s, %s, '{{}}')"
                ),
                (flow, pogo_id, inv_id),
            )
            cur.execute(
                self.q(
                    "DELETE FROM {s}.exclusions WHERE flow = %s AND ((system = 'poweroffice_go' AND "
                    "record_id = %s) OR (system = 'invoiced' AND record_id = %s))"
                ),
                (flow, pogo_id, inv_id),
            )
            self._dirty(cur, flow, [(POGO, pogo_id), (INVOICED, inv_id)])
            self._log(cur, flow, actor, "operator_link", f"{text} (by {actor})", pogo_id, inv_id)
        return {"action": "relink", "applied": True, "message": text}

    def exclude(
        self, flow: str, system: str, record_id: str, reason: str | None, *, actor: str, preview: bool = False
    ) -> dict:
        """Pin a record: runs leave it (and its pair) alone until it is included again."""
        record = self.record(flow, system, record_id)
        if any(e["system"] == system and e["record_id"] == record_id for e in record["excluded"]):
            raise ActionError(409, f"{system} record {record_id} is already excluded")
        counterpart = record["ids"][other(system)]
        text = (
            f"exclude {system} record {record_id} from syncing"
            + (
                f": its pair with {other(system)} {counterpart} is not synchronised either"
                if counterpart
                else ": no counterpart is created or linked"
            )
            + " until it is included again"
        )
        if preview:
            return {"action": "exclude", "applied": False, "message": text}
        with self.store.transaction() as cur:
            cur.execute(
                self.q(
                    "INSERT INTO {s}.exclusions (flow, system, record_id, actor, reason) VALUES "
                    "(%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
                ),
                (flow, system, record_id, actor, reason),
            )
            if cur.rowcount == 0:
                raise ActionError(409, f"{system} record {record_id} is already excluded")
            self._log(
                cur,
                flow,
                actor,
                "operator_exclude",
                f"{text} (by {actor}{'; ' + reason if reason else ''})",
                record["ids"][POGO],
                record["ids"][INVOICED],
            )
        return {"action": "exclude", "applied": True, "message": text}

    def include(self, flow: str, system: str, record_id: str, *, actor: str, preview: bool = False) -> dict:
        """Take a pin off: the record becomes dirty, so the next run merges what changed while it was excluded."""
        self.mapping(flow)
        column = "poweroffice_go_id" if system == POGO else "invoiced_id"
        linked = (
            self._rows(
                lambda cur: cur.execute(
                    self.q(f"SELECT poweroffice_go_id, invoiced_id FROM {{s}}.links WHERE flow = %s AND {column} = %s"),
                    (flow, record_id),
                )
            )
            if system in SYSTEMS
            else []
        )
        text = f"include {system} record {record_id} in syncing again; the next run " + (
            "merges it with its counterpart"
            if linked
            else "links it to a record that carries its id or matches it, or creates its counterpart"
        )
        with self.store.transaction() as cur:
            cur.execute(
                self.q(
                    "SELECT actor, excluded_at FROM {s}.exclusions WHERE flow = %s AND system = %s "
                    "AND record_id = %s FOR UPDATE"
                ),
                (flow, system, record_id),
            )
            if cur.fetchone() is None:
                raise ActionError(
                    409 if system in SYSTEMS else 404, f"{system} record {record_id} is not excluded in flow {flow}"
                )
            if preview:
                return {"action": "include", "applied": False, "message": text}
            cur.execute(
                self.q("DELETE FROM {s}.exclusions WHERE flow = %s AND system = %s AND record_id = %s"),
                (flow, system, record_id),
            )
            pairs = [(POGO, linked[0][0]), (INVOICED, linked[0][1])] if linked else [(system, record_id)]
            self._dirty(cur, flow, pairs)
            ids = dict(pairs)
            self._log(cur, flow, actor, "operator_include", f"{text} (by {actor})", ids.get(POGO), ids.get(INVOICED))
        return {"action": "include", "applied": True, "message": text}


def _prefix(text: str) -> str:
    """A LIKE pattern matching names that start with ``text`` (its wildcards taken literally)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def as_json(value: Any) -> Any:
    """Datetimes as ISO text, for JSON answers."""
    if isinstance(value, dict):
        return {k: as_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [as_json(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value
