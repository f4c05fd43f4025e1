"""The operator's console: an Airflow UI plugin over the link store (health, records, operator actions)."""
