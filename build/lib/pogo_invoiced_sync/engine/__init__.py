"""The sync engine: mappings, link store and the extract/map/reconcile/upsert steps, free of Airflow."""
