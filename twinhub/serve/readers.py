"""Who a request reads as: its bearer token's consumer, or the anonymous public reader."""

from __future__ import annotations

import datetime as dt

from starlette.requests import Request

from twinhub.catalog.features import ANONYMOUS
from twinhub.catalog.grants import Consumer
from twinhub.catalog.tokens import TokenRefused, consumer_of
from twinhub.hub.home import Hub


def reader(request: Request, hub: Hub, today: dt.date, con) -> Consumer:
    """The consumer of ``Authorization: Bearer <token>``; no header: ANONYMOUS. A token in the URL is refused:
    URLs end up in proxies' and browsers' logs."""
    if any(k.lower() in ("token", "access_token", "api_key") for k in request.query_params):
        raise TokenRefused("send the token in the Authorization header (Bearer), never in the URL")
    header = request.headers.get("authorization")
    if header is None:
        return ANONYMOUS
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise TokenRefused("use Authorization: Bearer <token>")
    return consumer_of(hub.lake, value.strip(), today, con)
