"""Airflow DAGs of the sync, one per mapping: sync_customers_company, sync_customers_person, sync_salesorders_invoices.

Thin on purpose: the DAG factory reads the mapping files in include/mappings; no API or database calls here.
"""

from __future__ import annotations

from pogo_invoiced_sync.dag_factory import build_all

globals().update(build_all())
