"""The MLflow door's HTTP plumbing: request parameters, JSON responses, MLflow errors.

MLflow endpoints are plain Django views (the door is hot: log-batch, search), built with
`mlflow_endpoint`, which maps HTTP methods to handlers, parses the parameters (query string
for GET, JSON body otherwise), and turns PortalError into MLflow's error JSON.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from portal import numbers, routes
from portal.errors import InvalidParameter, PortalError

logger = logging.getLogger(__name__)

_MISSING = object()


class Params:
    """Typed access to an MLflow request's parameters, with MLflow's error messages."""

    def __init__(self, data: dict[str, Any], multi: dict[str, list[str]] | None = None):
        self.data = data
        self.multi = multi or {}

    @classmethod
    def from_request(cls, request: HttpRequest) -> Params:
        if request.method == "GET":
            try:
                multi = {key: request.GET.getlist(key) for key in request.GET}
            except TooManyFieldsSent:
                raise InvalidParameter("Too many query parameters.") from None
            _reject_surrogates(multi)
            return cls({key: values[-1] for key, values in multi.items()}, multi)
        try:
            body = request.body
        except RequestDataTooBig:
            raise RequestTooLarge(
                f"The request body exceeds the limit of {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes."
            ) from None
        empty = not body.strip()
        content_type = request.content_type or ""
        # Requiring JSON keeps cross-site forms and no-cors fetches (which cannot send it
        # without a CORS preflight) from reaching the API with credentials a browser
        # remembered; an absent Content-Type is refused too. A browser sends those without a
        # preflight only as POST, and then also with an empty body (runs/create needs no
        # parameter), so an empty POST needs the header as well; the mlflow client always
        # sends it (a JSON object, at least "{}").
        if content_type != "application/json" and (not empty or request.method == "POST"):
            shown = repr(content_type) if content_type else "no Content-Type"
            raise InvalidParameter(f"Expected a JSON body (Content-Type: application/json), got {shown}.")
        data = {} if empty else json_body_parse(body)
        if not isinstance(data, dict):
            raise InvalidParameter("The JSON request body must be an object.")
        if request.method == "DELETE" and request.GET:
            # A DELETE carries its parameters in a JSON body (the mlflow client) or in the
            # query string (databricks-sdk): both count, the body's first.
            query = {key: request.GET[key] for key in request.GET}
            _reject_surrogates(query)
            data = {**query, **data}
        return cls(data)

    def _raw(self, name: str) -> Any:
        value = self.data.get(name, _MISSING)
        return _MISSING if value is None else value

    def has(self, name: str) -> bool:
        return self._raw(name) is not _MISSING

    @staticmethod
    def _missing(name: str) -> InvalidParameter:
        return InvalidParameter(
            f"Missing value for required parameter '{name}'. "
            "See the API docs for more information about request parameters."
        )

    @staticmethod
    def _invalid(name: str, value: Any, expected: str) -> InvalidParameter:
        shown = repr(value)
        if len(shown) > 100:
            shown = shown[:100] + "..."
        return InvalidParameter(f"Invalid value {shown} for parameter '{name}' supplied: expected {expected}.")

    def str(self, name: str, *, required: bool = False, default: str | None = None) -> str | None:
        value = self._raw(name)
        if value is _MISSING or (required and value == ""):
            if required:
                raise self._missing(name)
            return default
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self._invalid(name, value, "a string")
        return str(value)

    def int(self, name: str, *, required: bool = False, default: int | None = None) -> int | None:
        value = self._raw(name)
        if value is _MISSING or value == "":
            if required:
                raise self._missing(name)
            return default
        if isinstance(value, bool):
            raise self._invalid(name, value, "an integer")
        if isinstance(value, float):
            if not value.is_integer():
                raise self._invalid(name, value, "an integer")
            return int(value)
        try:
            number = int(str(value).strip())
        except ValueError:
            raise self._invalid(name, value, "an integer") from None
        if not -(2**63) <= number < 2**63:
            raise self._invalid(name, value, "a 64-bit integer")
        return number

    def float(self, name: str, *, required: bool = False) -> float | None:
        value = self._raw(name)
        if value is _MISSING or value == "":
            if required:
                raise self._missing(name)
            return None
        return parse_double(value, name)

    def bool(self, name: str, *, default: bool = False) -> bool:
        value = self._raw(name)
        if value is _MISSING or value == "":
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise self._invalid(name, value, "a boolean")

    def list(self, name: str) -> list[Any]:
        if name in self.multi:
            return list(self.multi[name])
        value = self._raw(name)
        if value is _MISSING:
            return []
        if not isinstance(value, list):
            raise self._invalid(name, value, "a list")
        return value

    def str_list(self, name: str) -> list[str]:
        items = self.list(name)
        for item in items:
            if not isinstance(item, str):
                raise self._invalid(name, item, "a list of strings")
        return items

    def objects(self, name: str) -> list[dict[str, Any]]:
        items = self.list(name)
        for item in items:
            if not isinstance(item, dict):
                raise self._invalid(name, item, "a list of objects")
        return items

    def run_id(self) -> str:
        """runs endpoints accept run_id and its older name run_uuid; the client sends both."""
        value = self.str("run_id") or self.str("run_uuid")
        if not value:
            raise self._missing("run_id")
        return value


class RequestTooLarge(PortalError):
    """A request body over settings.DATA_UPLOAD_MAX_MEMORY_SIZE (artifact uploads stream and are not limited)."""

    mlflow_code = "REQUEST_LIMIT_EXCEEDED"
    http_status = 413


# A JSON escape that may decode to half of a surrogate pair (a pair decodes to one code
# point; a lone half cannot be encoded to UTF-8, so no database or file could store it).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def json_body_parse(body: bytes) -> Any:
    """A request body as JSON: UTF-8 (RFC 8259), and no lone surrogate in any string."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidParameter(f"Malformed JSON request body: not UTF-8 ({exc}).") from None
    try:
        data = json.loads(text)
    except RecursionError:
        raise InvalidParameter("Malformed JSON request body: nested too deeply.") from None
    except ValueError as exc:
        raise InvalidParameter(f"Malformed JSON request body: {exc}") from None
    if _SURROGATE_ESCAPE.search(text):
        _reject_surrogates(data)
    return data


