"""The report step: the run's per-direction summary, stored with the run."""

from __future__ import annotations

from pogo_invoiced_sync.engine.flow_mapping import SYSTEMS, FlowMapping
from pogo_invoiced_sync.engine.link_store import LinkStore

EXAMPLES = 20  # sync-log rows shown per operation and outcome: enough to see why, few enough to read
_EXAMPLE_KEYS = ("direction", "poweroffice_go_id", "invoiced_id", "reason", "before", "after")


def summarise(store: LinkStore, mapping: FlowMapping, run_id: str, *, dry_run: bool = False) -> dict:
    """Per-direction counts of the run — created, updated, conflicts, rejected, waiting — stored as its report.

    ``unchanged`` counts the records of this flow that the run listed and found as they were (a record listed
    twice, or another flow's record in the same listing, does not count); ``examples`` holds the first sync-log
    rows of each operation and outcome, so the summary alone explains a run.
    """
    summary: dict[str, dict[str, int]] = {}
    labels = {
        ("create", "ok"): "created",
        ("update", "ok"): "updated",
        ("conflict", "ok"): "conflicts",
        ("wait", "waiting"): "waiting",
        ("report", "reported"): "reported",
        ("link", "ok"): "linked",
        ("drift", "reported"): "drift",
        ("delete_detected", "reported"): "confirmed_gone",
        ("guard", "failed"): "guard_tripped",
        ("skip", "reported"): "skipped",
    }
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
    unchanged = {
        s: max(0, store.listed_in_flow(mapping.flow, run_id, s) - ((e or {}).get("changed") or 0))
        for s, e in extracts.items()
    }
    examples: dict[str, list[dict]] = {}
    for entry in store.run_examples(mapping.flow, run_id, EXAMPLES):
        shown = {k: getattr(entry, k) for k in _EXAMPLE_KEYS}
        examples.setdefault(f"{entry.operation}/{entry.outcome}", []).append(
            {k: v for k, v in shown.items() if v is not None}
        )
    result = {
        "flow": mapping.flow,
        "run_id": run_id,
        "dry_run": dry_run,
        "by_direction": summary,
        "extracted": {s: (e or {}).get("row_count", 0) for s, e in extracts.items()},
        "unchanged": unchanged,
        "examples": examples,
        "api": store.run_api(mapping.flow, run_id),
    }
    store.finish_run(mapping.flow, run_id, result)
    store.drop_staging(mapping.flow, run_id)
    return result
