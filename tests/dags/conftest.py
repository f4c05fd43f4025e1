"""The DAG fixtures (``airflow_db``, ``dagbag``, ``stack``) live in ``tests/conftest.py``, shared with tests/resilience."""
