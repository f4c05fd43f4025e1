"""In-memory PowerOffice Go client data: customers, contact persons and sales orders, with Go's rules.

Records are kept sparse (only the members that differ from the DTO defaults) so that 100,000 of each stay small;
``render_*`` turns them into the DTOs the API returns.
"""
from __future__ import annotations

import re
import uuid

from sandboxes.poweroffice_go import fields as F
from sandboxes.poweroffice_go import reference
from sandboxes.poweroffice_go.clock import Clock
from sandboxes.poweroffice_go.errors import ApiError, not_found
from sandboxes.poweroffice_go.jsonpatch import PatchError, apply_patch
from sandboxes.poweroffice_go.listing import Page, Query, in_ranges, sort_ids

FIRST_CONTACT_ID = 1000001
FIRST_CONTACT_PERSON_ID = 2000001
FIRST_ADDRESS_ID = 3000001
FIRST_CUSTOMER_NUMBER = 10000
FIRST_SALES_ORDER_NO = 1
FIRST_INVOICE_NO = 100001
SUBLEDGER_ACCOUNT_OFFSET = 7000000

CLIENT_CURRENCY = "NOK"  # the client's own currency, where neither the order nor its customer has one
CUSTOMER_TITLE = "Customer validation error(s)"
CONTACT_PERSON_TITLE = "ContactPerson validation error(s)"
SALES_ORDER_TITLE = "SalesOrder validation error(s)"
_EMAIL = re.compile(r"^[^@\s;,]+@[^@\s;,]+\.[^@\s;,]{2,}$")

# CustomerDto members in the order Go writes them, with the values a new customer gets.
CUSTOMER_TEMPLATE = {
    "Id": 0, "Number": None, "Name": None, "FirstName": None, "LastName": None, "IsPerson": False, "LegalName": None,
    "OrganizationNumber": None, "NationalIdNumber": None, "DateOfBirth": None, "EmailAddress": None,
    "InvoiceEmailAddress": None, "InvoiceEmailAddressCC": None, "PaymentReminderEmailAddress": None,
    "PhoneNumber": None, "WebsiteUrl": None, "MailAddress": None, "CurrencyCode": "NOK", "ContactGroupIds": [],
    "CustomerSince": None, "ExternalImportReference": None, "ExternalNumber": None, "IsActive": True,
    "IsArchived": False, "IsVatFree": False, "Allowance": None, "BillableRate": None, "PaymentTermId": None,
    "PaymentTerm": 14, "DeliveryTermId": None, "DeliveryTerm": None, "DepartmentId": None, "DepartmentCode": None,
    "InvoiceBrandingThemeId": None, "InvoiceBrandingThemeCode": None, "SalesPersonEmployeeId": None,
    "SalesPersonEmployeeNumber": None, "InvoiceDeliveryType": "PdfByEmail", "ReminderDeliveryType": "PdfByEmail",
    "NoticeOfDebtCollectionDeliveryType": "PdfByEmail", "SendPaymentReminders": True, "UseInvoiceFee": True,
    "TransferToDebtCollectionAgency": True, "DoNotAddLatePaymentFees": False, "DoNotAddLatePaymentInterest": False,
    "DoNotAutomatePaymentNotifications": False, "SubledgerAccountId": 0, "CreatedFromImportJournalId": None,
    "ContactCreatedDateTimeOffset": None, "CustomerCreatedDateTimeOffset": None, "LastChangedDateTimeOffset": None,
}
CONTACT_ADDRESS_TEMPLATE = {"Id": 0, "AddressLine1": None, "AddressLine2": None, "City": None, "ZipCode": None,
                            "CountryCode": "NO", "ExternalCode": None, "LastChangedDateTimeOffset": None}
ADDRESS_TEMPLATE = {"AddressLine1": None, "AddressLine2": None, "City": None, "ZipCode": None, "CountryCode": None}
CONTACT_PERSON_TEMPLATE = {
    "Id": 0, "ContactId": 0, "FirstName": None, "LastName": None, "Title": None, "EmailAddress": None,
    "PhoneNumber": None, "IsActive": True, "IsDefault": False, "ExternalCode": None, "MailAddress": None,
    "CreatedDateTimeOffset": None, "LastChangedDateTimeOffset": None,
}
SALES_ORDER_TEMPLATE = {
    "Id": None, "SalesOrderNo": None, "SalesOrderStatus": "Draft", "SalesOrderDate": None, "DeliveryDate": None,
    "CustomerId": None, "CustomerNo": None, "CustomerReference": None, "CustomerReferenceContactPersonId": None,
    "CurrencyCode": "NOK", "CurrencyExchangeRate": None, "ExternalImportReference": None, "ImportedOrderNo": None,
    "PurchaseOrderReference": None, "ContractNo": None, "CustomMatchingReference": None, "RelatedInvoiceNo": None,
    "PaymentTermId": None, "PaymentTerm": None, "DeliveryTermId": None, "DeliveryTerm": None, "BrandingThemeId": None,
    "BrandingThemeCode": None, "DepartmentId": None, "DepartmentCode": None, "ProjectId": None, "ProjectCode": None,
    "LocationId": None, "LocationCode": None, "Dim1Id": None, "Dim1Code": None, "Dim2Id": None, "Dim2Code": None,
    "Dim3Id": None, "Dim3Code": None, "SalesPersonEmployeeId": None, "SalesPersonEmployeeNumber": None,
    "ContactDeliveryAddressId": None, "NetAmount": 0.0, "TotalAmount": 0.0, "LineCount": 0,
    "IsCreatedByCurrentIntegration": True, "CreatedDateTimeOffset": None, "LastChangedDateTimeOffset": None,
}
SALES_ORDER_LINE_TEMPLATE = {
    "Id": None, "SalesOrderId": None, "LineType": "Normal", "ProductId": None, "ProductCode": None,
    "Description": None, "Quantity": None, "UnitOfMeasureCode": "EA", "ProductUnitPrice": None,
    "ProductUnitCost": None, "Allowance": 0.0, "NetAmount": 0.0, "VatAmount": 0.0, "TotalAmount": 0.0, "VatId": None,
    "VatCode": None, "VatRate": None, "SortOrder": 0, "UseStandardSalesAccount": None, "VatReturnSpecification": "None",
    "DepartmentId": None, "DepartmentCode": None, "ProjectId": None, "ProjectCode": None, "LocationId": None,
    "LocationCode": None, "Dim1Id": None, "Dim1Code": None, "Dim2Id": None, "Dim2Code": None, "Dim3Id": None,
    "Dim3Code": None, "SellersReferenceEmployeeId": None, "SellersReferenceEmployeeNo": None,
    "ExternalImportReference": None,
}
CUSTOMER_PROPERTIES = list(CUSTOMER_TEMPLATE)
CONTACT_PERSON_PROPERTIES = list(CONTACT_PERSON_TEMPLATE)
SALES_ORDER_PROPERTIES = list(SALES_ORDER_TEMPLATE)


