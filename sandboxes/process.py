"""Start the sandboxes as a child process and drive their admin surface (tests, benchmarks, the demo)."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from sandboxes.settings import SandboxSettings


def free_port() -> int:
    """Ask the kernel for a free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Admin:
    """Client of one sandbox's ``/_sandbox`` surface."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = requests.Session()

    def _call(self, method: str, path: str, body=None, params=None):
        response = self.http.request(method, f"{self.base_url}/_sandbox/{path}", json=body, params=params, timeout=120)
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        """Empty the store, clear faults and counters."""
        self._call("POST", "reset")

    def seed(self, **spec) -> dict:
        """Seed records (service-specific spec)."""
        return self._call("POST", "seed", spec)

    def records(self, entity: str, **query) -> list[dict]:
        """Every stored record of ``entity`` as the API would show it."""
        return self._call("GET", f"records/{entity}", params=query)

    def faults(self, **settings) -> dict:
        """Replace the fault settings (an empty call clears them)."""
        return self._call("PUT", "faults", settings) if settings else self._call("DELETE", "faults")

    def counters(self) -> dict:
        """Request counts by method and path since the last reset."""
        return self._call("GET", "counters")

    def clear_counters(self) -> None:
        """Start counting from zero."""
        self._call("DELETE", "counters")

    def between_pages(self, *triggers: dict) -> dict:
        """Land edits between the pages of a listing (see ``sandboxes.common.app.BetweenPages``); none clears."""
        return self._call("PUT", "between_pages", list(triggers)) if triggers else self._call("DELETE", "between_pages")

    def edit(self, entity: str, *steps: dict, **owner: str) -> dict:
        """Apply edit steps (as in ``between_pages``) now; ``client=`` / ``account=`` picks whose data."""
        return self._call("POST", "edit", {"list": entity, "steps": list(steps), **owner})

    def configure(self, **settings) -> dict:
        """Change service settings such as the token lifetime or the rate limit."""
        return self._call("PUT", "config", settings)


class SandboxProcess:
    """Both sandboxes in one child process, on free (or given) loopback ports."""

    def __init__(self, settings: SandboxSettings | None = None, log_path: Path | None = None,
                 state_file: Path | None = None) -> None:
        """``state_file``: the child saves both stores there when stopped and loads them at start (see restart)."""
        self.state_file = state_file
        self.settings = settings or SandboxSettings.from_env({"POGO_SANDBOX_PORT": str(free_port()),
                                                              "INVOICED_SANDBOX_PORT": str(free_port())})
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self.pogo = Admin(self.pogo_url)
        self.invoiced = Admin(self.invoiced_url)

    @property
    def pogo_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.pogo_port}"

    @property
    def invoiced_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.invoiced_port}"

    def start(self, timeout: float = 30.0) -> SandboxProcess:
        """Start the child and wait until both ports answer."""
        ready = Path(tempfile.mkdtemp()) / "ready.json"
        env = {**os.environ,
               "POGO_SANDBOX_PORT": str(self.settings.pogo_port),
               "INVOICED_SANDBOX_PORT": str(self.settings.invoiced_port),
               "POGO_SANDBOX_APPLICATION_KEY": self.settings.pogo_application_key,
               "POGO_SANDBOX_CLIENT_KEY": self.settings.pogo_client_key,
               "POGO_SANDBOX_SUBSCRIPTION_KEY": self.settings.pogo_subscription_key,
               "INVOICED_SANDBOX_API_KEY": self.settings.invoiced_api_key,
               "POGO_SANDBOX_EXTRA_CLIENT_KEYS": ",".join(self.settings.pogo_extra_client_keys),
               "INVOICED_SANDBOX_EXTRA_API_KEYS": ",".join(self.settings.invoiced_extra_api_keys)}
        root = Path(__file__).resolve().parent.parent
        args = [sys.executable, "-m", "sandboxes", "--ready-file", str(ready)]
        if self.state_file:
            args += ["--state-file", str(self.state_file)]
        # The child keeps its own copy of the log file's descriptor; ours is closed once it has started.
        with contextlib.ExitStack() as stack:
            out = stack.enter_context(open(self.log_path, "ab")) if self.log_path else subprocess.DEVNULL
            self.proc = subprocess.Popen(args, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sandbox process exited with {self.proc.returncode}")
            if ready.exists() and json.loads(ready.read_text() or "{}").get("pid"):
                return self
            time.sleep(0.05)
        self.stop()
        raise TimeoutError("sandboxes did not start in time")

    def stop(self) -> None:
        """Stop the child (SIGTERM, then SIGKILL)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def restart(self) -> None:
        """Stop and start again on the same ports. With a ``state_file`` the data survives (faults and counters
        do not); without one it is lost."""
        self.stop()
        self.start()

    def reset(self) -> None:
        """Reset both sandboxes."""
        self.pogo.reset()
        self.invoiced.reset()
