"""The one exception the handlers raise; the service turns it into Invoiced's ``{type, message[, param]}`` body."""
from __future__ import annotations


class ApiError(Exception):
    """An API error with its HTTP status, message and (optionally) the request field that caused it."""

    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param


def bad_request(message: str, param: str | None = None) -> ApiError:
    """A 400 ``invalid_request``."""
    return ApiError(400, message, param)


def not_found(model: str, ident) -> ApiError:
    """A 404 in the server's wording, e.g. ``Customer was not found: 123``."""
    return ApiError(404, f"{model} was not found: {ident}")


def options_error(unknown: list[str], defined, param: str) -> ApiError:
    """A 400 worded like Symfony's OptionsResolver, which the server uses to validate strict inputs."""
    names = ", ".join(f'"{k}"' for k in sorted(unknown))
    options = ", ".join(f'"{k}"' for k in sorted(defined))
    if len(unknown) == 1:
        message = f"The option {names} does not exist. Defined options are: {options}."
    else:
        message = f"The options {names} do not exist. Defined options are: {options}."
    return ApiError(400, message, param)
