"""Typed field tables of the PowerOffice Go DTOs, and the lenient value coercion .NET model binding does."""
from __future__ import annotations

import re

from sandboxes.poweroffice_go import reference


class CoercionError(ValueError):
    """A value that cannot become the field's type."""

    def __init__(self, value, type_name: str) -> None:
        super().__init__(f"The value '{value}' is invalid for target location.")
        self.value = value
        self.type_name = type_name


class Field:
    """A nullable scalar field; subclasses convert JSON values (numbers may arrive as strings, as Newtonsoft allows)."""

    type_name = "string"

    def coerce(self, value):
        """Return ``value`` as this field's type, or raise :class:`CoercionError`."""
        if value is None:
            return None
        return self.convert(value)

    def convert(self, value):
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise CoercionError(value, self.type_name)


class Int(Field):
    type_name = "Int64"

    def convert(self, value):
        if isinstance(value, bool):
            raise CoercionError(value, self.type_name)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,19}\s*", value):
            return int(value)
        raise CoercionError(value, self.type_name)


class Float(Field):
    type_name = "Double"

    def convert(self, value):
        if isinstance(value, bool):
            raise CoercionError(value, self.type_name)
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                number = float(value.strip().replace(",", "."))
            except ValueError:
                raise CoercionError(value, self.type_name) from None
            if number == number and abs(number) != float("inf"):
                return number
        raise CoercionError(value, self.type_name)


class Bool(Field):
    type_name = "Boolean"

    def convert(self, value):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise CoercionError(value, self.type_name)


class Date(Field):
    """``format: date``; a time part is accepted and dropped (Go itself sometimes returns one)."""

    type_name = "DateOnly"
    _pattern = re.compile(r"(\d{4}-\d{2}-\d{2})(?:[T ][0-9:.]+(?:Z|[+-]\d{2}:?\d{2})?)?")

    def convert(self, value):
        match = self._pattern.fullmatch(value.strip()) if isinstance(value, str) else None
        if not match:
            raise CoercionError(value, self.type_name)
        return match.group(1)


class Uuid(Field):
    type_name = "Guid"
    _pattern = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

    def convert(self, value):
        if isinstance(value, str) and self._pattern.fullmatch(value.strip()):
            return value.strip().lower()
        raise CoercionError(value, self.type_name)


class Enum(Field):
    """String enum, matched case-insensitively (Sesam posts ``print``) and returned in canonical casing."""

    def __init__(self, name: str, values: tuple[str, ...]) -> None:
        self.type_name = name
        self.values = {v.lower(): v for v in values}

    def convert(self, value):
        if isinstance(value, str) and value.strip().lower() in self.values:
            return self.values[value.strip().lower()]
        raise CoercionError(value, self.type_name)


class IntList(Field):
    type_name = "List`1"
    item = Int()

    def convert(self, value):
        if not isinstance(value, list):
            raise CoercionError(value, self.type_name)
        return [self.item.convert(v) for v in value]


class Nested(Field):
    """An object member such as ``MailAddress``, coerced key by key (keys matched case-insensitively)."""

    def __init__(self, name: str, fields: dict[str, Field]) -> None:
        self.type_name = name
        self.fields = fields
        self.lookup = {k.lower(): k for k in fields}

    def convert(self, value):
        if not isinstance(value, dict):
            raise CoercionError(value, self.type_name)
        result = {}
        for key, item in value.items():
            name = self.lookup.get(str(key).lower())
            if name is not None:  # unknown members are ignored, as System.Text.Json does
                result[name] = self.fields[name].coerce(item)
        return result


def canonical(fields: dict[str, Field], name: str) -> str | None:
    """Return the declared spelling of ``name`` (matched case-insensitively), or None."""
    lowered = name.lower()
    for key in fields:
        if key.lower() == lowered:
            return key
    return None


def bind(fields: dict[str, Field], body: dict, dto: str) -> dict:
    """Bind a JSON request object to ``fields``; raise :class:`BindingError` naming the first bad member."""
    if not isinstance(body, dict):
        raise BindingError(f"The JSON value could not be converted to {dto}. Path: $")
    lookup = {k.lower(): k for k in fields}
    bound = {}
    for key, value in body.items():
        name = lookup.get(str(key).lower())
        if name is None:
            continue
        try:
            bound[name] = fields[name].coerce(value)
        except CoercionError as exc:
            raise BindingError(f"The JSON value could not be converted to {exc.type_name}. Path: $.{name}") from None
    return bound


class BindingError(ValueError):
    """A request body that does not fit the DTO."""


STR, INT, FLOAT, BOOL, DATE, UUID = Field(), Int(), Float(), Bool(), Date(), Uuid()
INVOICE_DELIVERY = Enum("InvoiceDeliveryType", reference.INVOICE_DELIVERY_TYPES)
REMINDER_DELIVERY = Enum("ReminderDeliveryType", reference.REMINDER_DELIVERY_TYPES)
ORDER_STATUS = Enum("OrderStatus", reference.ORDER_STATUSES)
LINE_TYPE = Enum("VoucherLineType", reference.LINE_TYPES)
UNIT = Enum("UnitOfMeasureType", reference.UNITS_OF_MEASURE)
VAT_SPEC = Enum("VatReturnSpecification", reference.VAT_RETURN_SPECIFICATIONS)
SEND_DELIVERY = Enum("SendInvoiceDeliveryType", reference.SEND_DELIVERY_TYPES)

