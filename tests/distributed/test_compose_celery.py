"""docker-compose.celery.yaml, checked by reading it (no Docker here): the base stack's services and settings, plus
a Redis broker and Celery workers wired to the services that exist."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CELERY_ONLY = {"redis", "airflow-worker", "flower"}
CELERY_SETTINGS = {
    "AIRFLOW__CELERY__BROKER_URL",
    "AIRFLOW__CELERY__RESULT_BACKEND",
    "AIRFLOW__CELERY__WORKER_CONCURRENCY",
}


def _load(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text())


@pytest.fixture(scope="module")
def base() -> dict:
    return _load("docker-compose.yaml")


@pytest.fixture(scope="module")
def celery() -> dict:
    return _load("docker-compose.celery.yaml")


def _url(value: str):
    """A URL of the compose file, its ``${VAR:?message}`` interpolations filled in as docker compose would."""
    return urlparse(re.sub(r"\$\{(\w+)[^}]*\}", "secret", value).removeprefix("db+"))


def _airflow_services(compose: dict) -> dict[str, dict]:
    image = compose["x-airflow-common"]["image"]
    return {name: s for name, s in compose["services"].items() if s.get("image") == image}


def test_the_celery_variant_keeps_every_service_of_the_base_stack(base, celery) -> None:
    assert set(base["services"]) <= set(celery["services"])
    assert set(celery["services"]) - set(base["services"]) == CELERY_ONLY


def test_every_airflow_service_uses_the_one_image_and_build(base, celery) -> None:
    services = _airflow_services(celery)
    assert set(services) == set(_airflow_services(base)) | {"airflow-worker", "flower"}
    for name, service in services.items():
        assert service["build"] == base["x-airflow-common"]["build"], name
        assert service["env_file"] == base["x-airflow-common"]["env_file"], name
        assert service["volumes"] == base["x-airflow-common"]["volumes"], name


def test_every_airflow_service_has_the_base_settings_with_the_celery_executor(base, celery) -> None:
    expected = {**base["x-airflow-common"]["environment"], "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor"}
    for name, service in _airflow_services(celery).items():
        env = service["environment"]
        assert {k: env.get(k) for k in expected} == expected, name
        assert set(env) >= CELERY_SETTINGS, name


def test_the_broker_is_the_redis_service_which_every_airflow_service_waits_for(celery) -> None:
    env = celery["x-airflow-common"]["environment"]
    broker = _url(env["AIRFLOW__CELERY__BROKER_URL"])
    assert (broker.scheme, broker.hostname, broker.port) == ("redis", "redis", 6379)
    assert "healthcheck" in celery["services"]["redis"]
    for name, service in _airflow_services(celery).items():
        assert service["depends_on"]["redis"] == {"condition": "service_healthy"}, name


def test_celery_results_go_to_the_metadata_database_on_the_postgres_service(celery) -> None:
    env = celery["x-airflow-common"]["environment"]
    results = _url(env["AIRFLOW__CELERY__RESULT_BACKEND"])
    metadata = _url(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    assert (results.scheme, results.hostname) == ("postgresql", "postgres")
    assert (results.hostname, results.port, results.path, results.username) == (
        metadata.hostname,
        metadata.port,
        metadata.path,
        metadata.username,
    )


def test_at_least_two_workers_run_the_celery_worker_command(celery) -> None:
    worker = celery["services"]["airflow-worker"]
    assert worker["command"] == "celery worker"
    assert worker["deploy"]["replicas"] >= 2
    assert "ports" not in worker  # workers take work from the broker: nothing to publish


def test_published_ports_are_on_the_loopback_interface_only(celery) -> None:
    for name, service in celery["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond the loopback interface"


def test_the_airflow_commands_of_the_workers_and_flower_exist() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "celery", "--help"], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr[-2000:]
    commands = {line.split()[0] for line in result.stdout.splitlines() if line.startswith("    ")}
    assert {"worker", "flower"} <= commands


def test_the_worker_healthcheck_names_the_celery_app_of_the_provider(celery) -> None:
    from airflow.providers.celery.executors import celery_executor
    from celery import Celery

    check = " ".join(celery["services"]["airflow-worker"]["healthcheck"]["test"])
    assert "--app airflow.providers.celery.executors.celery_executor.app" in check
    assert isinstance(celery_executor.app, Celery)
