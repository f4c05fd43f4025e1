"""Airflow DAGs of the sync — sync_customers_company, sync_customers_person, sync_salesorders_invoices — one per mapping.

Thin on purpose: the DAG factory reads the mapping files in include/mappings; no API or database calls here.
"""
from pogo_invoiced_sync.dag_factory import build_all

globals().update(build_all())
