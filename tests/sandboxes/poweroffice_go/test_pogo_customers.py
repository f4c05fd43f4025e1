"""Customers in the PowerOffice Go sandbox: lists, filters, validation, JSON Patch and the MailAddress quirk."""
from __future__ import annotations

import json


def problem(response) -> dict:
    """The ProblemDetails body, checked for the lowercase member names."""
    body = response.json()
    assert {"type", "title", "status", "detail", "instance"} <= set(body)
    return body


# -- create and read --------------------------------------------------------------------------------------------

def test_created_customer_gets_an_id_a_number_and_norwegian_defaults(pogo):
    customer = pogo.create_customer(EmailAddress="post@fjord.example", InvoiceDeliveryType=None)
    assert customer["Id"] >= 1000001
    assert customer["Number"] == 10000
    assert customer["CurrencyCode"] == "NOK"
    assert customer["MailAddress"]["CountryCode"] == "NO"
    assert customer["InvoiceDeliveryType"] == "PdfByEmail"
    assert customer["LastChangedDateTimeOffset"] == customer["CustomerCreatedDateTimeOffset"]


def test_customer_numbers_count_up_from_10000(pogo):
    numbers = [pogo.create_customer(Name=f"Firma {i} AS")["Number"] for i in range(3)]
    assert numbers == [10000, 10001, 10002]


def test_timestamps_look_like_dotnet_datetimeoffsets_and_never_repeat(pogo):
    stamps = [pogo.create_customer(Name=f"Firma {i} AS")["LastChangedDateTimeOffset"] for i in range(5)]
    assert all(len(s) == 32 and s[10] == "T" and s.endswith("+00:00") and s[19] == "." for s in stamps)
    assert stamps == sorted(set(stamps))


def test_person_customer_gets_its_name_from_first_and_last_name(pogo):
    customer = pogo.create_customer(IsPerson=True, FirstName="Kari", LastName="Nordmann", Name="ignored")
    assert customer["Name"] == "Kari Nordmann"


def test_customer_can_be_read_by_id(pogo):
    customer = pogo.create_customer()
    assert pogo.get(f"/Customers/{customer['Id']}").json() == customer


def test_unknown_customer_is_a_404_problem(pogo):
    response = pogo.get("/Customers/999")
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert problem(response)["title"] == "Object(s) not found"
    assert problem(response)["detail"] == "Customer with id = 999 not found."


def test_paths_are_case_insensitive_and_served_under_demo_too(sandboxes, pogo):
    customer = pogo.create_customer()
    assert pogo.call("GET", f"/CUSTOMERS/{customer['Id']}").status_code == 200
    demo = type(pogo)(sandboxes, prefix="/Demo").login()
    assert demo.get(f"/customers/{customer['Id']}").json()["Id"] == customer["Id"]


# -- validation -------------------------------------------------------------------------------------------------

def assert_invalid(pogo, body: dict, fragment: str) -> None:
    response = pogo.post("/Customers", body)
    assert response.status_code == 400, response.text
    assert problem(response)["title"] == "Customer validation error(s)"
    assert fragment in problem(response)["detail"]


def test_company_without_name_is_refused(pogo):
    assert_invalid(pogo, {"InvoiceDeliveryType": "Print"}, "Name is required")


def test_person_without_last_name_is_refused(pogo):
    assert_invalid(pogo, {"IsPerson": True, "FirstName": "Ola", "InvoiceDeliveryType": "Print"}, "LastName")


def test_mail_address_without_city_and_zip_code_is_refused(pogo):
    assert_invalid(pogo, {"Name": "A AS", "InvoiceDeliveryType": "Print", "MailAddress": {"AddressLine1": "Gata 1"}},
                   "MailAddress.City is required")


def test_address_line_longer_than_200_characters_is_refused(pogo):
    address = {"AddressLine1": "x" * 201, "City": "Oslo", "ZipCode": "0150"}
    assert_invalid(pogo, {"Name": "A AS", "InvoiceDeliveryType": "Print", "MailAddress": address}, "AddressLine1")


def test_unknown_country_code_is_refused(pogo):
    address = {"City": "Oslo", "ZipCode": "0150", "CountryCode": "XX"}
    assert_invalid(pogo, {"Name": "A AS", "InvoiceDeliveryType": "Print", "MailAddress": address}, "ISO 3166")


def test_unknown_currency_code_is_refused(pogo):
    assert_invalid(pogo, {"Name": "A AS", "InvoiceDeliveryType": "Print", "CurrencyCode": "KRONER"}, "ISO 4217")


def test_pdf_by_email_set_explicitly_without_an_email_address_is_refused(pogo):
    assert_invalid(pogo, {"Name": "A AS", "InvoiceDeliveryType": "PdfByEmail"},
                   "PdfByEmail requires EmailAddress or InvoiceEmailAddress")


