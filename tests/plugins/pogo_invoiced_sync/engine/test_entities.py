"""The entity adapters' write rules: what each API can hold, and what is left out of a write."""
from pogo_invoiced_sync.engine.flow_mapping import INVOICED, POGO
from pogo_invoiced_sync.engine.entities import entity_for

CUSTOMERS = entity_for(POGO, "customers")
INVOICES = entity_for(INVOICED, "invoices")


def test_an_address_without_city_or_zip_code_is_left_out_of_a_poweroffice_go_create_with_a_reason():
    kept, left, reason = CUSTOMERS.split_writable(
        {"FirstName": "Ola", "LastName": "Nordmann", "MailAddress.AddressLine1": "Storgata 1",
         "MailAddress.City": None, "MailAddress.ZipCode": None, "MailAddress.CountryCode": "NO"}, None)
    assert kept == {"FirstName": "Ola", "LastName": "Nordmann"}
    assert set(left) == {"MailAddress.AddressLine1", "MailAddress.City", "MailAddress.ZipCode",
                         "MailAddress.CountryCode"}
    assert "no City and no ZipCode" in reason and "Storgata 1" in reason


def test_a_complete_address_is_written_as_it_is():
    write = {"MailAddress.City": "Oslo", "MailAddress.ZipCode": "0150", "MailAddress.CountryCode": "NO"}
    assert CUSTOMERS.split_writable(write, None) == (write, {}, None)


def test_an_update_of_one_address_part_counts_the_parts_the_record_already_has():
    current = {"MailAddress.City": "Oslo", "MailAddress.ZipCode": "0150", "MailAddress.AddressLine1": None}
    write = {"MailAddress.AddressLine1": "Ny gate 1"}
    assert CUSTOMERS.split_writable(write, current) == (write, {}, None)


def test_an_address_cleared_altogether_is_written():
    current = {"MailAddress.City": "Oslo", "MailAddress.ZipCode": "0150"}
    write = {"MailAddress.City": None, "MailAddress.ZipCode": None}
    assert CUSTOMERS.split_writable(write, current) == (write, {}, None)


def test_a_null_currency_is_never_sent_to_invoiced():
    kept, left, reason = INVOICES.split_writable({"currency": None}, {"currency": "nok"})
    assert (kept, left) == ({}, {"currency": None}) and "currency left out" in reason
    kept, left, reason = INVOICES.split_writable({"currency": None, "customer": 7}, None)
    assert (kept, left, reason) == ({"customer": 7}, {"currency": None}, None)  # a create: Invoiced fills it in


def test_a_poweroffice_go_create_carries_only_the_mapped_values_the_defaults_and_the_reference():
    body = CUSTOMERS.create_body({"Name": "Fjord AS"}, {"IsPerson": False}, "100042")
    assert body == {"Name": "Fjord AS", "IsPerson": False, "ExternalImportReference": "invoiced-customer-100042"}
