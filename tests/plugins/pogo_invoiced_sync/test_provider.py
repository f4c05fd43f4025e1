"""The provider info Airflow's UI reads for the connection forms of ``poweroffice_go`` and ``invoiced``."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def providers():
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    manager.initialize_providers_hooks()
    return manager


@pytest.mark.parametrize("conn_type", ["poweroffice_go", "invoiced"])
def test_the_installed_provider_declares_the_connection_form_in_its_provider_info(providers, conn_type: str) -> None:
    declared = {c["connection-type"]: c for c in providers.providers["pogo-invoiced-sync"].data["connection-types"]}
    assert "port" in declared[conn_type]["ui-field-behaviour"]["hidden-fields"]


@pytest.mark.parametrize("conn_type", ["poweroffice_go", "invoiced"])
def test_the_connection_form_hides_the_port_the_url_already_carries(providers, conn_type: str) -> None:
    assert "port" in providers.field_behaviours[conn_type]["hidden_fields"]


def test_the_poweroffice_go_form_labels_the_three_keys(providers) -> None:
    relabeling = providers.field_behaviours["poweroffice_go"]["relabeling"]
    assert (relabeling["login"], relabeling["password"]) == ("Application key", "Client key")


def test_the_invoiced_form_hides_the_unused_password(providers) -> None:
    assert "password" in providers.field_behaviours["invoiced"]["hidden_fields"]


@pytest.mark.parametrize("hook_path", ["poweroffice_go.PowerOfficeGoHook", "invoiced.InvoicedHook"])
def test_the_hooks_describe_the_same_form_as_the_provider_info(providers, hook_path: str) -> None:
    import importlib

    module, name = hook_path.split(".")
    hook = getattr(importlib.import_module(f"pogo_invoiced_sync.hooks.{module}"), name)
    behaviour = hook.get_ui_field_behaviour()
    expected = providers.field_behaviours[hook.conn_type]
    assert behaviour["hidden_fields"] == expected["hidden_fields"]
    assert behaviour["relabeling"] == expected["relabeling"]
