"""Provider metadata: registers the ``poweroffice_go`` and ``invoiced`` connection types (form and Test button).

Airflow finds it through the ``apache_airflow_provider`` entry point of the installed package (pyproject.toml).
Connections of type ``http`` work with the hooks too; only the UI form and Test button need these types.

Airflow 3.3's UI builds a connection form only from here, never from the hooks: ``ui-field-behaviour`` relabels,
hides and fills placeholders of the standard fields (host, login, password, ...), and ``conn-fields`` adds fields
of its own, each a JSON-schema'd value stored in the connection's extra. ``port`` is hidden because the host holds
the full URL: a visible, empty port field is sent as 0 and the Test button is then refused for testing "another"
host or port than the stored connection's.

Where the form stores a conn-field: under its bare name, at the top level of the extra JSON
(``{"subscription_key": "...", "requests_per_second": 10}``), merged with any other keys typed into the form's
"Extra Fields JSON" editor. The ``extra__<conn type>__<name>`` names that ``ProvidersManager`` reports are only its
internal registry keys (one dictionary for every type); Airflow 2's FAB form stored values under them, so the hooks
read both spellings.
"""

from __future__ import annotations

from typing import Any

POWEROFFICE_GO_URL, POWEROFFICE_GO_SANDBOX_URL = "https://goapi.poweroffice.net/v2", "http://127.0.0.1:8701/v2"
INVOICED_URL, INVOICED_SANDBOX_URL = "https://api.invoiced.com", "http://127.0.0.1:8702"


def _url_hint(real: str, sandbox: str) -> str:
    return f"{real}  (make up's sandbox: {sandbox})"


UI_FIELD_BEHAVIOUR: dict[str, dict[str, Any]] = {
    "poweroffice_go": {
        "hidden-fields": ["schema", "port"],
        "relabeling": {"host": "API base URL (incl. /v2)", "login": "Application key", "password": "Client key"},
        "placeholders": {
            "host": _url_hint(POWEROFFICE_GO_URL, POWEROFFICE_GO_SANDBOX_URL),
            "login": "application key of the integration (GUID)",
            "password": "client key the customer created for the integration",
        },
    },
    "invoiced": {
        # The API key is a secret: it goes into the (masked) password field; login is not used.
        "hidden-fields": ["schema", "port", "login"],
        "relabeling": {"host": "API base URL", "password": "API key"},
        "placeholders": {
            "host": _url_hint(INVOICED_URL, INVOICED_SANDBOX_URL),
            "password": "API key (Settings -> Developers -> API Keys)",
        },
    },
}

CONN_FIELDS: dict[str, dict[str, dict[str, Any]]] = {
    "poweroffice_go": {
        "subscription_key": {
            "label": "Subscription key",
            "description": "Sent as Ocp-Apim-Subscription-Key on every call; the key of this host's environment "
            "(demo and production keys differ). Required.",
            "schema": {"type": ["string", "null"], "format": "password"},
        },
        "requests_per_second": {
            "label": "Requests per second",
            "description": "Rate limit of this client towards PowerOffice Go (default 10).",
            "schema": {"type": ["number", "null"], "minimum": 0.1, "default": 10},
        },
    },
    "invoiced": {
        "max_in_flight": {
            "label": "Max in flight",
            "description": (
                "Requests sent to Invoiced at the same time (default 10; Invoiced allows 20 per API key: "
                "use 20 only for a key nothing outside this deployment uses)."
            ),
            "schema": {"type": ["integer", "null"], "minimum": 1, "maximum": 20, "default": 10},
        },
    },
}


def field_behaviour(conn_type: str) -> dict[str, Any]:
    """The same behaviour in the hooks' ``get_ui_field_behaviour`` form (snake_case keys)."""
    behaviour = UI_FIELD_BEHAVIOUR[conn_type]
    return {
        "hidden_fields": list(behaviour["hidden-fields"]),
        "relabeling": dict(behaviour["relabeling"]),
        "placeholders": dict(behaviour["placeholders"]),
    }


def get_provider_info() -> dict[str, Any]:
    """What Airflow's ProvidersManager reads."""
    return {
        "package-name": "pogo-invoiced-sync",
        "name": "PowerOffice Go ⇄ Invoiced sync",
        "description": "Two-way sync of PowerOffice Go and Invoiced: hooks, operators and DAGs.",
        "versions": ["0.1.0"],
        "connection-types": [
            {
                "hook-class-name": "pogo_invoiced_sync.hooks.poweroffice_go.PowerOfficeGoHook",
                "hook-name": "PowerOffice Go",
                "connection-type": "poweroffice_go",
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR["poweroffice_go"],
                "conn-fields": CONN_FIELDS["poweroffice_go"],
            },
            {
                "hook-class-name": "pogo_invoiced_sync.hooks.invoiced.InvoicedHook",
                "hook-name": "Invoiced",
                "connection-type": "invoiced",
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR["invoiced"],
                "conn-fields": CONN_FIELDS["invoiced"],
            },
        ],
    }
