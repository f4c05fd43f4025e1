"""Ports and credentials of the sandboxes, from environment variables with documented defaults."""
from __future__ import annotations

import dataclasses
import os

DEFAULTS = {
    "POGO_SANDBOX_PORT": "8701",
    "INVOICED_SANDBOX_PORT": "8702",
    "POGO_SANDBOX_APPLICATION_KEY": "sandbox-application-key",
    "POGO_SANDBOX_CLIENT_KEY": "sandbox-client-key",
    "POGO_SANDBOX_SUBSCRIPTION_KEY": "0123456789abcdef0123456789abcdef",
    "INVOICED_SANDBOX_API_KEY": "sandbox-invoiced-api-key",
    # Opt-in, comma-separated: more clients under the one subscription key, more Invoiced accounts (one per key).
    "POGO_SANDBOX_EXTRA_CLIENT_KEYS": "",
    "INVOICED_SANDBOX_EXTRA_API_KEYS": "",
}


def _keys(spec: str) -> tuple[str, ...]:
    return tuple(k.strip() for k in spec.split(",") if k.strip())


@dataclasses.dataclass(frozen=True)
class SandboxSettings:
    """Everything a sandbox needs to start; tests build their own, ``from_env`` serves ``make sandbox``."""

    pogo_port: int
    invoiced_port: int
    pogo_application_key: str
    pogo_client_key: str
    pogo_subscription_key: str
    invoiced_api_key: str
    host: str = "127.0.0.1"
    # Each extra client key (same application key) is a client of its own, with its own data, sharing the
    # subscription key's rate limit; each extra Invoiced key is an account of its own with its own in-flight cap.
    pogo_extra_client_keys: tuple[str, ...] = ()
    invoiced_extra_api_keys: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, environ: dict | None = None) -> SandboxSettings:
        """Read the ``*_SANDBOX_*`` variables, falling back to the defaults above."""
        env = {**DEFAULTS, **{k: v for k, v in (environ or os.environ).items() if k in DEFAULTS}}
        return cls(
            pogo_port=int(env["POGO_SANDBOX_PORT"]),
            invoiced_port=int(env["INVOICED_SANDBOX_PORT"]),
            pogo_application_key=env["POGO_SANDBOX_APPLICATION_KEY"],
            pogo_client_key=env["POGO_SANDBOX_CLIENT_KEY"],
            pogo_subscription_key=env["POGO_SANDBOX_SUBSCRIPTION_KEY"],
            invoiced_api_key=env["INVOICED_SANDBOX_API_KEY"],
            pogo_extra_client_keys=_keys(env["POGO_SANDBOX_EXTRA_CLIENT_KEYS"]),
            invoiced_extra_api_keys=_keys(env["INVOICED_SANDBOX_EXTRA_API_KEYS"]),
        )
