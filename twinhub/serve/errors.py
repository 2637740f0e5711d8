"""OGC API exception responses: a status, a code and a description that reveals no data or path."""

from __future__ import annotations

import duckdb
from starlette.requests import Request
from starlette.responses import JSONResponse

from twinhub.catalog.features import BadRequest, UnknownCollection
from twinhub.catalog.filters import FilterError
from twinhub.catalog.tokens import TokenRefused


class ApiError(Exception):
    def __init__(self, status: int, code: str, description: str, headers: dict | None = None):
        super().__init__(description)
        self.status, self.code, self.description, self.headers = status, code, description, headers or {}


# the errors answered with their own status; any other exception is a server error (500)
EXPECTED = (ApiError, TokenRefused, UnknownCollection, BadRequest, FilterError, duckdb.InterruptException)


def not_found(what: str) -> ApiError:
    return ApiError(404, "NotFound", what)


def forbidden() -> ApiError:
    """The same words whatever the collection: a 403 says nothing of what is behind it."""
    return ApiError(403, "Forbidden", "this collection is not readable with your access: ask a steward for a grant "
                                      "and a token (docs/serving.md)")


def exception_body(status: int, code: str, description: str) -> dict:
    return {"code": code, "description": description, "status": status}


async def handle(request: Request, exc: Exception) -> JSONResponse:
    """Map the hub's errors to OGC exception bodies; anything unexpected is a 500 saying nothing inside."""
    if isinstance(exc, ApiError):
        error = exc
    elif isinstance(exc, TokenRefused):
        error = ApiError(401, "InvalidToken", str(exc), {"WWW-Authenticate": 'Bearer realm="twinhub"'})
    elif isinstance(exc, UnknownCollection):
        error = not_found(str(exc))
    elif isinstance(exc, (BadRequest, FilterError)):
        error = ApiError(400, "InvalidParameterValue", str(exc))
    elif isinstance(exc, duckdb.InterruptException):
        error = ApiError(503, "ServiceUnavailable", "the request took longer than its time budget: narrow it "
                                                    "(bbox, filter, limit) or try again", {"Retry-After": "5"})
    else:
        import logging

        logging.getLogger("twinhub.serve").exception("unexpected error on %s", request.url.path)
        error = ApiError(500, "ServerError", "the server failed to answer; the steward can find why in its log")
    return JSONResponse(exception_body(error.status, error.code, error.description), status_code=error.status,
                        headers=error.headers)
