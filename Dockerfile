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

# The package is installed (not a copy on PYTHONPATH): that also registers its connection types (poweroffice_go,
# invoiced: the UI form and Test button) and its console plugin, both through entry points. So plugins/ is not
# copied to AIRFLOW_HOME/plugins, where Airflow would import every module of it once more as a plugin file.
COPY --chown=airflow:0 pyproject.toml README.md /tmp/pogo-invoiced-sync/
COPY --chown=airflow:0 plugins/ /tmp/pogo-invoiced-sync/plugins/
RUN pip install --no-cache-dir --no-deps /tmp/pogo-invoiced-sync && rm -rf /tmp/pogo-invoiced-sync

# AIRFLOW_HOME is /opt/airflow in the official image. The DAG file, and the mappings (and tenants.yaml) in the
# folder that the package's one setting, include_dir, names (set explicitly here; it is also the default, the
# include folder beside the DAGs folder). Mount another folder there, or point the setting elsewhere, to change them.
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 include/ /opt/airflow/include/
# Mount point of the UI password file written by docker-compose's airflow-init (owned by airflow in a new volume).
RUN mkdir -p /opt/airflow/auth

ENV AIRFLOW__CORE__DAGS_FOLDER=/opt/airflow/dags \
    AIRFLOW__POGO_INVOICED_SYNC__INCLUDE_DIR=/opt/airflow/include \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=True \
    AIRFLOW__CORE__SENSITIVE_VAR_CONN_NAMES=subscription_key

# Fail the build, not the first run, if the DAGs do not import (no database or API is touched at parse time).
# A throw-away AIRFLOW_HOME, so no generated airflow.cfg (with generated secrets) stays in the image.
# It imports the installed package from a neutral working directory, as Airflow's DAG processor will.
RUN cd /tmp && AIRFLOW_HOME=/tmp/build-check python -c "import runpy; \
dags = {k for k, v in runpy.run_path('/opt/airflow/dags/sync_flows.py').items() if k.startswith('sync_')}; \
assert sorted(dags) == ['sync_customers_company', 'sync_customers_person', 'sync_salesorders_invoices'], dags" \
    && rm -rf /tmp/build-check