ADDRESS_FIELDS = {"AddressLine1": STR, "AddressLine2": STR, "City": STR, "ZipCode": STR, "CountryCode": STR}
CONTACT_ADDRESS_FIELDS = {**ADDRESS_FIELDS, "ExternalCode": STR}
CONTACT_ADDRESS = Nested("ContactAddressDto", CONTACT_ADDRESS_FIELDS)
ADDRESS = Nested("AddressDto", ADDRESS_FIELDS)

# CustomerPatchDto: every writable field of the DTO.
CUSTOMER_PATCH = {
    "Number": INT, "Name": STR, "FirstName": STR, "LastName": STR, "IsPerson": BOOL, "LegalName": STR,
    "OrganizationNumber": STR, "EmailAddress": STR, "InvoiceEmailAddress": STR, "InvoiceEmailAddressCC": STR,
    "PaymentReminderEmailAddress": STR, "PhoneNumber": STR, "WebsiteUrl": STR, "MailAddress": CONTACT_ADDRESS,
    "ExternalImportReference": STR, "ExternalNumber": INT, "IsArchived": BOOL, "IsVatFree": BOOL, "CurrencyCode": STR,
    "ContactGroupIds": IntList(), "CustomerSince": DATE, "DateOfBirth": DATE, "NationalIdNumber": STR,
    "Allowance": FLOAT, "BillableRate": FLOAT, "PaymentTermId": INT, "DeliveryTermId": INT, "DepartmentId": INT,
    "InvoiceBrandingThemeId": INT, "SalesPersonEmployeeId": INT, "InvoiceDeliveryType": INVOICE_DELIVERY,
    "ReminderDeliveryType": REMINDER_DELIVERY, "NoticeOfDebtCollectionDeliveryType": REMINDER_DELIVERY,
    "SendPaymentReminders": BOOL, "UseInvoiceFee": BOOL, "TransferToDebtCollectionAgency": BOOL,
    "DoNotAddLatePaymentFees": BOOL, "DoNotAddLatePaymentInterest": BOOL, "DoNotAutomatePaymentNotifications": BOOL,
}
# CustomerPostDto adds the code/number mirrors that only POST accepts.
CUSTOMER_POST = {**CUSTOMER_PATCH, "PaymentTerm": INT, "DeliveryTerm": STR, "DepartmentCode": STR,
                 "InvoiceBrandingThemeCode": STR, "SalesPersonEmployeeNumber": INT, "SubLedgerNumberSeriesId": UUID}

CONTACT_PERSON_FIELDS = {
    "FirstName": STR, "LastName": STR, "Title": STR, "EmailAddress": STR, "PhoneNumber": STR, "IsActive": BOOL,
    "IsDefault": BOOL, "ExternalCode": STR, "MailAddress": ADDRESS,
}

# SalesOrderPatchDto.
SALES_ORDER_PATCH = {
    "BrandingThemeId": INT, "ContactDeliveryAddressId": INT, "ContractNo": STR, "CurrencyCode": STR,
    "CurrencyExchangeRate": FLOAT, "CustomMatchingReference": STR, "CustomerId": INT, "CustomerReference": STR,
    "CustomerReferenceContactPersonId": INT, "DeliveryDate": DATE, "DeliveryTermId": INT, "DepartmentId": INT,
    "Dim1Id": INT, "Dim2Id": INT, "Dim3Id": INT, "ExternalImportReference": STR, "ImportedOrderNo": INT,
    "LocationId": INT, "PaymentTermId": INT, "ProjectId": INT, "PurchaseOrderReference": STR, "RelatedInvoiceNo": INT,
    "SalesOrderDate": DATE, "SalesOrderStatus": ORDER_STATUS, "SalesPersonEmployeeId": INT,
}
SALES_ORDER_LINE_POST = {
    "LineType": LINE_TYPE, "ProductId": INT, "ProductCode": STR, "Description": STR, "Quantity": FLOAT,
    "ProductUnitPrice": FLOAT, "ProductUnitCost": FLOAT, "Allowance": FLOAT, "UnitOfMeasureCode": UNIT,
    "SortOrder": INT, "UseStandardSalesAccount": BOOL, "VatReturnSpecification": VAT_SPEC,
    "DepartmentId": INT, "DepartmentCode": STR, "ProjectId": INT, "ProjectCode": STR, "LocationId": INT,
    "LocationCode": STR, "Dim1Id": INT, "Dim1Code": STR, "Dim2Id": INT, "Dim2Code": STR, "Dim3Id": INT,
    "Dim3Code": STR, "SellersReferenceEmployeeId": INT, "SellersReferenceEmployeeNo": INT,
    "ExternalImportReference": STR,
}
SALES_ORDER_POST = {
    **SALES_ORDER_PATCH, "CustomerNo": INT, "PaymentTerm": INT, "DeliveryTerm": STR, "BrandingThemeCode": STR,
    "DepartmentCode": STR, "ProjectCode": STR, "LocationCode": STR, "Dim1Code": STR, "Dim2Code": STR,
    "Dim3Code": STR, "SalesPersonEmployeeNumber": INT,
}
SEND_INVOICE_POST = {"DeliveryType": SEND_DELIVERY, "EmailAddress": STR, "OverrideDueDate": DATE, "VoucherDate": DATE}
