"""Keys every HTTP source accepts: the URL, credentials by environment variable, timeouts and retries."""

from __future__ import annotations

import re
import urllib.parse

from pydantic import Field, field_validator

from twinhub.connectors.base import SourceConfig

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# query parameters that carry credentials: they belong in params_env, never in a manifest
SECRET_PARAMS = frozenset({"token", "key", "apikey", "api_key", "access_token", "password", "secret", "sig", "signature"})


class HttpConfig(SourceConfig):
    url: str
    headers_env: dict[str, str] = Field(default_factory=dict)  # header name -> environment variable name
    params_env: dict[str, str] = Field(default_factory=dict)  # query parameter -> environment variable name
    timeout: float = Field(30.0, gt=0, le=600)  # seconds to connect, and between bytes received
    retries: int = Field(3, ge=0, le=10)  # further attempts after a 5xx, a dropped connection or a cut-off body
    backoff: float = Field(1.0, ge=0, le=60)  # seconds before the first retry; doubles each time

    @field_validator("url")
    @classmethod
    def _plain_http_url(cls, url: str) -> str:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ValueError("give an http:// or https:// URL")
        if parts.username or parts.password:
            raise ValueError("the URL carries a user name or password; pass credentials with headers_env or params_env")
        secret = [n for n, _ in urllib.parse.parse_qsl(parts.query) if n.lower() in SECRET_PARAMS]
        if secret:
            raise ValueError(
                f"query parameter {secret[0]!r} looks like a credential; never write it in a manifest: "
                f"remove it from the URL and set params_env: {{{secret[0]}: NAME_OF_AN_ENVIRONMENT_VARIABLE}}"
            )
        return url

    @field_validator("headers_env", "params_env")
    @classmethod
    def _environment_names(cls, names: dict[str, str]) -> dict[str, str]:
        bad = [v for v in names.values() if not ENV_NAME.match(v)]
        if bad:
            raise ValueError(
                f"{bad[0]!r} is not the name of an environment variable: give the variable's NAME "
                "(e.g. PARKS_API_TOKEN), and set its value in the hub's environment"
            )
        return names