def _reject_surrogates(data: Any) -> None:
    """Walk `data` (without recursion: it may be nested deep) for strings with a lone surrogate."""
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                raise InvalidParameter("Invalid string in the request: it contains a lone surrogate (\\ud800-\\udfff).")
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


def parse_double(value: Any, name: str) -> float:
    number = numbers.parse_double(value)
    if number is None:
        raise Params._invalid(name, value, "a number")
    return number


double_json = numbers.double_json


def page_json(key: str, items: list, next_page_token: str | None) -> dict[str, Any]:
    """A search answer: `items` under `key`, and `next_page_token` only when there is a next page."""
    result: dict[str, Any] = {key: items}
    if next_page_token:
        result["next_page_token"] = next_page_token
    return result


def json_response(data: dict[str, Any], status: int = 200) -> HttpResponse:
    # Answers are trees built fresh for each request, so json's check for reference cycles
    # (an id() lookup per dict and list: a page of runs has thousands) is skipped.
    body = json.dumps(data, separators=(",", ":"), allow_nan=False, check_circular=False)
    return HttpResponse(body, status=status, content_type="application/json")


def error_response(code: str, message: str, status: int) -> HttpResponse:
    return json_response({"error_code": code, "message": message}, status=status)


Handler = Callable[..., dict[str, Any] | HttpResponse]


def mlflow_endpoint(
    handlers: dict[str, Handler], *, rule: str = routes.AUTHENTICATED, parse_params: bool = True
) -> Callable[..., HttpResponse]:
    """A view serving one MLflow path: `handlers` maps HTTP method to handler(request, params, **kwargs).

    Every view of the MLflow door answers errors this way, so every one is built here. With
    `parse_params=False` a handler is called as handler(request, **kwargs) and the body is
    left unread, for handlers that stream it (artifact uploads): parsing would load it whole.
    """

    allowed = ", ".join(sorted(handlers))

    @csrf_exempt
    def view(request: HttpRequest, **kwargs: Any) -> HttpResponse:
        handler = handlers.get(request.method)
        if handler is None:
            response = error_response(
                "ENDPOINT_NOT_FOUND", f"Method {request.method} is not allowed here; use {allowed}.", 405
            )
            response["Allow"] = allowed
            return response
        try:
            if parse_params:
                result = handler(request, Params.from_request(request), **kwargs)
            else:
                result = handler(request, **kwargs)
        except PortalError as exc:
            return error_response(exc.mlflow_code, exc.message, exc.http_status)
        except Exception:
            # A bug, not bad input: log it, and still answer in MLflow's error format.
            logger.exception("Unhandled error in %s %s", request.method, request.path)
            return error_response("INTERNAL_ERROR", "Internal error; see the server log.", 500)
        if isinstance(result, HttpResponseBase):
            return result
        return json_response(result)

    view.access_rule = rule
    view.mlflow_handlers = handlers
    first = next(iter(handlers.values()))
    view.__name__ = getattr(first, "__name__", "mlflow_view")
    view.__module__ = getattr(first, "__module__", __name__)
    return view


def unsupported_endpoint(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Anything under the MLflow prefixes that the portal does not serve."""
    return error_response(
        "ENDPOINT_NOT_FOUND", f"The MLflow endpoint {request.method} {request.path} is not supported by this server.", 404
    )


unsupported_endpoint.access_rule = routes.PUBLIC
unsupported_endpoint = csrf_exempt(unsupported_endpoint)