def test_a_customer_posted_with_only_a_name_is_accepted_and_gets_print_delivery(pogo):
    response = pogo.post("/Customers", {"Name": "Bare Navn AS"})
    assert response.status_code == 201, response.text
    assert response.json()["InvoiceDeliveryType"] == "Print"


def test_print_delivery_needs_no_email_address_and_enums_ignore_case(pogo):
    assert pogo.create_customer(InvoiceDeliveryType="print")["InvoiceDeliveryType"] == "Print"


def test_external_import_reference_longer_than_50_characters_is_refused(pogo):
    assert_invalid(pogo, {"Name": "A AS", "InvoiceDeliveryType": "Print", "ExternalImportReference": "r" * 51},
                   "longer than 50")


def test_external_import_reference_must_be_unique_among_customers(pogo):
    first = pogo.create_customer(ExternalImportReference="inv-cus-1")
    assert_invalid(pogo, {"Name": "B AS", "InvoiceDeliveryType": "Print", "ExternalImportReference": "inv-cus-1"},
                   f"ExternalImportReference is already in use. 'inv-cus-1' is used on (contact) Id = {first['Id']}.")


def test_wrong_json_type_is_a_binding_error(pogo):
    response = pogo.post("/Customers", {"Name": "A AS", "InvoiceDeliveryType": "Print", "IsPerson": "maybe"})
    assert response.status_code == 400
    assert "IsPerson" in problem(response)["detail"]


# -- lists ------------------------------------------------------------------------------------------------------

def test_empty_list_is_204_with_an_empty_body(pogo):
    response = pogo.get("/Customers")
    assert response.status_code == 204
    assert response.content == b""


def test_list_pages_carry_an_x_pagination_header_with_absolute_links(pogo):
    pogo.admin.seed(companies=12, contact_persons_per_company=0)
    response = pogo.get("/Customers", PageSize=5, PageNumber=2)
    assert response.status_code == 200
    assert len(response.json()) == 5
    paging = json.loads(response.headers["X-Pagination"])
    assert {k: paging[k] for k in ("totalCount", "pageSize", "currentPage", "totalPages")} == {
        "totalCount": 12, "pageSize": 5, "currentPage": 2, "totalPages": 3}
    assert paging["nextPageLink"].startswith("http://") and "PageNumber=3" in paging["nextPageLink"]
    assert "PageNumber=1" in paging["previousPageLink"]


def test_last_page_has_no_next_link_and_a_page_past_the_end_is_204(pogo):
    pogo.admin.seed(companies=12, contact_persons_per_company=0)
    last = pogo.get("/Customers", PageSize=5, PageNumber=3)
    assert len(last.json()) == 2
    assert json.loads(last.headers["X-Pagination"])["nextPageLink"] is None
    assert pogo.get("/Customers", PageSize=5, PageNumber=4).status_code == 204


def test_lists_are_ordered_by_id(pogo):
    pogo.admin.seed(companies=5, persons=5)
    ids = [c["Id"] for c in pogo.get("/Customers").json()]
    assert ids == sorted(ids) and len(ids) == 10


def test_order_by_sorts_by_a_property_descending(pogo):
    for name in ("Bris AS", "Aurora AS", "Ci AS"):
        pogo.create_customer(Name=name)
    assert [r["Name"] for r in pogo.get("/Customers", OrderBy="Name desc").json()] == ["Ci AS", "Bris AS", "Aurora AS"]


def test_page_size_above_20000_is_refused(pogo):
    response = pogo.get("/Customers", PageSize=20001)
    assert response.status_code == 400
    assert "MaxPageSize" in problem(response)["detail"]


def test_odata_options_are_refused(pogo):
    assert pogo.get("/Customers", **{"$top": 1}).status_code == 400


def test_fields_returns_only_the_named_properties_with_mail_address_whole(pogo):
    pogo.create_customer(MailAddress={"City": "Bergen", "ZipCode": "5003"})
    rows = pogo.get("/Customers", Fields="id,Name,MailAddress").json()
    assert set(rows[0]) == {"Id", "Name", "MailAddress"}
    assert rows[0]["MailAddress"]["City"] == "Bergen"


def test_unknown_field_in_fields_is_refused(pogo):
    assert pogo.get("/Customers", Fields="Id,Shoesize").status_code == 400


def test_last_changed_filter_is_strictly_greater_than(pogo):
    first = pogo.create_customer(Name="Først AS")
    second = pogo.create_customer(Name="Andre AS")
    rows = pogo.get("/Customers", lastChangedDateTimeOffsetGreaterThan=first["LastChangedDateTimeOffset"]).json()
    assert [r["Id"] for r in rows] == [second["Id"]]
    response = pogo.get("/Customers", lastChangedDateTimeOffsetGreaterThan=second["LastChangedDateTimeOffset"])
    assert response.status_code == 204