def _sparse(record: dict, template: dict) -> dict:
    """Drop members equal to the template's default, so stored records hold only what differs."""
    return {k: v for k, v in record.items() if k not in template or template[k] != v or k in ("Id",)}


def _bind(fields: dict, body, dto: str) -> dict:
    try:
        return F.bind(fields, body, dto)
    except F.BindingError as exc:
        raise ApiError(400, "One or more validation errors occurred.", str(exc)) from None


def _patch(view: dict, operations, fields: dict, dto: str, title: str) -> dict:
    try:
        return apply_patch(view, operations, fields, dto)
    except PatchError as exc:
        raise ApiError(400, title, str(exc)) from None


def _check_address(address: dict | None, errors: list[str], prefix: str, require_city_zip: bool) -> None:
    """Length limits, a valid ISO 3166-1 country and, where Go demands it, City and ZipCode."""
    if address is None:
        return
    for name, limit in (("AddressLine1", 200), ("AddressLine2", 200), ("City", 100), ("ZipCode", 50),
                        ("ExternalCode", 50)):
        value = address.get(name)
        if value is not None and len(value) > limit:
            errors.append(f"{prefix}.{name} can not be longer than {limit} characters.")
    if require_city_zip:
        for name in ("City", "ZipCode"):
            if not (address.get(name) or "").strip():
                errors.append(f"{prefix}.{name} is required.")
    country = address.get("CountryCode")
    if country is not None and country.upper() not in reference.COUNTRY_CODES:
        errors.append(f"{prefix}.CountryCode '{country}' is not a valid ISO 3166-1 alpha-2 country code.")


def _check_email(value: str | None, name: str, errors: list[str]) -> None:
    if value is not None and value.strip() and not _EMAIL.match(value.strip()):
        errors.append(f"{name} '{value}' is not a valid e-mail address.")


def _address_is_empty(address: dict | None) -> bool:
    return not address or not any(address.get(k) for k in ("AddressLine1", "AddressLine2", "City", "ZipCode"))


