"""The connection forms of ``poweroffice_go`` and ``invoiced`` as Airflow's ProvidersManager reports them to the UI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

TYPES = ["poweroffice_go", "invoiced"]


@pytest.fixture(scope="module")
def providers():
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    manager.initialize_providers_hooks()
    return manager


@pytest.fixture(scope="module")
def hook_meta() -> dict:
    """What the UI's form is built from: the ``/ui/connections/hook_meta`` answer, per connection type."""
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    return {meta.connection_type: meta.model_dump() for meta in HookMetaService.hook_meta_data()}


def _widget(providers, conn_type: str, name: str):
    return providers.connection_form_widgets[f"extra__{conn_type}__{name}"]


def test_the_provider_info_is_valid_for_airflows_schema() -> None:
    import airflow
    import jsonschema

    from pogo_invoiced_sync.provider import get_provider_info

    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_the_connection_types_follow_the_provider_yaml_schema_including_conn_fields() -> None:
    import airflow
    import jsonschema

    from pogo_invoiced_sync.provider import get_provider_info

    schema = json.loads((Path(airflow.__file__).parent / "provider.yaml.schema.json").read_text())
    jsonschema.validate(get_provider_info()["connection-types"], schema["properties"]["connection-types"])


@pytest.mark.parametrize(("conn_type", "name"), [("poweroffice_go", "PowerOffice Go"), ("invoiced", "Invoiced")])
def test_each_type_is_listed_under_its_system_name(hook_meta, conn_type: str, name: str) -> None:
    assert hook_meta[conn_type]["hook_name"] == name


@pytest.mark.parametrize("conn_type", TYPES)
def test_the_form_hides_the_port_and_schema_the_url_already_carries(providers, conn_type: str) -> None:
    assert {"port", "schema"} <= set(providers.field_behaviours[conn_type]["hidden_fields"])


def test_the_poweroffice_go_form_labels_the_url_and_the_two_keys(providers) -> None:
    relabeling = providers.field_behaviours["poweroffice_go"]["relabeling"]
    assert (relabeling["host"], relabeling["login"], relabeling["password"]) == (
        "API base URL (incl. /v2)",
        "Application key",
        "Client key",
    )


def test_the_poweroffice_go_host_placeholder_names_the_real_and_the_sandbox_url(providers) -> None:
    placeholder = providers.field_behaviours["poweroffice_go"]["placeholders"]["host"]
    assert "https://goapi.poweroffice.net/v2" in placeholder
    assert "http://127.0.0.1:8701/v2" in placeholder


def test_the_poweroffice_go_form_has_placeholders_for_both_keys(providers) -> None:
    assert {"login", "password"} <= set(providers.field_behaviours["poweroffice_go"]["placeholders"])


def test_the_poweroffice_go_subscription_key_is_a_secret_field_of_its_own(providers) -> None:
    widget = _widget(providers, "poweroffice_go", "subscription_key")
    assert (widget.field["schema"]["title"], widget.field["schema"]["format"], widget.is_sensitive) == (
        "Subscription key",
        "password",
        True,
    )


def test_the_poweroffice_go_requests_per_second_is_a_number_field_defaulting_to_10(providers) -> None:
    widget = _widget(providers, "poweroffice_go", "requests_per_second")
    assert widget.field["schema"]["title"] == "Requests per second"
    assert "number" in widget.field["schema"]["type"]
    assert (widget.field["value"], widget.is_sensitive) == (10, False)


def test_the_invoiced_form_takes_the_api_key_in_the_masked_password_field(providers) -> None:
    assert providers.field_behaviours["invoiced"]["relabeling"]["password"] == "API key"


def test_the_invoiced_form_hides_the_unused_login(providers) -> None:
    assert "login" in providers.field_behaviours["invoiced"]["hidden_fields"]


def test_the_invoiced_form_labels_the_url_and_names_the_real_and_the_sandbox_url(providers) -> None:
    behaviour = providers.field_behaviours["invoiced"]
    assert behaviour["relabeling"]["host"] == "API base URL"
    assert "https://api.invoiced.com" in behaviour["placeholders"]["host"]
    assert "http://127.0.0.1:8702" in behaviour["placeholders"]["host"]


def test_the_invoiced_max_in_flight_is_an_integer_field_capped_at_the_servers_20(providers) -> None:
    widget = _widget(providers, "invoiced", "max_in_flight")
    schema = widget.field["schema"]
    assert (schema["title"], "integer" in schema["type"], schema["maximum"], widget.field["value"]) == (
        "Max in flight",
        True,
        20,
        10,
    )


@pytest.mark.parametrize(
    ("conn_type", "fields"),
    [("poweroffice_go", {"subscription_key", "requests_per_second"}), ("invoiced", {"max_in_flight"})],
)
def test_the_ui_receives_the_extra_fields_under_their_bare_names(hook_meta, conn_type: str, fields: set) -> None:
    assert set(hook_meta[conn_type]["extra_fields"]) == fields


def test_the_ui_receives_the_poweroffice_go_labels_and_hidden_fields(hook_meta) -> None:
    standard = hook_meta["poweroffice_go"]["standard_fields"]
    assert (standard["login"]["title"], standard["password"]["title"], standard["port"]["hidden"]) == (
        "Application key",
        "Client key",
        True,
    )


def test_the_ui_receives_the_invoiced_labels_and_hidden_fields(hook_meta) -> None:
    standard = hook_meta["invoiced"]["standard_fields"]
    assert (standard["password"]["title"], standard["login"]["hidden"], standard["port"]["hidden"]) == (
        "API key",
        True,
        True,
    )
