"""Sales orders (invoice drafts) in the PowerOffice Go sandbox."""
from __future__ import annotations

import re

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_order_is_created_complete_with_a_uuid_a_number_and_draft_status(pogo):
    customer = pogo.create_customer()
    order = pogo.create_order(customer["Id"])
    assert UUID.match(order["Id"])
    assert order["SalesOrderNo"] == 1
    assert order["SalesOrderStatus"] == "Draft"
    assert order["CustomerNo"] == customer["Number"]
    assert UUID.match(order["SalesOrderLines"][0]["Id"])
    assert order["SalesOrderLines"][0]["SalesOrderId"] == order["Id"]


def test_amounts_come_from_quantity_price_allowance_and_25_percent_vat(pogo):
    customer = pogo.create_customer()
    order = pogo.create_order(customer["Id"], lines=[
        {"Description": "Konsulenttime", "Quantity": 3, "ProductUnitPrice": 1000.0, "Allowance": 10},
        {"Description": "Frakt", "Quantity": 1, "ProductUnitPrice": 150.0},
        {"Description": "Takk for handelen", "LineType": "Text"}])
    assert [line["NetAmount"] for line in order["SalesOrderLines"]] == [2700.0, 150.0, 0.0]
    assert order["SalesOrderLines"][0]["VatAmount"] == 675.0
    assert order["NetAmount"] == 2850.0
    assert order["TotalAmount"] == 3562.5
    assert order["LineCount"] == 3


def test_order_without_lines_is_allowed(pogo):
    order = pogo.create_order(pogo.create_customer()["Id"], lines=[])
    assert order["LineCount"] == 0 and order["SalesOrderLines"] == [] and order["TotalAmount"] == 0


def test_an_order_posted_without_a_currency_inherits_it_null_unless_show_inherited_asks_for_the_customers(pogo):
    customer = pogo.create_customer(CurrencyCode="SEK")
    order = pogo.create_order(customer["Id"])
    assert order["CurrencyCode"] is None  # inherited: stored and shown as null
    assert pogo.get(f"/SalesOrders/{order['Id']}").json()["CurrencyCode"] is None
    assert pogo.get(f"/SalesOrders/{order['Id']}", showInherited="true").json()["CurrencyCode"] == "SEK"
    assert pogo.get(f"/SalesOrders/{order['Id']}/Complete", showInherited="true").json()["CurrencyCode"] == "SEK"
    [listed] = pogo.get("/SalesOrders", showInherited="true").json()
    assert listed["CurrencyCode"] == "SEK"
    assert pogo.get("/SalesOrders").json()[0]["CurrencyCode"] is None


def test_an_inherited_currency_follows_the_customers_currency(pogo):
    customer = pogo.create_customer(CurrencyCode="SEK")
    order = pogo.create_order(customer["Id"])
    pogo.patch(f"/Customers/{customer['Id']}", [{"op": "replace", "path": "/CurrencyCode", "value": "EUR"}])
    assert pogo.get(f"/SalesOrders/{order['Id']}", showInherited="true").json()["CurrencyCode"] == "EUR"


def test_an_explicit_currency_is_shown_as_it_is_with_or_without_show_inherited(pogo):
    customer = pogo.create_customer(CurrencyCode="SEK")
    order = pogo.create_order(customer["Id"], CurrencyCode="dkk")
    assert order["CurrencyCode"] == "DKK"
    assert pogo.get(f"/SalesOrders/{order['Id']}", showInherited="true").json()["CurrencyCode"] == "DKK"


def test_an_inherited_reference_contact_person_is_the_customers_default_person_with_show_inherited(pogo):
    customer = pogo.create_customer()
    person = pogo.post(f"/ContactPersons/{customer['Id']}", {"FirstName": "Kari", "LastName": "Berg",
                                                           "IsDefault": True}).json()
    order = pogo.create_order(customer["Id"])
    assert order["CustomerReferenceContactPersonId"] is None
    shown = pogo.get(f"/SalesOrders/{order['Id']}", showInherited="true").json()
    assert shown["CustomerReferenceContactPersonId"] == person["Id"]


def test_invalid_order_currency_is_refused(pogo):
    customer = pogo.create_customer()
    response = pogo.post("/SalesOrders/Complete", {"CustomerId": customer["Id"], "CurrencyCode": "XYZ"})
    assert response.status_code == 400


def test_order_for_an_unknown_customer_is_404(pogo):
    response = pogo.post("/SalesOrders/Complete", {"CustomerId": 999, "SalesOrderLines": []})
    assert response.status_code == 404
    assert response.json()["title"] == "Object(s) not found"


def test_order_can_name_the_customer_by_number(pogo):
    customer = pogo.create_customer()
    response = pogo.post("/SalesOrders/Complete", {"CustomerNo": customer["Number"]})
    assert response.json()["CustomerId"] == customer["Id"]


def test_reference_contact_person_must_exist(pogo):
    customer = pogo.create_customer()
    response = pogo.post("/SalesOrders/Complete", {"CustomerId": customer["Id"],
                                                   "CustomerReferenceContactPersonId": 4242})
    assert response.status_code == 404


def test_reference_contact_person_name_shows_as_customer_reference(pogo):
    customer = pogo.create_customer()
    person = pogo.post(f"/ContactPersons/{customer['Id']}", {"FirstName": "Kari", "LastName": "Berg"}).json()
    order = pogo.create_order(customer["Id"], CustomerReferenceContactPersonId=person["Id"])
    assert order["CustomerReference"] == "Kari Berg"


