"""The declarative mappings: reading, writing and validating flows, and finding them through the include_dir setting."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from pogo_invoiced_sync import config
from pogo_invoiced_sync.engine.flow_mapping import (
    INVOICED,
    POGO,
    FlowMapping,
    MappingError,
    load_all,
    load_mapping,
    read_mapping_file,
)

SHIPPED = Path(__file__).resolve().parents[4] / "include" / "mappings"


@pytest.fixture(scope="module")
def flows():
    return load_all()


def test_the_package_ships_exactly_the_three_flows(flows):
    assert set(flows) == {"customers_company", "customers_person", "salesorders_invoices"}


def test_a_person_name_is_joined_from_first_and_last_name(flows):
    assert (
        flows["customers_person"].read(POGO, {"FirstName": "Ola Johan", "LastName": "Hansen"})["name"]
        == "Ola Johan Hansen"
    )


def test_a_person_name_is_split_on_its_last_word_when_written(flows):
    assert flows["customers_person"].write(POGO, {"name": "Ola Johan Hansen"}) == {
        "FirstName": "Ola Johan",
        "LastName": "Hansen",
    }


def test_codes_compare_case_insensitively(flows):
    order = flows["salesorders_invoices"]
    assert (
        order.read(POGO, {"CurrencyCode": "NOK"})["currency"] == order.read(INVOICED, {"currency": "nok"})["currency"]
    )


def test_an_order_without_customer_falls_back_to_its_contact_persons_company(flows):
    order = {"CustomerId": None, "CustomerReferenceContactPerson": {"ContactId": 1000042}}
    assert flows["salesorders_invoices"].read(POGO, order)["customer"] == "1000042"


def test_nested_address_fields_are_read_by_dotted_path(flows):
    values = flows["customers_person"].read(POGO, {"MailAddress": {"City": " Bergen ", "ZipCode": "5003"}})
    assert (values["city"], values["postal_code"], values["address1"]) == ("Bergen", "5003", None)


def test_routing_separates_companies_from_persons(flows):
    assert flows["customers_company"].sides[POGO].routes({"IsPerson": False})
    assert not flows["customers_company"].sides[POGO].routes({"IsPerson": True})
    assert flows["customers_person"].sides[INVOICED].routes({"type": "person"})


def test_a_field_added_to_a_mapping_is_synchronised_without_code(flows):
    data = {
        "flow": "x",
        "poweroffice_go": {"entity": "customers"},
        "invoiced": {"entity": "customers"},
        "fields": [
            {"name": "name", "poweroffice_go": "Name", "invoiced": "name"},
            {"name": "phone", "poweroffice_go": "PhoneNumber", "invoiced": "phone"},
        ],
    }
    mapping = FlowMapping.from_dict(data)
    assert mapping.read(INVOICED, {"name": "A", "phone": "+47 1"}) == {"name": "A", "phone": "+47 1"}
    assert mapping.write(POGO, {"phone": "+47 1"}) == {"PhoneNumber": "+47 1"}


def test_an_unknown_transform_is_refused_with_the_fields_name():
    data = {
        "flow": "x",
        "poweroffice_go": {"entity": "customers"},
        "invoiced": {"entity": "customers"},
        "fields": [{"name": "name", "poweroffice_go": "Name", "invoiced": "name", "transform": "rot13"}],
    }
    with pytest.raises(MappingError, match=r"rot13.*name"):
        FlowMapping.from_dict(data)


def test_a_voided_invoice_leaves_the_invoice_flow(flows):
    invoices = flows["salesorders_invoices"].sides[INVOICED]
    assert invoices.routes({"status": "draft"})
    assert not invoices.routes({"status": "voided"})


def test_a_country_alone_is_a_default_and_reads_as_no_value_on_either_side(flows):
    person = flows["customers_person"]
    assert person.read(INVOICED, {"name": "Kari Nordmann", "country": "NO"})["country"] is None
    assert person.read(POGO, {"MailAddress": {"CountryCode": "NO"}})["country"] is None
    assert person.read(POGO, {"MailAddress": None})["country"] is None


def test_a_country_with_another_address_part_is_read(flows):
    values = flows["customers_person"].read(INVOICED, {"city": "Oslo", "country": "se"})
    assert (values["city"], values["country"]) == ("Oslo", "SE")


def test_only_with_must_name_other_mapped_fields():
    data = {
        "flow": "x",
        "poweroffice_go": {"entity": "customers"},
        "invoiced": {"entity": "customers"},
        "fields": [{"name": "country", "poweroffice_go": "C", "invoiced": "c", "only_with": ["city"]}],
    }
    with pytest.raises(MappingError, match="only_with of field country"):
        FlowMapping.from_dict(data)


def test_no_customer_mapping_imposes_a_delivery_type_on_records_it_creates(flows):
    for flow in ("customers_company", "customers_person"):
        assert set(flows[flow].sides[POGO].create_defaults) == {"IsPerson"}


def test_one_reason_rejecting_most_records_of_a_step_fails_it_with_the_reason_and_a_sample(flows):
    from pogo_invoiced_sync.engine.flow_mapping import TooManyRejections

    rejected = [("lacks mapped field(s) nmae", str(i)) for i in range(1, 8)]
    with pytest.raises(TooManyRejections) as stop:
        flows["customers_company"].rejections.check("map of invoiced", 7, rejected)
    assert "map of invoiced: 7 of 7 records rejected for the same reason: lacks mapped field(s) nmae" in str(stop.value)
    assert "(records 1, 2, 3, 4, 5, ...)" in str(stop.value)


def test_a_single_bad_record_among_many_does_not_fail_a_step(flows):
    flows["customers_company"].rejections.check("upsert to invoiced", 20, [("Name is required", "7")])


def test_many_rejections_for_different_reasons_do_not_fail_a_step(flows):
    reasons = [(f"CountryCode 'X{i}' is not valid", str(i)) for i in range(10)]
    flows["customers_person"].rejections.check("upsert to poweroffice_go", 10, reasons)


def test_the_rejection_limits_are_a_mapping_setting():
    data = yaml.safe_load((SHIPPED / "customers_company.yaml").read_text())
    data["rejections"] = {"max_fraction": 0.9, "min_records": 10}
    limits = FlowMapping.from_dict(data).rejections
    limits.check("map of invoiced", 9, [("same", str(i)) for i in range(9)])  # under min_records: passes
    assert (limits.max_fraction, limits.min_records) == (0.9, 10)


def _edited_copy(tmp_path: Path, old: str, new: str) -> Path:
    """A copy of the shipped mappings folder with one edit to the company flow's file; returns that file."""
    folder = tmp_path / "mappings"
    shutil.copytree(SHIPPED, folder)
    path = folder / "customers_company.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return path


