"""Provider metadata: registers the ``poweroffice_go`` and ``invoiced`` connection types (form and Test button).

Airflow finds it through the ``apache_airflow_provider`` entry point of the installed package (pyproject.toml).
Connections of type ``http`` work with the hooks too; only the UI form and Test button need these types.
"""


def get_provider_info() -> dict:
    """What Airflow's ProvidersManager reads."""
    return {
        "package-name": "pogo-invoiced-sync",
        "name": "PowerOffice Go ⇄ Invoiced sync",
        "description": "Two-way sync of PowerOffice Go and Invoiced: hooks, operators and DAGs.",
        "versions": ["0.1.0"],
        "connection-types": [
            {"hook-class-name": "pogo_invoiced_sync.hooks.poweroffice_go.PowerOfficeGoHook",
             "connection-type": "poweroffice_go"},
            {"hook-class-name": "pogo_invoiced_sync.hooks.invoiced.InvoicedHook", "connection-type": "invoiced"},
        ],
    }
