"""A sandbox process of its own whose keys are distinctive marker strings, so a leak is found by plain search."""

from __future__ import annotations

import base64
import dataclasses
import json
import uuid

import pytest

from sandboxes.process import SandboxProcess, free_port
from sandboxes.settings import SandboxSettings


@dataclasses.dataclass(frozen=True)
class Secrets:
    """The marker credentials, and the encodings in which they travel (Basic auth headers)."""

    application_key: str
    client_key: str
    subscription_key: str
    invoiced_api_key: str

    @property
    def all(self) -> dict[str, str]:
        """Every form a secret could leak in, by label."""
        basic_pogo = base64.b64encode(f"{self.application_key}:{self.client_key}".encode()).decode()
        basic_invoiced = base64.b64encode(f"{self.invoiced_api_key}:".encode()).decode()
        return {
            "application key": self.application_key,
            "client key": self.client_key,
            "subscription key": self.subscription_key,
            "Invoiced API key": self.invoiced_api_key,
            "PowerOffice Go Basic header": basic_pogo,
            "Invoiced Basic header": basic_invoiced.rstrip("="),
        }


@pytest.fixture(scope="module")
def secrets() -> Secrets:
    marker = uuid.uuid4().hex[:12]
    return Secrets(
        application_key=f"appkey-LEAKMARK-{marker}-a1",
        client_key=f"clientkey-LEAKMARK-{marker}-c2",
        subscription_key=f"subkey-LEAKMARK-{marker}-s3",
        invoiced_api_key=f"invkey-LEAKMARK-{marker}-i4",
    )


@pytest.fixture(scope="module")
def secret_sandbox(secrets, tmp_path_factory) -> SandboxProcess:
    """Both sandboxes, started with the marker keys."""
    settings = SandboxSettings(
        pogo_port=free_port(),
        invoiced_port=free_port(),
        pogo_application_key=secrets.application_key,
        pogo_client_key=secrets.client_key,
        pogo_subscription_key=secrets.subscription_key,
        invoiced_api_key=secrets.invoiced_api_key,
    )
    process = SandboxProcess(settings, log_path=tmp_path_factory.mktemp("secret-sandbox") / "sandbox.log").start()
    yield process
    process.stop()


def pogo_connection_json(
    process: SandboxProcess,
    *,
    application_key: str | None = None,
    client_key: str | None = None,
    subscription_key: str | None = None,
    **extra,
) -> str:
    """A PowerOffice Go connection (Airflow JSON form) for ``process``, with keys overridable."""
    s = process.settings
    return json.dumps(
        {
            "conn_type": "http",
            "host": f"{process.pogo_url}/v2",
            "login": application_key or s.pogo_application_key,
            "password": client_key or s.pogo_client_key,
            "extra": {"subscription_key": subscription_key or s.pogo_subscription_key, "timeout": 10, **extra},
        }
    )


def invoiced_connection_json(process: SandboxProcess, *, api_key: str | None = None, **extra) -> str:
    """An Invoiced connection (Airflow JSON form) for ``process``, with the key overridable."""
    return json.dumps(
        {
            "conn_type": "http",
            "host": process.invoiced_url,
            "login": api_key or process.settings.invoiced_api_key,
            "password": "",
            "extra": {"timeout": 10, **extra},
        }
    )


@pytest.fixture
def secret_env(monkeypatch, secret_sandbox):
    """Both API connections pointed at the marker-key sandbox, emptied; no cached tokens or limiters."""
    from pogo_invoiced_sync.clients import clear_shared_state

    secret_sandbox.reset()
    clear_shared_state()
    monkeypatch.setenv("AIRFLOW_CONN_POWEROFFICE_GO_DEFAULT", pogo_connection_json(secret_sandbox))
    monkeypatch.setenv("AIRFLOW_CONN_INVOICED_DEFAULT", invoiced_connection_json(secret_sandbox))
    yield secret_sandbox
    clear_shared_state()