class Store:
    """All records of one Go client, with the id sequences, unique indexes and a cache of filtered id lists."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.customers: dict[int, dict] = {}
        self.contact_persons: dict[int, dict] = {}
        self.contact_persons_of: dict[int, list[int]] = {}
        self.orders: dict[str, dict] = {}
        self.lines: dict[str, list[dict]] = {}
        self.invoices: dict[str, dict] = {}
        self.customer_by_number: dict[int, int] = {}
        self.customer_by_reference: dict[str, int] = {}
        self.customer_by_external_number: dict[int, int] = {}
        self.contact_person_by_code: dict[tuple[int, str], int] = {}
        self.order_by_reference: dict[str, str] = {}
        self.orders_of_customer: dict[int, int] = {}
        self.invoices_of_customer: dict[int, int] = {}
        self.next_contact_id = FIRST_CONTACT_ID
        self.next_contact_person_id = FIRST_CONTACT_PERSON_ID
        self.next_address_id = FIRST_ADDRESS_ID
        self.next_customer_number = FIRST_CUSTOMER_NUMBER
        self.next_sales_order_no = FIRST_SALES_ORDER_NO
        self.next_invoice_no = FIRST_INVOICE_NO
        self._lists: dict[tuple, list] = {}

    # -- shared -------------------------------------------------------------------------------------------------

    def touched(self) -> None:
        """Forget cached list results after any write (cheap: the next list request rebuilds once)."""
        self._lists.clear()

    def _cached(self, signature: tuple, build) -> list:
        ids = self._lists.get(signature)
        if ids is None:
            if len(self._lists) > 256:
                self._lists.clear()
            ids = self._lists[signature] = build()
        return ids

    def take_customer_number(self) -> int:
        """Return the next free customer number (the customer sub-ledger series starts at 10000)."""
        while self.next_customer_number in self.customer_by_number:
            self.next_customer_number += 1
        number = self.next_customer_number
        self.next_customer_number += 1
        return number

    # -- customers ----------------------------------------------------------------------------------------------

    def render_customer(self, record: dict) -> dict:
        """The CustomerDto of a stored customer."""
        dto = {**CUSTOMER_TEMPLATE, **record}
        if dto["NationalIdNumber"]:
            dto["NationalIdNumber"] = "hidden"  # the integration lacks the privilege to see it, as usual
        return dto

    def customer(self, customer_id: int) -> dict:
        """The stored customer, or a 404."""
        record = self.customers.get(customer_id)
        if record is None:
            raise not_found(f"Customer with id = {customer_id} not found.")
        return record

    def customer_ids(self, query: Query, page: Page) -> list[int]:
        """Ids of the customers the filters select, in id order (or ``OrderBy``), cached until the next write."""
        changed = query.timestamp("lastChangedDateTimeOffsetGreaterThan")
        created = query.timestamp("customerCreatedDateTimeOffsetGreaterThan")
        numbers = query.number_ranges("customerNos")
        external_numbers = query.number_ranges("externalNos")
        reference_ = query.get("externalImportReference")
        groups = query.id_list("contactGroupIds")
        signature = ("customers", changed, created, numbers, external_numbers, reference_, groups, page.order_by)

        def build() -> list[int]:
            if reference_ is not None:
                found = self.customer_by_reference.get(reference_)
                candidates = [self.customers[found]] if found is not None else []
            else:
                candidates = self.customers.values()
            ids = [r["Id"] for r in candidates
                   if (changed is None or r["LastChangedDateTimeOffset"] > changed)
                   and (created is None or r["CustomerCreatedDateTimeOffset"] > created)
                   and (numbers is None or in_ranges(r["Number"], numbers))
                   and (external_numbers is None or in_ranges(r.get("ExternalNumber"), external_numbers))
                   and (groups is None or groups.intersection(r.get("ContactGroupIds", ())))]
            return sort_ids(ids, self.customers, page.order_by, self.render_customer)

        return self._cached(signature, build)

    def _check_customer(self, dto: dict, own_id: int | None, require_city_zip: bool) -> None:
        """Go's customer rules; every broken one is listed in a single 400."""
        errors: list[str] = []
        if dto["IsPerson"]:
            for name in ("FirstName", "LastName"):
                if not (dto.get(name) or "").strip():
                    errors.append(f"{name} is required when IsPerson is true.")
        elif not (dto.get("Name") or "").strip():
            errors.append("Name is required.")
        _check_address(dto["MailAddress"], errors, "MailAddress", require_city_zip)
        currency = dto.get("CurrencyCode")
        if currency is not None and currency.upper() not in reference.CURRENCY_CODES:
            errors.append(f"CurrencyCode '{currency}' is not a valid ISO 4217 currency code.")
        reference_ = dto.get("ExternalImportReference")
        if reference_ is not None:
            if len(reference_) > 50:
                errors.append("ExternalImportReference can not be longer than 50 characters.")
            holder = self.customer_by_reference.get(reference_)
            if holder is not None and holder != own_id:
                errors.append(f"ExternalImportReference is already in use. '{reference_}' is used on (contact) "
                              f"Id = {holder}.")
        number = dto.get("Number")
        if number is None or number < 1:
            errors.append("Number must be a positive customer number.")
        elif self.customer_by_number.get(number, own_id) != own_id:
            errors.append(f"Customer number {number} is already in use.")
        external = dto.get("ExternalNumber")
        if external is not None and self.customer_by_external_number.get(external, own_id) != own_id:
            errors.append(f"ExternalNumber {external} is already in use.")
        for name in ("EmailAddress", "InvoiceEmailAddress", "PaymentReminderEmailAddress"):
            _check_email(dto.get(name), name, errors)
        cc = dto.get("InvoiceEmailAddressCC")
        if cc:
            addresses = [a for a in cc.split(";") if a.strip()]
            if len(cc) > 2000 or len(addresses) > 10:
                errors.append("InvoiceEmailAddressCC can hold at most 10 addresses and 2000 characters.")
            for address in addresses:
                _check_email(address, "InvoiceEmailAddressCC", errors)
        allowance = dto.get("Allowance")
        if allowance is not None and not -1000 <= allowance <= 100:
            errors.append("Allowance must be between -1000 and 100.")
        billable = dto.get("BillableRate")
        if billable is not None and billable < 0:
            errors.append("BillableRate must be positive.")
        delivery = dto.get("InvoiceDeliveryType")
        if delivery == "PdfByEmail" and not (dto.get("EmailAddress") or dto.get("InvoiceEmailAddress")):
            errors.append("InvoiceDeliveryType PdfByEmail requires EmailAddress or InvoiceEmailAddress. "
                          "Set an e-mail address or use InvoiceDeliveryType Print.")
        elif delivery == "EHF" and not dto.get("OrganizationNumber"):
            errors.append("InvoiceDeliveryType EHF requires an OrganizationNumber registered in ELMA.")
        elif delivery in ("AvtaleGiro", "Efaktura"):
            errors.append(f"InvoiceDeliveryType {delivery} can not be set through the API.")
        if errors:
            raise ApiError(400, CUSTOMER_TITLE, " ".join(errors))

    def _index_customer(self, old: dict | None, new: dict | None) -> None:
        """Move a customer's unique keys in the indexes from ``old`` to ``new``."""
        indexes = ((self.customer_by_number, "Number"), (self.customer_by_reference, "ExternalImportReference"),
                   (self.customer_by_external_number, "ExternalNumber"))
        for index, name in indexes:
            if old is not None and old.get(name) is not None and index.get(old[name]) == old["Id"]:
                del index[old[name]]
            if new is not None and new.get(name) is not None:
                index[new[name]] = new["Id"]

    def create_customer(self, body) -> dict:
        """POST /Customers."""
        data = _bind(F.CUSTOMER_POST, body, "CustomerPostDto")
        posted_address = data.pop("MailAddress", None)
        now = self.clock.now()
        dto = {**CUSTOMER_TEMPLATE, **{k: v for k, v in data.items() if v is not None}}
        dto["Id"] = self.next_contact_id
        if dto["IsPerson"]:
            dto["Name"] = f"{dto.get('FirstName') or ''} {dto.get('LastName') or ''}".strip()
        dto["MailAddress"] = {**CONTACT_ADDRESS_TEMPLATE, **{k: v for k, v in (posted_address or {}).items()
                                                             if v is not None}}
        number_given = dto.get("Number") is not None
        if not number_given:
            dto["Number"] = self.next_customer_number  # provisional; taken for real once valid
            while dto["Number"] in self.customer_by_number:
                dto["Number"] += 1
        if data.get("InvoiceDeliveryType") is None:
            # The reference documents no default: a customer posted without one is accepted, and gets PdfByEmail
            # only when it has an e-mail to send to (an assumption, see README), else Print.
            dto["InvoiceDeliveryType"] = (
                "PdfByEmail" if dto.get("EmailAddress") or dto.get("InvoiceEmailAddress") else "Print")
        if "ReminderDeliveryType" not in data and "NoticeOfDebtCollectionDeliveryType" not in data:
            has_email = bool(dto.get("EmailAddress") or dto.get("PaymentReminderEmailAddress"))
            dto["ReminderDeliveryType"] = dto["NoticeOfDebtCollectionDeliveryType"] = (
                "PdfByEmail" if has_email else "Print")
        self._check_customer(dto, None, require_city_zip=posted_address is not None)
        if not number_given:
            dto["Number"] = self.take_customer_number()
        self.next_contact_id += 1
        dto["MailAddress"]["Id"] = self.next_address_id
        self.next_address_id += 1
        dto["MailAddress"]["LastChangedDateTimeOffset"] = now
        if dto["MailAddress"]["CountryCode"]:
            dto["MailAddress"]["CountryCode"] = dto["MailAddress"]["CountryCode"].upper()
        if dto["CurrencyCode"]:
            dto["CurrencyCode"] = dto["CurrencyCode"].upper()
        dto["SubledgerAccountId"] = SUBLEDGER_ACCOUNT_OFFSET + dto["Id"]
        dto["ContactCreatedDateTimeOffset"] = dto["CustomerCreatedDateTimeOffset"] = now
        dto["LastChangedDateTimeOffset"] = now
        record = _sparse(dto, CUSTOMER_TEMPLATE)
        self.customers[record["Id"]] = record
        self._index_customer(None, record)
        self.touched()
        return record

    def patch_customer(self, customer_id: int, operations) -> dict:
        """PATCH /Customers/{id}: JSON Patch on CustomerPatchDto, re-validated.

        The Go quirk kept on purpose: a change confined to ``MailAddress`` moves only the address's
        ``LastChangedDateTimeOffset``, never the customer's.
        """
        record = self.customer(customer_id)
        current = {**CUSTOMER_TEMPLATE, **record}
        view = {k: current[k] for k in F.CUSTOMER_PATCH}
        had_address = current["MailAddress"] is not None
        # A customer without a MailAddress shows null: a replace below it fails, an add of the whole object works.
        view["MailAddress"] = ({k: current["MailAddress"].get(k) for k in F.CONTACT_ADDRESS_FIELDS} if had_address
                               else None)
        patched = _patch(view, operations, F.CUSTOMER_PATCH, "CustomerPatchDto", CUSTOMER_TITLE)
        empty = dict.fromkeys(F.CONTACT_ADDRESS_FIELDS)
        patched["MailAddress"] = {**empty, **(patched["MailAddress"] or {})}
        view["MailAddress"] = view["MailAddress"] or empty
        for name in ("InvoiceDeliveryType", "ReminderDeliveryType", "NoticeOfDebtCollectionDeliveryType"):
            if patched[name] is None:  # a removed enum falls back to Go's default rather than null
                patched[name] = CUSTOMER_TEMPLATE[name]
        if patched["IsPerson"]:
            patched["Name"] = f"{patched.get('FirstName') or ''} {patched.get('LastName') or ''}".strip()
        own_changes = [k for k in F.CUSTOMER_PATCH if k != "MailAddress" and patched[k] != view[k]]
        address_changed = patched["MailAddress"] != view["MailAddress"]
        if not had_address and not address_changed:
            dto = {**current, **patched, "MailAddress": None}
        elif not had_address:
            address_id = self.next_address_id
            self.next_address_id += 1
            dto = {**current, **patched, "MailAddress": {**CONTACT_ADDRESS_TEMPLATE, **{
                k: v for k, v in patched["MailAddress"].items() if v is not None}, "Id": address_id}}
        else:
            dto = {**current, **patched, "MailAddress": {**current["MailAddress"], **patched["MailAddress"]}}
        touched_address = address_changed and not _address_is_empty(dto["MailAddress"])
        self._check_customer(dto, customer_id, require_city_zip=touched_address)
        if not own_changes and not address_changed:
            return record
        now = self.clock.now()
        if (dto["MailAddress"] or {}).get("CountryCode"):
            dto["MailAddress"]["CountryCode"] = dto["MailAddress"]["CountryCode"].upper()
        if dto.get("CurrencyCode"):
            dto["CurrencyCode"] = dto["CurrencyCode"].upper()
        if address_changed:
            dto["MailAddress"]["LastChangedDateTimeOffset"] = now
        if own_changes:
            dto["LastChangedDateTimeOffset"] = now
        new_record = _sparse(dto, CUSTOMER_TEMPLATE)
        self._index_customer(record, new_record)
        self.customers[customer_id] = new_record
        self.touched()
        return new_record

    def delete_customer(self, customer_id: int) -> None:
        """DELETE /Customers/{id}; 409 while a sales order or an invoice refers to the customer."""
        record = self.customer(customer_id)
        if self.orders_of_customer.get(customer_id) or self.invoices_of_customer.get(customer_id):
            raise ApiError(409, "Customer conflict",
                           f"Customer with id = {customer_id} is in use and cannot be deleted.")
        for person_id in list(self.contact_persons_of.get(customer_id, ())):
            self._drop_contact_person(self.contact_persons[person_id])
        self.contact_persons_of.pop(customer_id, None)
        self._index_customer(record, None)
        del self.customers[customer_id]
        self.touched()

    # -- contact persons ----------------------------------------------------------------------------------------

    def render_contact_person(self, record: dict) -> dict:
        """The ContactPersonDto of a stored contact person."""
        dto = {**CONTACT_PERSON_TEMPLATE, **record}
        dto["MailAddress"] = {**ADDRESS_TEMPLATE, **(dto["MailAddress"] or {})}
        return dto

    def contact_person(self, contact_id: int, person_id: int) -> dict:
        """The stored contact person of that contact, or a 404."""
        record = self.contact_persons.get(person_id)
        if record is None or record["ContactId"] != contact_id:
            raise not_found(f"ContactPerson with id = {person_id} not found on contact with id = {contact_id}.")
        return record

    def contact_person_ids(self, query: Query, page: Page) -> list[int]:
        """Ids of the contact persons the filters select, cached until the next write."""
        contacts = query.id_list("contactIds")
        changed = query.timestamp("lastChangedDateTimeOffsetGreaterThan")
        created = query.timestamp("createdDateTimeOffsetGreaterThan")
        codes = query.strings("externalCodes")
        signature = ("contact_persons", contacts, changed, created, codes, page.order_by)

        def build() -> list[int]:
            if contacts is not None:
                candidate_ids = sorted(i for c in contacts for i in self.contact_persons_of.get(c, ()))
                candidates = [self.contact_persons[i] for i in candidate_ids]
            else:
                candidates = self.contact_persons.values()
            ids = [r["Id"] for r in candidates
                   if (changed is None or r["LastChangedDateTimeOffset"] > changed)
                   and (created is None or r["CreatedDateTimeOffset"] > created)
                   and (codes is None or r.get("ExternalCode") in codes)]
            return sort_ids(ids, self.contact_persons, page.order_by, self.render_contact_person)

        return self._cached(signature, build)

    def _check_contact_person(self, dto: dict, own_id: int | None, require_city_zip: bool) -> None:
        errors: list[str] = []
        for name in ("FirstName", "LastName"):
            if not (dto.get(name) or "").strip():
                errors.append(f"{name} is required.")
        _check_email(dto.get("EmailAddress"), "EmailAddress", errors)
        code = dto.get("ExternalCode")
        if code is not None:
            if len(code) > 50:
                errors.append("ExternalCode can not be longer than 50 characters.")
            holder = self.contact_person_by_code.get((dto["ContactId"], code))
            if holder is not None and holder != own_id:
                errors.append(f"ExternalCode is already in use. '{code}' is used on contact person Id = {holder}.")
        _check_address(dto.get("MailAddress"), errors, "MailAddress", require_city_zip)
        if errors:
            raise ApiError(400, CONTACT_PERSON_TITLE, " ".join(errors))

    def _company(self, contact_id: int) -> dict:
        record = self.customers.get(contact_id)
        if record is None:
            raise not_found(f"Contact with id = {contact_id} not found.")
        if record.get("IsPerson"):
            raise ApiError(400, CONTACT_PERSON_TITLE, f"Contact with id = {contact_id} is a person. Contact persons "
                                                      "can only be added to companies.")
        return record

    def _index_contact_person(self, old: dict | None, new: dict | None) -> None:
        if old is not None and old.get("ExternalCode") is not None:
            self.contact_person_by_code.pop((old["ContactId"], old["ExternalCode"]), None)
        if new is not None and new.get("ExternalCode") is not None:
            self.contact_person_by_code[(new["ContactId"], new["ExternalCode"])] = new["Id"]

    def _clear_other_defaults(self, person: dict, now: str) -> None:
        """A contact has one default contact person: making one the default demotes the others."""
        for other_id in self.contact_persons_of.get(person["ContactId"], ()):
            other = self.contact_persons[other_id]
            if other_id != person["Id"] and other.get("IsDefault"):
                other["IsDefault"] = False
                other["LastChangedDateTimeOffset"] = now

    def create_contact_person(self, contact_id: int, body) -> dict:
        """POST /ContactPersons/{contactId}."""
        self._company(contact_id)
        data = _bind(F.CONTACT_PERSON_FIELDS, body, "ContactPersonPostDto")
        dto = {**CONTACT_PERSON_TEMPLATE, **{k: v for k, v in data.items() if v is not None}, "ContactId": contact_id}
        if dto["MailAddress"] is not None:
            dto["MailAddress"] = {**ADDRESS_TEMPLATE, **dto["MailAddress"]}
        self._check_contact_person(dto, None, require_city_zip=dto["MailAddress"] is not None)
        now = self.clock.now()
        dto["Id"] = self.next_contact_person_id
        self.next_contact_person_id += 1
        dto["CreatedDateTimeOffset"] = dto["LastChangedDateTimeOffset"] = now
        record = _sparse(dto, CONTACT_PERSON_TEMPLATE)
        if record.get("IsDefault"):
            self._clear_other_defaults(record, now)
        self.contact_persons[record["Id"]] = record
        self.contact_persons_of.setdefault(contact_id, []).append(record["Id"])
        self._index_contact_person(None, record)
        self.touched()
        return record

    def patch_contact_person(self, contact_id: int, person_id: int, operations) -> dict:
        """PATCH /ContactPersons/{contactId}/{id}; any change, address included, moves its timestamp."""
        record = self.contact_person(contact_id, person_id)
        current = {**CONTACT_PERSON_TEMPLATE, **record}
        view = {k: current[k] for k in F.CONTACT_PERSON_FIELDS}
        view["MailAddress"] = {**ADDRESS_TEMPLATE, **(current["MailAddress"] or {})}
        patched = _patch(view, operations, F.CONTACT_PERSON_FIELDS, "ContactPersonPatchDto", CONTACT_PERSON_TITLE)
        if patched == view:
            return record
        dto = {**current, **patched}
        if _address_is_empty(dto["MailAddress"]) and not (dto["MailAddress"] or {}).get("CountryCode"):
            dto["MailAddress"] = None
        address_changed = patched["MailAddress"] != view["MailAddress"]
        self._check_contact_person(dto, person_id, require_city_zip=address_changed and dto["MailAddress"] is not None)
        now = self.clock.now()
        dto["LastChangedDateTimeOffset"] = now
        new_record = _sparse(dto, CONTACT_PERSON_TEMPLATE)
        if new_record.get("IsDefault") and not record.get("IsDefault"):
            self._clear_other_defaults(new_record, now)
        self._index_contact_person(record, new_record)
        self.contact_persons[person_id] = new_record
        self.touched()
        return new_record

    def _drop_contact_person(self, record: dict) -> None:
        self._index_contact_person(record, None)
        del self.contact_persons[record["Id"]]

    def delete_contact_person(self, contact_id: int, person_id: int) -> None:
        """DELETE /ContactPersons/{contactId}/{id}; 409 while a sales order names the person as reference."""
        record = self.contact_person(contact_id, person_id)
        if any(o.get("CustomerReferenceContactPersonId") == person_id for o in self.orders.values()):
            raise ApiError(409, "ContactPerson conflict",
                           f"ContactPerson with id = {person_id} is in use and cannot be deleted.")
        self._drop_contact_person(record)
        self.contact_persons_of[contact_id].remove(person_id)
        self.touched()

    # -- sales orders -------------------------------------------------------------------------------------------

    def render_order(self, record: dict, show_inherited: bool = False) -> dict:
        """The SalesOrderDto (header) of a stored order; CustomerNo and the reference name come from live data.

        A member left null on the order is inherited: null as stored, unless ``show_inherited`` (the API's
        ``showInherited=true``) asks for the value in effect, as the GUI shows it.
        """
        dto = {**SALES_ORDER_TEMPLATE, **record}
        customer = self.customers.get(dto["CustomerId"])
        dto["CustomerNo"] = customer["Number"] if customer else dto["CustomerNo"]
        if show_inherited and customer is not None:
            if dto["CurrencyCode"] is None:
                dto["CurrencyCode"] = customer.get("CurrencyCode", CUSTOMER_TEMPLATE["CurrencyCode"]) or CLIENT_CURRENCY
            if dto["CustomerReferenceContactPersonId"] is None:
                default = next((i for i in self.contact_persons_of.get(customer["Id"], ())
                                if self.contact_persons[i].get("IsDefault")), None)
                dto["CustomerReferenceContactPersonId"] = default
        person = self.contact_persons.get(dto["CustomerReferenceContactPersonId"] or 0)
        if person is not None:
            dto["CustomerReference"] = f"{person.get('FirstName') or ''} {person.get('LastName') or ''}".strip()
        return dto

    def render_order_complete(self, record: dict, show_inherited: bool = False) -> dict:
        """The SalesOrderCompleteDto: the header plus its lines."""
        dto = self.render_order(record, show_inherited)
        dto["SalesOrderLines"] = [{**SALES_ORDER_LINE_TEMPLATE, **line} for line in self.lines.get(record["Id"], ())]
        return dto

    def order(self, order_id: str) -> dict:
        """The stored (unsent) sales order, or a 404."""
        record = self.orders.get(order_id.lower())
        if record is None:
            raise not_found(f"SalesOrder with id = {order_id} not found.")
        return record

    def order_ids(self, query: Query, page: Page) -> list[str]:
        """Ids of the sales orders the filters select, in order-number order, cached until the next write."""
        changed = query.timestamp("lastChangedDateTimeOffsetGreaterThan")
        numbers = query.number_ranges("customerNos")
        status_raw = query.get("orderStatus")
        status = None
        if status_raw is not None:
            try:
                status = F.ORDER_STATUS.coerce(status_raw)
            except F.CoercionError:
                raise ApiError(400, "Bad Request", f"The value '{status_raw}' is not valid for orderStatus.") from None
        mine = query.boolean("onlyCreatedByCurrentIntegration")
        signature = ("orders", changed, numbers, status, mine, page.order_by)

        def build() -> list[str]:
            customer_numbers = {i: r["Number"] for i, r in self.customers.items()} if numbers is not None else {}
            ids = [r["Id"] for r in self.orders.values()
                   if (changed is None or r["LastChangedDateTimeOffset"] > changed)
                   and (numbers is None or in_ranges(customer_numbers.get(r["CustomerId"]), numbers))
                   and (status is None or r.get("SalesOrderStatus", "Draft") == status)
                   and (not mine or r.get("IsCreatedByCurrentIntegration", True))]
            return sort_ids(ids, self.orders, page.order_by, self.render_order)

        return self._cached(signature, build)

    def _order_customer(self, dto: dict) -> dict:
        if dto.get("CustomerId") is None:
            raise ApiError(400, SALES_ORDER_TITLE, "CustomerId or CustomerNo is required.")
        return self.customer(dto["CustomerId"])

    def _check_order(self, dto: dict, own_id: str | None) -> None:
        customer = self._order_customer(dto)
        person_id = dto.get("CustomerReferenceContactPersonId")
        if person_id is not None:
            person = self.contact_persons.get(person_id)
            if person is None:
                raise not_found(f"ContactPerson with id = {person_id} not found.")
            if person["ContactId"] != customer["Id"]:
                raise ApiError(400, SALES_ORDER_TITLE, f"ContactPerson with id = {person_id} does not belong to "
                                                       f"customer with id = {customer['Id']}.")
        errors: list[str] = []
        currency = dto.get("CurrencyCode")
        if currency is not None and currency.upper() not in reference.CURRENCY_CODES:
            errors.append(f"CurrencyCode '{currency}' is not a valid ISO 4217 currency code.")
        rate = dto.get("CurrencyExchangeRate")
        if rate is not None and rate <= 0:
            errors.append("CurrencyExchangeRate must be positive.")
        reference_ = dto.get("ExternalImportReference")
        if reference_ is not None:
            holder = self.order_by_reference.get(reference_)
            if holder is not None and holder != own_id:
                errors.append(f"ExternalImportReference is already in use. '{reference_}' is used on (sales order) "
                              f"Id = {holder}.")
        if errors:
            raise ApiError(400, SALES_ORDER_TITLE, " ".join(errors))

    def _build_lines(self, order_id: str, posted: list, customer: dict) -> list[dict]:
        """Turn posted lines into stored ones with Go's defaults and computed amounts."""
        lines, errors, references = [], [], set()
        for position, raw in enumerate(posted):
            line = {k: v for k, v in _bind(F.SALES_ORDER_LINE_POST, raw, "SalesOrderLinePostDto").items()
                    if v is not None}
            allowance = line.get("Allowance", customer.get("Allowance") or 0.0)
            if not -1000 <= allowance <= 100:
                errors.append(f"SalesOrderLines[{position}].Allowance must be between -1000 and 100.")
            if (line.get("ProductId") is not None or line.get("ProductCode")) and line.get("Quantity") is None:
                errors.append(f"SalesOrderLines[{position}].Quantity is required when a product is set.")
            reference_ = line.get("ExternalImportReference")
            if reference_ is not None:
                if reference_ in references:
                    errors.append(f"SalesOrderLines[{position}].ExternalImportReference '{reference_}' is already "
                                  "used on this sales order.")
                references.add(reference_)
            line.update({"Id": str(uuid.uuid4()), "SalesOrderId": order_id, "Allowance": float(allowance)})
            line.setdefault("SortOrder", position)
            lines.append(self.priced_line(line, customer))
        if errors:
            raise ApiError(400, SALES_ORDER_TITLE, " ".join(errors))
        return sorted(lines, key=lambda line: line["SortOrder"])

    @staticmethod
    def priced_line(line: dict, customer: dict) -> dict:
        """Compute a line's amounts: net = quantity x unit price x (1 - allowance %), VAT 25 % unless VAT-free."""
        line_type = line.get("LineType", "Normal")
        if line_type in ("Text", "Summary"):
            line.update({"NetAmount": 0.0, "VatAmount": 0.0, "TotalAmount": 0.0})
            return line
        vat = reference.NO_VAT if customer.get("IsVatFree") else reference.STANDARD_VAT
        net = round((line.get("Quantity") or 0.0) * (line.get("ProductUnitPrice") or 0.0)
                    * (1 - (line.get("Allowance") or 0.0) / 100), 2)
        vat_amount = round(net * vat["VatRate"], 2)
        line.update(vat)
        line.update({"NetAmount": net, "VatAmount": vat_amount, "TotalAmount": round(net + vat_amount, 2)})
        return line

    @staticmethod
    def order_totals(lines: list[dict]) -> dict:
        """Header amounts summed from the lines."""
        return {"NetAmount": round(sum(line["NetAmount"] for line in lines), 2),
                "TotalAmount": round(sum(line["TotalAmount"] for line in lines), 2), "LineCount": len(lines)}

    def _count_order(self, customer_id: int, delta: int) -> None:
        self.orders_of_customer[customer_id] = self.orders_of_customer.get(customer_id, 0) + delta

    def create_order(self, body) -> dict:
        """POST /SalesOrders/Complete: the only way to create an order."""
        if not isinstance(body, dict):
            raise ApiError(400, "One or more validation errors occurred.",
                           "The JSON value could not be converted to SalesOrderCompletePostDto. Path: $")
        posted_lines = body.get(next((k for k in body if k.lower() == "salesorderlines"), ""), None) or []
        if not isinstance(posted_lines, list):
            raise ApiError(400, "One or more validation errors occurred.",
                           "The JSON value could not be converted to List`1. Path: $.SalesOrderLines")
        data = _bind(F.SALES_ORDER_POST, body, "SalesOrderCompletePostDto")
        dto = {**SALES_ORDER_TEMPLATE, **{k: v for k, v in data.items() if v is not None}}
        if dto.get("CustomerId") is None and dto.get("CustomerNo") is not None:
            found = self.customer_by_number.get(dto["CustomerNo"])
            if found is None:
                raise not_found(f"Customer with number = {dto['CustomerNo']} not found.")
            dto["CustomerId"] = found
        customer = self._order_customer(dto)
        if data.get("CurrencyCode") is None:
            dto["CurrencyCode"] = None  # inherited from the customer (else the client): stored as null
        self._check_order(dto, None)
        order_id = str(uuid.uuid4())
        lines = self._build_lines(order_id, posted_lines, customer)
        now = self.clock.now()
        dto.update({"Id": order_id, "SalesOrderNo": self.next_sales_order_no,
                    "CurrencyCode": dto["CurrencyCode"].upper() if dto["CurrencyCode"] else None,
                    "CreatedDateTimeOffset": now, "LastChangedDateTimeOffset": now, **self.order_totals(lines)})
        dto.pop("CustomerNo", None)
        self.next_sales_order_no += 1
        record = _sparse(dto, SALES_ORDER_TEMPLATE)
        self.orders[order_id] = record
        self.lines[order_id] = lines
        if record.get("ExternalImportReference") is not None:
            self.order_by_reference[record["ExternalImportReference"]] = order_id
        self._count_order(record["CustomerId"], 1)
        self.touched()
        return record

    def patch_order(self, order_id: str, operations) -> dict:
        """PATCH /SalesOrders/{id}: a Confirmed order only goes back to Draft; every write moves the timestamp."""
        record = self.order(order_id)
        current = {**SALES_ORDER_TEMPLATE, **record}
        view = {k: current[k] for k in F.SALES_ORDER_PATCH}
        patched = _patch(view, operations, F.SALES_ORDER_PATCH, "SalesOrderPatchDto", SALES_ORDER_TITLE)
        changes = {k for k in view if patched[k] != view[k]}
        if current["SalesOrderStatus"] == "Confirmed" and (changes - {"SalesOrderStatus"} or (
                changes and patched["SalesOrderStatus"] != "Draft")):
            raise ApiError(400, SALES_ORDER_TITLE, f"SalesOrder with id = {record['Id']} is confirmed and locked for "
                                                   "changes. Set SalesOrderStatus to Draft to edit it.")
        if patched["SalesOrderStatus"] is None:
            raise ApiError(400, SALES_ORDER_TITLE, "SalesOrderStatus is required.")
        dto = {**current, **patched}
        self._check_order(dto, record["Id"])
        if dto.get("CurrencyCode"):
            dto["CurrencyCode"] = dto["CurrencyCode"].upper()
        dto["LastChangedDateTimeOffset"] = self.clock.now()
        new_record = _sparse(dto, SALES_ORDER_TEMPLATE)
        if record.get("ExternalImportReference") is not None:
            self.order_by_reference.pop(record["ExternalImportReference"], None)
        if new_record.get("ExternalImportReference") is not None:
            self.order_by_reference[new_record["ExternalImportReference"]] = record["Id"]
        if new_record["CustomerId"] != record["CustomerId"]:
            self._count_order(record["CustomerId"], -1)
            self._count_order(new_record["CustomerId"], 1)
        self.orders[record["Id"]] = new_record
        self.touched()
        return new_record

    def delete_order(self, order_id: str) -> None:
        """DELETE /SalesOrders/{id}: header and lines go."""
        record = self.order(order_id)
        del self.orders[record["Id"]]
        self.lines.pop(record["Id"], None)
        if record.get("ExternalImportReference") is not None:
            self.order_by_reference.pop(record["ExternalImportReference"], None)
        self._count_order(record["CustomerId"], -1)
        self.touched()

    def send_order(self, order_id: str, body) -> dict:
        """POST /SalesOrders/{id}/createAndSendInvoice: the draft becomes an invoice and leaves /SalesOrders."""
        record = self.order(order_id)
        data = _bind(F.SEND_INVOICE_POST, body if body is not None else {}, "SendInvoiceRequestPostDto")
        if not self.lines.get(record["Id"]):
            raise ApiError(400, SALES_ORDER_TITLE, f"SalesOrder with id = {record['Id']} has no lines and cannot be "
                                                   "invoiced.")
        customer = self.customers[record["CustomerId"]]
        email = data.get("EmailAddress") or customer.get("InvoiceEmailAddress") or customer.get("EmailAddress")
        delivery = data.get("DeliveryType") or "Auto"
        if delivery == "PdfByEmail" and not email:
            raise ApiError(400, SALES_ORDER_TITLE, "DeliveryType PdfByEmail needs an e-mail address: none is given and "
                                                   "the customer has none.")
        now = self.clock.now()
        invoice = self.render_order_complete(record, show_inherited=True)  # an invoice has real values
        invoice.update({"InvoiceNo": self.next_invoice_no, "SentDateTimeOffset": now,
                        "DueDate": data.get("OverrideDueDate"), "VoucherDate": data.get("VoucherDate") or now[:10],
                        "InvoiceDeliveryType": customer.get("InvoiceDeliveryType", "PdfByEmail")})
        self.next_invoice_no += 1
        self.invoices[record["Id"]] = invoice
        del self.orders[record["Id"]]
        self.lines.pop(record["Id"], None)
        # The invoice keeps the external reference taken (Go checks duplicates per object type, sent or not).
        self._count_order(record["CustomerId"], -1)
        self.invoices_of_customer[record["CustomerId"]] = self.invoices_of_customer.get(record["CustomerId"], 0) + 1
        self.touched()
        return {"Id": record["Id"], "DeliveryType": delivery, "EmailAddress": email,
                "OverrideDueDate": data.get("OverrideDueDate"), "VoucherDate": data.get("VoucherDate")}