def test_external_import_reference_is_unique_among_sales_orders(pogo):
    customer = pogo.create_customer()
    pogo.create_order(customer["Id"], ExternalImportReference="inv_123")
    response = pogo.post("/SalesOrders/Complete", {"CustomerId": customer["Id"], "ExternalImportReference": "inv_123"})
    assert response.status_code == 400
    assert "already in use" in response.json()["detail"]


def test_list_shows_headers_only_and_complete_shows_lines(pogo):
    order = pogo.create_order(pogo.create_customer()["Id"])
    listed = pogo.get("/SalesOrders").json()
    assert "SalesOrderLines" not in listed[0]
    assert "SalesOrderLines" not in pogo.get(f"/SalesOrders/{order['Id']}").json()
    assert pogo.get(f"/SalesOrders/{order['Id']}/Complete").json() == order


def test_orders_can_be_filtered_by_status_customer_numbers_and_last_change(pogo):
    first, second = pogo.create_customer(), pogo.create_customer(Name="Andre AS")
    old = pogo.create_order(first["Id"])
    new = pogo.create_order(second["Id"])
    pogo.patch(f"/SalesOrders/{new['Id']}", [{"op": "replace", "path": "/SalesOrderStatus", "value": "Confirmed"}])
    assert [o["Id"] for o in pogo.get("/SalesOrders", orderStatus="Draft").json()] == [old["Id"]]
    assert [o["Id"] for o in pogo.get("/SalesOrders", customerNos=str(second["Number"])).json()] == [new["Id"]]
    changed = pogo.get("/SalesOrders", lastChangedDateTimeOffsetGreaterThan=old["LastChangedDateTimeOffset"]).json()
    assert [o["Id"] for o in changed] == [new["Id"]]


def test_every_patch_moves_the_orders_last_changed(pogo):
    order = pogo.create_order(pogo.create_customer()["Id"])
    patched = pogo.patch(f"/SalesOrders/{order['Id']}", [{"op": "add", "path": "/PurchaseOrderReference",
                                                          "value": "PO-77"}])
    assert patched.status_code == 200
    assert patched.json()["PurchaseOrderReference"] == "PO-77"
    assert patched.json()["LastChangedDateTimeOffset"] > order["LastChangedDateTimeOffset"]


def test_confirmed_order_refuses_other_edits(pogo):
    order = pogo.create_order(pogo.create_customer()["Id"])
    pogo.patch(f"/SalesOrders/{order['Id']}", [{"op": "replace", "path": "/SalesOrderStatus", "value": "Confirmed"}])
    response = pogo.patch(f"/SalesOrders/{order['Id']}", [{"op": "replace", "path": "/ContractNo", "value": "K-1"}])
    assert response.status_code == 400
    assert "confirmed" in response.json()["detail"]


def test_confirmed_order_can_go_back_to_draft(pogo):
    order = pogo.create_order(pogo.create_customer()["Id"])
    pogo.patch(f"/SalesOrders/{order['Id']}", [{"op": "replace", "path": "/SalesOrderStatus", "value": "Confirmed"}])
    response = pogo.patch(f"/SalesOrders/{order['Id']}", [{"op": "replace", "path": "/SalesOrderStatus",
                                                           "value": "Draft"}])
    assert response.status_code == 200 and response.json()["SalesOrderStatus"] == "Draft"


def test_order_patch_needs_json_patch(pogo):
    order = pogo.create_order(pogo.create_customer()["Id"])
    assert pogo.call("PATCH", f"/SalesOrders/{order['Id']}", json={"ContractNo": "K-1"}).status_code == 415


def test_deleted_order_is_gone(pogo):
    order = pogo.create_order(pogo.create_customer()["Id"])
    assert pogo.delete(f"/SalesOrders/{order['Id']}").status_code == 200
    assert pogo.get(f"/SalesOrders/{order['Id']}").status_code == 404


def test_sent_order_becomes_an_invoice_and_leaves_the_list(pogo):
    order = pogo.create_order(pogo.create_customer(EmailAddress="faktura@fjord.example")["Id"])
    response = pogo.post(f"/SalesOrders/{order['Id']}/createAndSendInvoice", {"DeliveryType": "PdfByEmail"})
    assert response.status_code == 202
    assert response.headers["Location"].endswith(f"/v2/SalesOrders/sentState?id={order['Id']}")
    assert pogo.get(f"/SalesOrders/{order['Id']}").status_code == 404
    assert pogo.get("/SalesOrders").status_code == 204
    state = pogo.get("/SalesOrders/sentState", id=order["Id"]).json()
    assert state[0]["InvoiceNo"] and state[0]["SentDateTimeOffset"]


def test_order_without_lines_cannot_be_sent(pogo):
    order = pogo.create_order(pogo.create_customer()["Id"], lines=[])
    assert pogo.call("POST", f"/SalesOrders/{order['Id']}/createAndSendInvoice").status_code == 400


def test_customer_with_an_invoice_cannot_be_deleted(pogo):
    customer = pogo.create_customer()
    order = pogo.create_order(customer["Id"])
    pogo.call("POST", f"/SalesOrders/{order['Id']}/createAndSendInvoice")
    assert pogo.delete(f"/Customers/{customer['Id']}").status_code == 409


def test_malformed_order_id_is_a_400(pogo):
    assert pogo.get("/SalesOrders/not-a-uuid").status_code == 400