def test_last_changed_filter_accepts_the_dotnet_spaced_format(pogo):
    pogo.create_customer()
    assert pogo.get("/Customers", lastChangedDateTimeOffsetGreaterThan="2021-09-25 08:03:00.1234567 -00:00"
                    ).status_code == 200


def test_unparseable_timestamp_filter_is_refused(pogo):
    assert pogo.get("/Customers", lastChangedDateTimeOffsetGreaterThan="yesterday").status_code == 400


def test_customer_created_filter_is_strictly_greater_than(pogo):
    first = pogo.create_customer(Name="Først AS")
    second = pogo.create_customer(Name="Andre AS")
    since = first["CustomerCreatedDateTimeOffset"]
    rows = pogo.get("/Customers", customerCreatedDateTimeOffsetGreaterThan=since).json()
    assert [r["Id"] for r in rows] == [second["Id"]]


def test_customer_nos_takes_numbers_closed_ranges_and_open_ranges(pogo):
    pogo.admin.seed(companies=10, contact_persons_per_company=0)
    rows = pogo.get("/Customers", customerNos="10001-10002, 10005,10008-").json()
    assert [r["Number"] for r in rows] == [10001, 10002, 10005, 10008, 10009]


def test_malformed_customer_nos_is_refused(pogo):
    response = pogo.get("/Customers", customerNos="10001-x")
    assert response.status_code == 400
    assert problem(response)["title"] == "Unable to cast object(s)"


def test_external_import_reference_filter_matches_exactly(pogo):
    wanted = pogo.create_customer(ExternalImportReference="inv-7")
    pogo.create_customer(ExternalImportReference="inv-77")
    assert [r["Id"] for r in pogo.get("/Customers", externalImportReference="inv-7").json()] == [wanted["Id"]]
    assert pogo.get("/Customers", externalImportReference="inv-").status_code == 204


def test_query_parameter_names_are_case_insensitive(pogo):
    pogo.admin.seed(companies=3, contact_persons_per_company=0)
    assert len(pogo.get("/Customers", pagesize=2, CUSTOMERNOS="10000-").json()) == 2


# -- JSON Patch -------------------------------------------------------------------------------------------------

def test_patch_with_a_plain_json_body_is_refused_with_415(pogo):
    customer = pogo.create_customer()
    response = pogo.call("PATCH", f"/Customers/{customer['Id']}", json={"Name": "Nytt Navn AS"})
    assert response.status_code == 415
    assert pogo.get(f"/Customers/{customer['Id']}").json()["Name"] == customer["Name"]


def test_patch_with_an_object_instead_of_an_operation_array_is_refused(pogo):
    customer = pogo.create_customer()
    assert pogo.patch(f"/Customers/{customer['Id']}", {"Name": "Nytt Navn AS"}).status_code == 400


def test_patch_replace_changes_the_field_and_moves_last_changed(pogo):
    customer = pogo.create_customer()
    response = pogo.patch(f"/Customers/{customer['Id']}", [{"op": "replace", "path": "/name", "value": "Nytt AS"}])
    assert response.status_code == 200
    assert response.json()["Name"] == "Nytt AS"
    assert response.json()["LastChangedDateTimeOffset"] > customer["LastChangedDateTimeOffset"]


def test_patch_coerces_string_values_to_the_field_type(pogo):
    customer = pogo.create_customer()
    patched = pogo.patch(f"/Customers/{customer['Id']}", [{"op": "replace", "path": "/Number", "value": "12345"},
                                                          {"op": "add", "path": "/IsVatFree", "value": "true"}]).json()
    assert patched["Number"] == 12345 and patched["IsVatFree"] is True


def test_patch_remove_clears_a_field(pogo):
    customer = pogo.create_customer(PhoneNumber="+47 22 22 22 22")
    patched = pogo.patch(f"/Customers/{customer['Id']}", [{"op": "remove", "path": "/PhoneNumber"}]).json()
    assert patched["PhoneNumber"] is None


def test_failing_test_operation_rejects_the_whole_patch(pogo):
    customer = pogo.create_customer()
    response = pogo.patch(f"/Customers/{customer['Id']}", [
        {"op": "replace", "path": "/Name", "value": "Skal ikke lagres AS"},
        {"op": "test", "path": "/Number", "value": 1}])
    assert response.status_code == 400
    assert pogo.get(f"/Customers/{customer['Id']}").json()["Name"] == customer["Name"]


def test_patch_of_an_unknown_or_read_only_path_is_refused(pogo):
    customer = pogo.create_customer()
    for path in ("/Shoesize", "/Id", "/LastChangedDateTimeOffset"):
        response = pogo.patch(f"/Customers/{customer['Id']}", [{"op": "replace", "path": path, "value": "1"}])
        assert response.status_code == 400, path


