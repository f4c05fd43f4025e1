"""Thin Airflow operators around the sync engine's steps."""

from __future__ import annotations

from pogo_invoiced_sync.operators.sync import (
    AnnounceLinksOperator,
    ExtractOperator,
    MapOperator,
    ReconcileOperator,
    ReportOperator,
    UpsertOperator,
)

__all__ = [
    "AnnounceLinksOperator",
    "ExtractOperator",
    "MapOperator",
    "ReconcileOperator",
    "ReportOperator",
    "UpsertOperator",
]
