"""The report step: the run's per-direction summary, stored with the run."""
from __future__ import annotations

from pogo_invoiced_sync.engine.link_store import LinkStore
from pogo_invoiced_sync.engine.mapping import SYSTEMS, Mapping


def summarise(store: LinkStore, mapping: Mapping, run_id: str) -> dict:
    """Per-direction counts of the run — created, updated, conflicts, rejected, waiting — stored as its report."""
    summary: dict[str, dict[str, int]] = {}
    labels = {("create", "ok"): "created", ("update", "ok"): "updated", ("conflict", "ok"): "conflicts",
              ("wait", "waiting"): "waiting", ("report", "reported"): "reported", ("link", "ok"): "linked",
              ("drift", "reported"): "drift", ("delete_detected", "reported"): "confirmed_gone",
              ("guard", "failed"): "guard_tripped"}
    for direction, operation, outcome, count in store.run_counts(mapping.flow, run_id):
        label = labels.get((operation, outcome))
        if outcome == "failed" and operation != "guard":
            label = "rejected"
        elif outcome == "planned":
            label = f"planned_{operation}"
        if label:
            bucket = summary.setdefault(direction or "both", {})
            bucket[label] = bucket.get(label, 0) + int(count)
    extracts = {s: store.extract_info(mapping.flow, run_id, s) for s in SYSTEMS}
    result = {"flow": mapping.flow, "run_id": run_id, "by_direction": summary,
              "extracted": {s: (e or {}).get("row_count", 0) for s, e in extracts.items()},
              "unchanged": {s: max(0, (e or {}).get("row_count", 0) - ((e or {}).get("changed") or 0))
                            for s, e in extracts.items()}}
    store.finish_run(mapping.flow, run_id, result)
    store.drop_staging(mapping.flow, run_id)
    return result
