"""Value coercion and validation shared by the models, with the server's wording of errors."""
from __future__ import annotations

import json
import math

from sandboxes.invoiced import reference as ref
from sandboxes.invoiced.errors import bad_request

_TRUE = {"1", "true", "on", "yes"}
_FALSE = {"0", "false", "off", "no", ""}


def label(key: str) -> str:
    """The field name as the server's translator prints it: ``postal_code`` → ``Postal code``."""
    return key.replace("_", " ").capitalize()


def blank(value) -> bool:
    """Empty strings count as null, as every Invoiced client assumes."""
    return value is None or value == ""


def text(key: str, value, max_length: int | None = None, required: bool = False) -> str | None:
    """A string field: numbers are accepted and stringified, containers are not."""
    if blank(value):
        if required:
            raise bad_request(f"{label(key)} is missing", key)
        return None
    if isinstance(value, (bool, dict, list)):
        raise bad_request(f"{label(key)} must be a string of the proper length", key)
    value = str(value)
    if max_length is not None and len(value) > max_length:
        raise bad_request(f"{label(key)} must be a string of the proper length", key)
    return value


def boolean(key: str, value) -> bool:
    """A boolean from JSON or a form (``1``/``0``, ``true``/``false``)."""
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, str) and value.strip().lower() in _TRUE:
        return True
    if isinstance(value, str) and value.strip().lower() in _FALSE:
        return False
    raise bad_request(f"{label(key)} must be a boolean", key)


def integer(key: str, value, nullable: bool = True) -> int | None:
    """An integer field (ids, days, timestamps); numeric strings from forms are accepted."""
    if blank(value):
        if nullable:
            return None
        raise bad_request(f"{label(key)} is missing", key)
    if isinstance(value, bool):
        raise bad_request(f"{label(key)} must be an integer", key)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise bad_request(f"{label(key)} must be an integer", key) from None
    if not math.isfinite(number) or number != int(number):
        raise bad_request(f"{label(key)} must be an integer", key)
    return int(number)


def number(key: str, value, default: float | None = None) -> float | None:
    """A decimal field (money, quantities)."""
    if blank(value):
        return default
    if isinstance(value, bool):
        raise bad_request(f"{label(key)} must be a number", key)
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise bad_request(f"{label(key)} must be a number", key) from None
    if not math.isfinite(result):
        raise bad_request(f"{label(key)} must be a number", key)
    return result


def email(key: str, value) -> str | None:
    """An email address or null."""
    value = text(key, value)
    if value is not None and not ref.EMAIL.match(value):
        raise bad_request(f"{label(key)} must be a valid email address", key)
    return value


def country(key: str, value, default: str | None) -> str | None:
    """An ISO 3166-1 alpha-2 code, upper-cased; empty means ``default``."""
    if blank(value):
        return default
    code = str(value).strip().upper()
    if code not in ref.COUNTRIES:
        raise bad_request(f"{label(key)} is invalid", key)
    return code


def currency(value) -> str | None:
    """An ISO 4217 code, stored lower-case; the server's message for a bad code has no ``param``."""
    if blank(value):
        return None
    code = str(value).strip().lower()
    if code not in ref.CURRENCIES:
        raise bad_request(f"Invalid currency code: {value}")
    return code


def money(amount: float, currency_code: str | None) -> float:
    """Round to the currency's minor unit (two decimals, none for the likes of JPY and ISK)."""
    digits = 0 if currency_code in ref.ZERO_DECIMAL_CURRENCIES else 2
    return round(amount + 0.0, digits) + 0.0


def _stored(value) -> str:
    """How the metadata table stores a value: arrays as JSON, booleans as 1/0, numbers as their text."""
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        shown = repr(value)
        return shown[:-2] if shown.endswith(".0") else shown
    return str(value)


def metadata(value) -> tuple[dict, dict]:
    """Validate a metadata map; return it as stored (strings) and as echoed in the write response (as sent)."""
    if isinstance(value, list) and not value:
        value = {}
    if not isinstance(value, dict):
        raise bad_request("Metadata must be an object", "metadata")
    if len(value) > ref.METADATA_MAX_KEYS:
        raise bad_request(f"There can only be up to {ref.METADATA_MAX_KEYS} metadata values. "
                          f"{len(value)} values were provided.", "metadata")
    stored = {}
    for key, item in value.items():
        if len(key.encode()) > ref.METADATA_MAX_KEY_LENGTH:
            raise bad_request(f"The `{key}` metadata key exceeds the {ref.METADATA_MAX_KEY_LENGTH} character limit.",
                              "metadata")
        if item is None:
            raise bad_request(f"The provided value for metadata.{key} is an invalid type. "
                              "Valid types are string, boolean, number, object, and array.", "metadata")
        as_text = _stored(item)
        if len(as_text.encode()) > ref.METADATA_MAX_VALUE_LENGTH:
            raise bad_request(f"The provided value for metadata.{key} exceeds the "
                              f"{ref.METADATA_MAX_VALUE_LENGTH} character limit.", "metadata")
        stored[key] = as_text
    return stored, dict(value)


def blocked(data: dict, keys, model: str) -> None:
    """Refuse read-only keys the way the ORM does: ``Mass assignment of <k> on <Model> is not allowed``."""
    for key in data:
        if key in keys:
            raise bad_request(f"Mass assignment of {key} on {model} is not allowed")
