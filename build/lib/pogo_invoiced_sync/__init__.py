"""Two-way sync of PowerOffice Go and Invoiced for Apache Airflow: hooks, sync engine, operators, DAG factory."""
