"""RFC 6902 JSON Patch over a typed DTO, the way ASP.NET's JsonPatchDocument<T> applies it.

Paths match property names case-insensitively, values are coerced to the property type (numbers may come as
strings), ``remove`` on a property resets it to null, and unknown paths are errors.
"""
from __future__ import annotations

import copy

from sandboxes.poweroffice_go.fields import CoercionError, Field, Nested

OPERATIONS = ("add", "remove", "replace", "move", "copy", "test")


class PatchError(ValueError):
    """A patch document that cannot be applied; the message is the API's detail text."""


def _segments(path) -> list[str]:
    if not isinstance(path, str) or not path.startswith("/"):
        raise PatchError(f"The path '{path}' is not valid. It must start with '/'.")
    return [s.replace("~1", "/").replace("~0", "~") for s in path[1:].split("/")]


def _locate(doc: dict, fields: dict[str, Field], path) -> tuple[object, object, Field]:
    """Walk ``path``; return the parent container, the key or index in it, and the field type found there."""
    segments = _segments(path)
    container, schema, kind = doc, fields, None
    for position, segment in enumerate(segments):
        last = position == len(segments) - 1
        if isinstance(container, dict):
            name = next((k for k in schema if k.lower() == segment.lower()), None)
            if name is None:
                raise PatchError(f"The target location specified by path segment '{segment}' was not found.")
            kind = schema[name]
            if last:
                return container, name, kind
            child = container.get(name)
            if child is None:
                raise PatchError(f"The target location specified by path segment '{segments[position + 1]}' "
                                 "was not found.")
            container = child
            schema = kind.fields if isinstance(kind, Nested) else {}
        elif isinstance(container, list):
            if not last:
                raise PatchError(f"The target location specified by path segment '{segments[position + 1]}' "
                                 "was not found.")
            if segment == "-":
                return container, "-", kind.item
            if not segment.isdigit():
                raise PatchError(f"The index value provided by path segment '{segment}' is out of bounds of the "
                                 "array size.")
            return container, int(segment), kind.item
        else:
            raise PatchError(f"The target location specified by path segment '{segment}' was not found.")
    raise PatchError("The path '/' is not supported: patch individual properties.")


def _coerce(kind: Field, value, dto: str):
    try:
        return kind.coerce(value)
    except CoercionError as exc:
        raise PatchError(f"{dto}: The value '{exc.value}' is invalid for target location.") from None


def _get(doc, fields, path):
    container, key, _kind = _locate(doc, fields, path)
    if isinstance(container, list):
        index = len(container) - 1 if key == "-" else key
        if not 0 <= index < len(container):
            raise PatchError(f"The index value provided by path segment '{key}' is out of bounds of the array size.")
        return container[index]
    return container.get(key)


def _add(doc, fields, path, value, dto, replace=False):
    container, key, kind = _locate(doc, fields, path)
    value = _coerce(kind, value, dto)
    if isinstance(container, list):
        if key == "-":
            if replace:
                raise PatchError("The index value provided by path segment '-' is out of bounds of the array size.")
            container.append(value)
            return
        if not 0 <= key <= len(container) - (1 if replace else 0):
            raise PatchError(f"The index value provided by path segment '{key}' is out of bounds of the array size.")
        if replace:
            container[key] = value
        else:
            container.insert(key, value)
    elif isinstance(kind, Nested) and value is not None:
        # Setting a whole object keeps members the patch leaves out at null, like a fresh DTO would.
        container[key] = {name: value.get(name) for name in kind.fields}
    else:
        container[key] = value


def _remove(doc, fields, path):
    container, key, _kind = _locate(doc, fields, path)
    if isinstance(container, list):
        index = len(container) - 1 if key == "-" else key
        if not 0 <= index < len(container):
            raise PatchError(f"The index value provided by path segment '{key}' is out of bounds of the array size.")
        del container[index]
    else:
        container[key] = None


def apply_patch(doc: dict, operations, fields: dict[str, Field], dto: str) -> dict:
    """Apply ``operations`` to a copy of ``doc`` (the patchable view of a record) and return the copy."""
    if not isinstance(operations, list):
        raise PatchError("The JSON patch document was malformed and could not be parsed.")
    doc = copy.deepcopy(doc)
    for operation in operations:
        if not isinstance(operation, dict):
            raise PatchError("The JSON patch document was malformed and could not be parsed.")
        ops = {str(k).lower(): v for k, v in operation.items()}
        name = str(ops.get("op", "")).lower()
        path = ops.get("path")
        if name not in OPERATIONS:
            raise PatchError(f"Invalid JsonPatch operation '{ops.get('op')}'.")
        if name in ("add", "replace", "test") and "value" not in ops:
            raise PatchError(f"The '{name}' operation at path '{path}' requires a 'value'.")
        if name == "add":
            _add(doc, fields, path, ops["value"], dto)
        elif name == "replace":
            _add(doc, fields, path, ops["value"], dto, replace=True)
        elif name == "remove":
            _remove(doc, fields, path)
        elif name == "test":
            _container, _key, kind = _locate(doc, fields, path)
            expected = _coerce(kind, ops["value"], dto)
            current = _get(doc, fields, path)
            if current != expected:
                raise PatchError(f"The current value '{current}' at path '{path}' is not equal to the test value "
                                 f"'{ops['value']}'.")
        else:
            source = ops.get("from")
            value = copy.deepcopy(_get(doc, fields, source))
            if name == "move":
                _remove(doc, fields, source)
            _add(doc, fields, path, value, dto)
    return doc