def test_patch_is_validated_like_a_create(pogo):
    customer = pogo.create_customer()
    response = pogo.patch(f"/Customers/{customer['Id']}", [{"op": "replace", "path": "/InvoiceDeliveryType",
                                                            "value": "PdfByEmail"}])
    assert response.status_code == 400
    assert "PdfByEmail" in problem(response)["detail"]


def test_patch_cannot_take_another_customers_external_import_reference(pogo):
    pogo.create_customer(ExternalImportReference="taken")
    other = pogo.create_customer()
    response = pogo.patch(f"/Customers/{other['Id']}", [{"op": "add", "path": "/ExternalImportReference",
                                                         "value": "taken"}])
    assert response.status_code == 400


def test_patch_of_an_unknown_customer_is_404(pogo):
    assert pogo.patch("/Customers/424242", [{"op": "replace", "path": "/Name", "value": "X"}]).status_code == 404


# -- the MailAddress quirk --------------------------------------------------------------------------------------

def test_mail_address_change_does_not_move_the_customers_last_changed(pogo):
    customer = pogo.create_customer(MailAddress={"City": "Oslo", "ZipCode": "0150"})
    patched = pogo.patch(f"/Customers/{customer['Id']}", [{"op": "replace", "path": "/MailAddress/City",
                                                           "value": "Bergen"}]).json()
    assert patched["MailAddress"]["City"] == "Bergen"
    assert patched["LastChangedDateTimeOffset"] == customer["LastChangedDateTimeOffset"]
    assert patched["MailAddress"]["LastChangedDateTimeOffset"] > customer["MailAddress"]["LastChangedDateTimeOffset"]


def test_mail_address_change_is_invisible_to_the_last_changed_filter(pogo):
    customer = pogo.create_customer(MailAddress={"City": "Oslo", "ZipCode": "0150"})
    pogo.patch(f"/Customers/{customer['Id']}", [{"op": "replace", "path": "/MailAddress",
                                                 "value": {"AddressLine1": "Bryggen 1", "City": "Bergen",
                                                           "ZipCode": "5003", "CountryCode": "NO"}}])
    response = pogo.get("/Customers", lastChangedDateTimeOffsetGreaterThan=customer["LastChangedDateTimeOffset"])
    assert response.status_code == 204


def test_own_field_change_together_with_an_address_change_moves_both_timestamps(pogo):
    customer = pogo.create_customer(MailAddress={"City": "Oslo", "ZipCode": "0150"})
    patched = pogo.patch(f"/Customers/{customer['Id']}", [
        {"op": "replace", "path": "/MailAddress/ZipCode", "value": "0151"},
        {"op": "replace", "path": "/PhoneNumber", "value": "+47 99 99 99 99"}]).json()
    assert patched["LastChangedDateTimeOffset"] > customer["LastChangedDateTimeOffset"]
    assert patched["MailAddress"]["LastChangedDateTimeOffset"] > customer["MailAddress"]["LastChangedDateTimeOffset"]


def test_address_patch_keeps_city_and_zip_code_required(pogo):
    customer = pogo.create_customer(MailAddress={"City": "Oslo", "ZipCode": "0150"})
    response = pogo.patch(f"/Customers/{customer['Id']}", [{"op": "remove", "path": "/MailAddress/City"}])
    assert response.status_code == 400


# -- delete -----------------------------------------------------------------------------------------------------

def test_deleted_customer_is_gone(pogo):
    customer = pogo.create_customer()
    response = pogo.delete(f"/Customers/{customer['Id']}")
    assert response.status_code == 200 and response.content == b""
    assert pogo.get(f"/Customers/{customer['Id']}").status_code == 404
    assert pogo.get("/Customers").status_code == 204


def test_customer_used_by_a_sales_order_cannot_be_deleted(pogo):
    customer = pogo.create_customer()
    pogo.create_order(customer["Id"])
    response = pogo.delete(f"/Customers/{customer['Id']}")
    assert response.status_code == 409
    assert problem(response)["title"] == "Customer conflict"
    assert problem(response)["detail"] == f"Customer with id = {customer['Id']} is in use and cannot be deleted."


def test_customer_can_be_deleted_once_its_only_order_is_deleted(pogo):
    customer = pogo.create_customer()
    order = pogo.create_order(customer["Id"])
    pogo.delete(f"/SalesOrders/{order['Id']}")
    assert pogo.delete(f"/Customers/{customer['Id']}").status_code == 200


def test_lists_see_writes_immediately(pogo):
    pogo.admin.seed(companies=3, contact_persons_per_company=0)
    assert len(pogo.get("/Customers").json()) == 3
    pogo.create_customer()  # no replica lag is emulated: a write is visible to the next read
    assert len(pogo.get("/Customers").json()) == 4
