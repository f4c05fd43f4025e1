"""Provider metadata: registers the ``poweroffice_go`` and ``invoiced`` connection types (form and Test button).

Airflow finds it through the ``apache_airflow_provider`` entry point of the installed package (pyproject.toml).
Connections of type ``http`` work with the hooks too; only the UI form and Test button need these types.

Airflow 3.3's UI reads a connection form's labels and hidden fields only from here (``ui-field-behaviour``), not
from the hooks. ``port`` is hidden because the host holds the full URL: a visible, empty port field is sent as 0
and the Test button is then refused for testing "another" host or port than the stored connection's.
"""
import json

UI_FIELD_BEHAVIOUR = {
    "poweroffice_go": {
        "hidden-fields": ["schema", "port"],
        "relabeling": {"host": "API base URL (incl. /v2)", "login": "Application key", "password": "Client key"},
        "placeholders": {
            "host": "https://goapi.poweroffice.net/v2",
            "extra": json.dumps({"subscription_key": "", "requests_per_second": 10, "verify": True, "timeout": 60}),
        },
    },
    "invoiced": {
        "hidden-fields": ["schema", "port", "password"],
        "relabeling": {"host": "API base URL", "login": "API key"},
        "placeholders": {"host": "https://api.invoiced.com",
                         "extra": json.dumps({"max_in_flight": 10, "verify": True, "timeout": 60})},
    },
}


def field_behaviour(conn_type: str) -> dict:
    """The same behaviour in the hooks' ``get_ui_field_behaviour`` form (snake_case keys)."""
    behaviour = UI_FIELD_BEHAVIOUR[conn_type]
    return {"hidden_fields": list(behaviour["hidden-fields"]), "relabeling": dict(behaviour["relabeling"]),
            "placeholders": dict(behaviour["placeholders"])}


def get_provider_info() -> dict:
    """What Airflow's ProvidersManager reads."""
    return {
        "package-name": "pogo-invoiced-sync",
        "name": "PowerOffice Go ⇄ Invoiced sync",
        "description": "Two-way sync of PowerOffice Go and Invoiced: hooks, operators and DAGs.",
        "versions": ["0.1.0"],
        "connection-types": [
            {"hook-class-name": "pogo_invoiced_sync.hooks.poweroffice_go.PowerOfficeGoHook",
             "hook-name": "PowerOffice Go", "connection-type": "poweroffice_go",
             "ui-field-behaviour": UI_FIELD_BEHAVIOUR["poweroffice_go"]},
            {"hook-class-name": "pogo_invoiced_sync.hooks.invoiced.InvoicedHook",
             "hook-name": "Invoiced", "connection-type": "invoiced",
             "ui-field-behaviour": UI_FIELD_BEHAVIOUR["invoiced"]},
        ],
    }
