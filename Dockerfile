# The sync as an Airflow image: the official Airflow 3.3.2 image (Python 3.11) plus this package.
#
#   docker build -t pogo-invoiced-sync-airflow:latest .
#
# requirements.txt is the tested lock (uv pip compile of requirements.in: Airflow 3.3.2, providers http 6.3.0 and
# postgres 7.1.1, pandas, pendulum, and every transitive pin). Installing it with Airflow pinned to the image's own
# version (the way the Airflow image documentation asks) keeps Airflow as it is and brings the rest to exactly the
# versions the tests ran with. Test and sandbox tools (requirements-dev.txt) are not part of the image.
FROM apache/airflow:3.3.2-python3.11

USER airflow
COPY --chown=airflow:0 requirements.txt /opt/airflow/requirements.txt
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /opt/airflow/requirements.txt

# AIRFLOW_HOME is /opt/airflow in the official image. The package finds its mappings relative to itself:
# plugins/pogo_invoiced_sync/... -> include/mappings, so the three folders keep their places side by side.
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/
COPY --chown=airflow:0 include/ /opt/airflow/include/
# Installing the package registers its connection types (poweroffice_go, invoiced): the UI form and Test button.
COPY --chown=airflow:0 pyproject.toml README.md /opt/airflow/
RUN pip install --no-cache-dir --no-deps /opt/airflow
# Mount point of the UI password file written by docker-compose's airflow-init (owned by airflow in a new volume).
RUN mkdir -p /opt/airflow/auth

ENV AIRFLOW__CORE__DAGS_FOLDER=/opt/airflow/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/airflow/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=True \
    PYTHONPATH=/opt/airflow/plugins

# Fail the build, not the first run, if the DAGs do not import (no database or API is touched at parse time).
# A throw-away AIRFLOW_HOME, so no generated airflow.cfg (with generated secrets) stays in the image.
RUN AIRFLOW_HOME=/tmp/build-check python -c "from pogo_invoiced_sync.dag_factory import build_all; \
dags = build_all(); assert sorted(dags) == ['sync_customers_company', 'sync_customers_person', 'sync_salesorders_invoices'], dags" \
    && rm -rf /tmp/build-check
