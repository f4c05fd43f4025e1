"""The steps of a flow run — extract, map, reconcile, upsert — and the run report, as the operators call them.

Free of Airflow. State passes between steps through the link store (staging, mirror, plan), so each step can be
rerun on its own. Each step lives in its own module; this one gathers their entry points.
"""

from __future__ import annotations

from pogo_invoiced_sync.engine.extract import extract
from pogo_invoiced_sync.engine.map_step import map_records, mirror_row
from pogo_invoiced_sync.engine.reconcile import ChangeGuardTripped, reconcile
from pogo_invoiced_sync.engine.report import summarise
from pogo_invoiced_sync.engine.upsert import RetryableFailures, upsert

__all__ = [
    "ChangeGuardTripped",
    "RetryableFailures",
    "extract",
    "map_records",
    "mirror_row",
    "reconcile",
    "summarise",
    "upsert",
]
