"""Start both sandboxes in the foreground on 127.0.0.1: ``python -m sandboxes`` (``make sandbox``)."""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import pickle
import signal
import sys

from aiohttp import web

from sandboxes.common.app import build_app
from sandboxes.invoiced.service import InvoicedService
from sandboxes.poweroffice_go.service import PowerOfficeGoService
from sandboxes.settings import SandboxSettings


def load_state(path: str | None, services: dict) -> bool:
    """Restore each service from ``path`` (written by :func:`save_state`) if it exists; tell whether it did."""
    if not path or not os.path.exists(path):
        return False
    with open(path, "rb") as handle:
        state = pickle.load(handle)  # our own file, written by this module
    for name, service in services.items():
        if name in state:
            service.restore(state[name])
    return True


def save_state(path: str | None, services: dict) -> None:
    """Write every service's snapshot to ``path`` atomically (a crash mid-write keeps the previous file)."""
    if not path:
        return
    temporary = f"{path}.tmp"
    with open(temporary, "wb") as handle:
        pickle.dump({name: service.snapshot() for name, service in services.items()}, handle)
    os.replace(temporary, path)


async def serve(settings: SandboxSettings, seed: dict | None, ready_file: str | None,
                state_file: str | None = None) -> None:
    """Run both apps until SIGINT/SIGTERM; with ``state_file``, load the stores at start and save them at stop."""
    pogo = PowerOfficeGoService(settings)
    invoiced = InvoicedService(settings)
    services = {pogo.name: pogo, invoiced.name: invoiced}
    restored = load_state(state_file, services)
    if seed and not restored:
        pogo.seed(seed.get("poweroffice_go", {}))
        invoiced.seed(seed.get("invoiced", {}))
    runners = []
    for service, port in ((pogo, settings.pogo_port), (invoiced, settings.invoiced_port)):
        # In-flight requests get a few seconds to finish at a stop, then are cut off: well within the 10 s
        # SandboxProcess.stop allows before SIGKILL, so that the state file is always written.
        runner = web.AppRunner(build_app(service), access_log=None, handle_signals=False, shutdown_timeout=3.0)
        await runner.setup()
        await web.TCPSite(runner, settings.host, port, backlog=512).start()
        runners.append(runner)
    base = f"http://{settings.host}"
    print(
        f"PowerOffice Go sandbox: {base}:{settings.pogo_port}  (token: POST /OAuth/Token, API: /v2/...)\n"
        f"  Authorization: Basic base64(application key:client key) = "
        f"{settings.pogo_application_key}:{settings.pogo_client_key}\n"
        f"  Ocp-Apim-Subscription-Key: {settings.pogo_subscription_key}\n"
        + (f"  more clients under the subscription key: {', '.join(settings.pogo_extra_client_keys)}\n"
           if settings.pogo_extra_client_keys else "")
        + f"Invoiced sandbox:        {base}:{settings.invoiced_port}  (API: /customers, /invoices, ...)\n"
        f"  HTTP Basic, API key as username, empty password: {settings.invoiced_api_key}:\n"
        + (f"  more accounts (API keys): {', '.join(settings.invoiced_extra_api_keys)}\n"
           if settings.invoiced_extra_api_keys else "")
        + "Admin (both): /_sandbox/health, reset, seed, records/<entity>, faults, counters, config\n"
        "Ctrl-C stops both.",
        flush=True,
    )
    if ready_file:
        with open(ready_file, "w") as handle:
            ports = {"pogo_port": settings.pogo_port, "invoiced_port": settings.invoiced_port}
            json.dump({"pid": os.getpid(), **ports}, handle)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for runner in runners:
        await runner.cleanup()
    save_state(state_file, services)


def main(argv: list[str] | None = None) -> int:
    """Parse options (ports default to the environment) and serve."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pogo-port", type=int)
    parser.add_argument("--invoiced-port", type=int)
    parser.add_argument("--seed", help="JSON seed spec: {\"poweroffice_go\": {...}, \"invoiced\": {...}}")
    parser.add_argument("--ready-file", help="write the PID and ports here once both listen")
    parser.add_argument("--state-file", help="keep the data over restarts: load it from here at start (if the "
                                             "file exists) and save it here on SIGTERM/SIGINT")
    args = parser.parse_args(argv)
    env = dict(os.environ)
    if args.pogo_port is not None:
        env["POGO_SANDBOX_PORT"] = str(args.pogo_port)
    if args.invoiced_port is not None:
        env["INVOICED_SANDBOX_PORT"] = str(args.invoiced_port)
    settings = SandboxSettings.from_env(env)
    asyncio.run(serve(settings, json.loads(args.seed) if args.seed else None, args.ready_file, args.state_file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
