"""Every implemented endpoint's responses validate against the official PowerOffice Go OpenAPI schemas.

The specs are read at test time from the reference folder beside the checkout; without it these tests skip.
"""
from __future__ import annotations

import copy
import json

import pytest
import yaml
from openapi_schema_validator import OAS30ReadValidator, oas30_format_checker

API_SPEC = "poweroffice-go-v2.openapi.yaml"
AUTH_SPEC = "poweroffice-go-auth.openapi.json"


def _inline(node, schemas: dict, seen: tuple = ()):
    """Replace ``#/components/schemas/X`` references by the schemas themselves (these DTOs are not recursive)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if ref is not None:
            name = ref.rsplit("/", 1)[-1]
            assert name not in seen, f"recursive schema {name}"
            return _inline(copy.deepcopy(schemas[name]), schemas, seen + (name,))
        return {k: _inline(v, schemas, seen) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(v, schemas, seen) for v in node]
    return node


class Contract:
    """Response schemas looked up by path, method and status, as the spec declares them."""

    def __init__(self, api: dict, auth: dict) -> None:
        self.api, self.auth = api, auth

    def schema(self, path: str, method: str, status: int, auth: bool = False) -> dict:
        spec = self.auth if auth else self.api
        response = spec["paths"][path][method.lower()]["responses"][str(status)]
        return _inline(response["content"]["application/json"]["schema"], spec["components"]["schemas"])

    def check(self, response, path: str, method: str, status: int | None = None, auth: bool = False) -> None:
        """Assert the status and that the body fits the declared schema."""
        status = status or response.status_code
        assert response.status_code == status, response.text
        validator = OAS30ReadValidator(self.schema(path, method, status, auth), format_checker=oas30_format_checker)
        errors = sorted(validator.iter_errors(response.json()), key=lambda e: list(e.path))
        assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])


@pytest.fixture(scope="session")
def contract(shared_spec) -> Contract:
    api_path, auth_path = shared_spec / API_SPEC, shared_spec / AUTH_SPEC
    if not api_path.exists() or not auth_path.exists():
        pytest.skip(f"{API_SPEC} or {AUTH_SPEC} missing in {shared_spec}")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with api_path.open() as handle:
        api = yaml.load(handle, Loader=loader)
    return Contract(api, json.loads(auth_path.read_text()))


@pytest.fixture
def world(pogo):
    """A customer with an address and contact person, an order for it, and some seeded data."""
    pogo.admin.seed(companies=5, persons=5, sales_orders=10)
    customer = pogo.create_customer(EmailAddress="post@fjord.example", InvoiceDeliveryType="PdfByEmail",
                                    MailAddress={"AddressLine1": "Bryggen 1", "City": "Bergen", "ZipCode": "5003"},
                                    ExternalImportReference="inv_cus_1", NationalIdNumber="01019012345",
                                    CustomerSince="2020-01-01")
    person = pogo.post(f"/ContactPersons/{customer['Id']}", {"FirstName": "Kari", "LastName": "Berg",
                                                             "MailAddress": {"City": "Bergen", "ZipCode": "5003"}})
    order = pogo.create_order(customer["Id"], CustomerReferenceContactPersonId=person.json()["Id"],
                              SalesOrderDate="2026-03-01", lines=[
                                  {"Description": "Konsulenttime", "Quantity": 2, "ProductUnitPrice": 1250.0,
                                   "UnitOfMeasureCode": "HUR", "ExternalImportReference": "l1"}])
    return {"customer": customer, "person": person.json(), "order": order, "person_response": person}


def test_token_response_fits_the_auth_spec(contract, anonymous):
    contract.check(anonymous.request_token(), "/Token", "post", 200, auth=True)


def test_token_error_fits_the_auth_spec(contract, anonymous):
    response = anonymous.request_token(Authorization=anonymous.basic(client_key="wrong"))
    contract.check(response, "/Token", "post", 400, auth=True)


def test_token_rate_limit_body_fits_the_auth_spec(contract, anonymous):
    responses = [anonymous.request_token() for _ in range(12)]
    contract.check(next(r for r in responses if r.status_code == 429), "/Token", "post", 429, auth=True)


def test_client_integration_information_fits(contract, pogo):
    contract.check(pogo.get("/ClientIntegrationInformation"), "/ClientIntegrationInformation", "get", 200)


def test_customer_list_fits(contract, pogo, world):
    contract.check(pogo.get("/Customers"), "/Customers", "get", 200)


def test_customer_get_fits(contract, pogo, world):
    contract.check(pogo.get(f"/Customers/{world['customer']['Id']}"), "/Customers/{id}", "get", 200)


def test_customer_post_fits(contract, pogo, world):
    response = pogo.post("/Customers", {"IsPerson": True, "FirstName": "Ola", "LastName": "Nordmann",
                                        "InvoiceDeliveryType": "Print", "DateOfBirth": "1990-01-01"})
    contract.check(response, "/Customers", "post", 201)


def test_customer_patch_fits(contract, pogo, world):
    response = pogo.patch(f"/Customers/{world['customer']['Id']}",
                          [{"op": "replace", "path": "/MailAddress/City", "value": "Oslo"}])
    contract.check(response, "/Customers/{id}", "patch", 200)


def test_customer_validation_error_fits(contract, pogo, world):
    response = pogo.post("/Customers", {"Name": "A AS", "InvoiceDeliveryType": "PdfByEmail"})  # without an e-mail
    contract.check(response, "/Customers", "post", 400)


def test_customer_not_found_fits(contract, pogo, world):
    contract.check(pogo.get("/Customers/1"), "/Customers/{id}", "get", 404)


def test_customer_conflict_fits(contract, pogo, world):
    contract.check(pogo.delete(f"/Customers/{world['customer']['Id']}"), "/Customers/{id}", "delete", 409)


def test_contact_person_list_fits(contract, pogo, world):
    contract.check(pogo.get("/ContactPersons"), "/ContactPersons", "get", 200)


def test_contact_person_post_fits(contract, pogo, world):
    contract.check(world["person_response"], "/ContactPersons/{contactId}", "post", 201)


def test_contact_person_get_fits(contract, pogo, world):
    path = f"/ContactPersons/{world['customer']['Id']}/{world['person']['Id']}"
    contract.check(pogo.get(path), "/ContactPersons/{contactId}/{id}", "get", 200)


def test_contact_person_patch_fits(contract, pogo, world):
    path = f"/ContactPersons/{world['customer']['Id']}/{world['person']['Id']}"
    response = pogo.patch(path, [{"op": "replace", "path": "/EmailAddress", "value": "kari@fjord.example"}])
    contract.check(response, "/ContactPersons/{contactId}/{id}", "patch", 200)


def test_sales_order_list_fits(contract, pogo, world):
    contract.check(pogo.get("/SalesOrders"), "/SalesOrders", "get", 200)
    contract.check(pogo.get("/SalesOrders", showInherited="true"), "/SalesOrders", "get", 200)


def test_sales_order_get_fits(contract, pogo, world):
    contract.check(pogo.get(f"/SalesOrders/{world['order']['Id']}"), "/SalesOrders/{id}", "get", 200)


def test_sales_order_complete_get_fits(contract, pogo, world):
    response = pogo.get(f"/SalesOrders/{world['order']['Id']}/Complete")
    contract.check(response, "/SalesOrders/{id}/Complete", "get", 200)


def test_sales_order_complete_post_fits(contract, pogo, world):
    response = pogo.post("/SalesOrders/Complete", {"CustomerId": world["customer"]["Id"], "SalesOrderLines": [
        {"Description": "Frakt", "Quantity": 1, "ProductUnitPrice": 150}]})
    contract.check(response, "/SalesOrders/Complete", "post", 201)


def test_sales_order_patch_fits(contract, pogo, world):
    response = pogo.patch(f"/SalesOrders/{world['order']['Id']}",
                          [{"op": "replace", "path": "/SalesOrderStatus", "value": "Confirmed"}])
    contract.check(response, "/SalesOrders/{id}", "patch", 200)


def test_sales_order_not_found_fits(contract, pogo, world):
    response = pogo.get("/SalesOrders/00000000-0000-4000-8000-000000000000")
    contract.check(response, "/SalesOrders/{id}", "get", 404)


def test_create_and_send_invoice_fits(contract, pogo, world):
    response = pogo.post(f"/SalesOrders/{world['order']['Id']}/createAndSendInvoice", {"DeliveryType": "PdfByEmail"})
    contract.check(response, "/SalesOrders/{id}/createAndSendInvoice", "post", 202)


def test_sent_state_fits(contract, pogo, world):
    pogo.call("POST", f"/SalesOrders/{world['order']['Id']}/createAndSendInvoice")
    response = pogo.get("/SalesOrders/sentState", id=world["order"]["Id"])
    contract.check(response, "/SalesOrders/sentState", "get", 200)
