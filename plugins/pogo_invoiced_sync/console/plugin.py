"""The Airflow plugin that mounts the sync console in the api-server and adds it to the UI's navigation.

Registered through the ``airflow.plugins`` entry point (pyproject.toml). Importing this module costs only Airflow's
plugin base class: the FastAPI app is built when the api-server first asks for ``fastapi_apps``, and no database is
touched before a page is requested.
"""

from __future__ import annotations

from functools import cached_property

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/pogo-invoiced-sync"


class SyncConsolePlugin(AirflowPlugin):
    """Health of the sync flows, a record's pair and history, and operator actions, inside the Airflow UI."""

    name = "pogo_invoiced_sync_console"
    # Shown in the UI's "Browse" menu; the UI renders the page in a frame under /plugin/sync-console.
    external_views = [  # noqa: RUF012 - AirflowPlugin declares it as a plain class attribute
        {
            "name": "Sync console",
            # Relative: the UI resolves it against Airflow's base URL, so it also works under a path prefix.
            "href": f"{URL_PREFIX.lstrip('/')}/",
            "url_route": "sync-console",
            "destination": "nav",
            "category": "browse",
        }
    ]

    @cached_property
    def fastapi_apps(self) -> list[dict]:  # type: ignore[override]
        from pogo_invoiced_sync.console.app import create_app

        return [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "PowerOffice Go ⇄ Invoiced sync console"}]