def test_every_shipped_mapping_file_loads_as_the_flow_it_is_named_after():
    for path in sorted(SHIPPED.glob("*.yaml")):
        assert read_mapping_file(path).flow == path.stem


def test_a_misspelt_key_fails_naming_the_file_the_key_and_the_key_meant(tmp_path):
    path = _edited_copy(tmp_path, "  overlap_seconds: 2\n", "  overlap_second: 2\n")
    with pytest.raises(MappingError) as error:
        load_all(path.parent)
    assert str(path) in str(error.value)
    assert "poweroffice_go.overlap_second: unknown key (did you mean overlap_seconds?)" in str(error.value)


def test_a_value_of_the_wrong_type_fails_naming_the_key_and_the_expected_type(tmp_path):
    path = _edited_copy(tmp_path, "  overlap_seconds: 2\n", "  overlap_seconds: two\n")
    with pytest.raises(MappingError) as error:
        load_mapping("customers_company", path.parent)
    assert f"{path}: poweroffice_go.overlap_seconds: Input should be a valid number, got 'two'" in str(error.value)


def test_a_wrong_value_inside_a_field_names_the_field(tmp_path):
    path = _edited_copy(tmp_path, "    invoiced: name\n", "    invoiced: [name]\n")
    with pytest.raises(MappingError, match=r"fields\[0\]\.invoiced: field side must be a path.*\(in field name\)"):
        load_all(path.parent)


def test_a_missing_required_key_is_named(tmp_path):
    path = _edited_copy(tmp_path, "  entity: customers\n", "")
    with pytest.raises(MappingError, match=r"poweroffice_go\.entity: missing required key"):
        load_all(path.parent)


def test_an_unknown_conflict_policy_names_the_policies_there_are():
    data = yaml.safe_load((SHIPPED / "customers_company.yaml").read_text()) | {"conflict": "newest"}
    with pytest.raises(MappingError, match="conflict: Input should be 'latest', 'poweroffice_go' or 'invoiced'"):
        FlowMapping.from_dict(data)


def test_the_mappings_are_read_from_the_include_dir_setting(tmp_path, monkeypatch):
    (tmp_path / "mappings").mkdir()
    shutil.copy(SHIPPED / "customers_person.yaml", tmp_path / "mappings")
    monkeypatch.setenv(config.ENV_VAR, str(tmp_path))
    assert set(load_all()) == {"customers_person"}


def test_the_include_dir_defaults_to_the_folder_beside_the_dags_folder(monkeypatch):
    monkeypatch.delenv(config.ENV_VAR, raising=False)
    assert config.mappings_dir() == SHIPPED


def test_a_missing_mappings_folder_names_the_folder_and_the_setting(tmp_path, monkeypatch):
    monkeypatch.setenv(config.ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(MappingError) as error:
        load_mapping("customers_company")
    assert f"mappings folder {tmp_path / 'nowhere' / 'mappings'} does not exist" in str(error.value)
    assert config.ENV_VAR in str(error.value)
