"""One careful GET: the network policy on every hop, bounded retries, cut-off bodies caught.

- Every URL, the first and each redirect's ``Location``, is checked by the
  ``NetworkPolicy`` before a connection is opened, and the connection goes to the
  address that was checked (the ``Host`` header and TLS name stay the URL's host).
- A 5xx or 429 answer, a refused or dropped connection, a timeout, and a body that
  ends before its ``Content-Length`` (or its last chunk) are retried after
  ``backoff``, ``2 * backoff``, ``4 * backoff``... seconds, ``retries`` times at most.
- Any other 4xx is not retried: the error names the status and the URL.
- A body over ``limits.max_download_mb`` (announced or sent), or a compressed body that
  expands more than ``limits.max_inflate_ratio`` times, is refused (not retried); urllib3
  inflates a block at a time, so a gzip bomb is stopped after a few blocks.
- Credentials (``headers_env``, ``params_env``) are read from the environment at
  request time, sent only to the source URL's own scheme, host and port, and never
  appear in a message: URLs in messages have their query values elided.
"""

from __future__ import annotations

import logging
import os
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

import urllib3
from urllib3 import exceptions as u3

from twinhub.connectors.errors import SourceError
from twinhub.connectors.http.config import HttpConfig
from twinhub.connectors.http.policy import NetworkPolicy, Target, redact
from twinhub.connectors.policy import Limits

log = logging.getLogger("twinhub.connectors")

MAX_REDIRECTS = 5
MAX_RETRY_AFTER = 60.0  # seconds: a server asking for longer is treated as down
REDIRECTS = frozenset({301, 302, 303, 307, 308})
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
USER_AGENT = "twinhub (city data hub)"


class Retryable(Exception):
    """A failure that another attempt may not meet: 5xx, a dropped connection, a cut-off body."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Fetched:
    url: str  # after redirects
    headers: dict[str, str]
    size: int


def with_params(url: str, params: dict[str, object]) -> str:
    """``url`` with ``params`` set in its query string (replacing any of the same name)."""
    parts = urllib.parse.urlsplit(url)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query += [(k, str(v)) for k, v in params.items() if v is not None]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def _retry_after(value: str | None) -> float | None:
    try:
        return min(float(value), MAX_RETRY_AFTER) if value else None
    except ValueError:
        return None  # an HTTP date: fall back to the backoff


class Fetcher:
    """GETs for one source, with that source's credentials, timeouts and retries."""

    def __init__(self, config: HttpConfig, policy: NetworkPolicy, where: str, limits: Limits | None = None):
        self.config = config
        self.policy = policy
        self.where = where
        self.origin = policy_origin(config.url)
        self.limits = limits or Limits()

    def _secret(self, kind: str, name: str, variable: str) -> str:
        value = os.environ.get(variable)
        if value is None:
            raise SourceError(
                f"{self.where}: environment variable {variable} (source.{kind}.{name}) is not set; "
                "set it in the environment the hub runs in (the Dagster webserver and daemon)"
            )
        return value

    def _request_headers(self, target: Target, accept: str) -> dict[str, str]:
        default_port = 443 if target.scheme == "https" else 80
        host = f"[{target.host}]" if ":" in target.host else target.host
        headers = {
            "Host": host if target.port == default_port else f"{host}:{target.port}",
            "User-Agent": USER_AGENT,
            "Accept": accept,
            "Accept-Encoding": "gzip, deflate",
        }
        if target.origin == self.origin:  # credentials go to the source's own host only
            headers.update({h: self._secret("headers_env", h, v) for h, v in self.config.headers_env.items()})
        return headers

    def _with_secret_params(self, url: str) -> str:
        if not self.config.params_env or policy_origin(url) != self.origin:
            return url
        return with_params(url, {p: self._secret("params_env", p, v) for p, v in self.config.params_env.items()})

    def get(self, url: str, out: BinaryIO, accept: str = "*/*", validate: Callable[[BinaryIO], None] | None = None) -> Fetched:
        """Write the body of ``url`` to ``out`` (rewound and truncated first); retry as the module says.

        ``validate`` may raise ``Retryable`` (e.g. JSON that stops mid-way) to have the
        download tried again.
        """
        attempts = self.config.retries + 1
        for attempt in range(attempts):
            try:
                fetched = self._follow(url, out, accept)
                if validate is not None:
                    out.seek(0)
                    validate(out)
                return fetched
            except Retryable as exc:
                if attempt + 1 == attempts:
                    raise SourceError(
                        f"{self.where}: {exc}; gave up after {attempts} attempt{'s' * (attempts > 1)}; "
                        "the server may be down or overloaded: try again later, or raise source.timeout / source.retries"
                    ) from None
                delay = exc.retry_after if exc.retry_after is not None else self.config.backoff * 2**attempt
                log.warning("%s: %s; retrying in %.1f s", self.where, exc, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")

    def _follow(self, url: str, out: BinaryIO, accept: str) -> Fetched:
        for _ in range(MAX_REDIRECTS + 1):
            target = self.policy.check(self._with_secret_params(url))  # before any connection
            response = self._open(target, accept)
            try:
                if response.status in REDIRECTS and response.headers.get("Location"):
                    url = urllib.parse.urljoin(url, response.headers["Location"])
                    continue
                self._raise_for_status(response, target.url)
                size = self._read_body(response, out, url)
                return Fetched(url=url, headers=dict(response.headers), size=size)
            finally:
                response.release_conn()
        raise SourceError(f"{self.where}: more than {MAX_REDIRECTS} redirects from {redact(url)}; check source.url")

    def _open(self, target: Target, accept: str) -> urllib3.BaseHTTPResponse:
        timeout = urllib3.Timeout(connect=self.config.timeout, read=self.config.timeout)
        if target.scheme == "https":
            pool: urllib3.HTTPConnectionPool = urllib3.HTTPSConnectionPool(
                target.ip, target.port, timeout=timeout, retries=False, maxsize=1,
                server_hostname=target.host, assert_hostname=target.host, cert_reqs="CERT_REQUIRED",
            )
        else:
            pool = urllib3.HTTPConnectionPool(target.ip, target.port, timeout=timeout, retries=False, maxsize=1)
        log.info("%s: GET %s", self.where, redact(target.url))
        try:
            return pool.urlopen(
                "GET", target.path, headers=self._request_headers(target, accept), redirect=False,
                retries=False, preload_content=False, assert_same_host=False,
            )
        except u3.SSLError as exc:
            raise SourceError(f"{self.where}: TLS failed for {redact(target.url)}: {exc}; check the server's certificate") from None
        except u3.NewConnectionError as exc:  # a subclass of ConnectTimeoutError, but a refusal
            raise Retryable(f"cannot connect to {redact(target.url)}: {_reason(exc)}") from None
        except (u3.ConnectTimeoutError, u3.ReadTimeoutError):
            raise Retryable(f"{redact(target.url)} did not answer within {self.config.timeout:g} s (source.timeout)") from None
        except u3.HTTPError as exc:
            raise Retryable(f"cannot connect to {redact(target.url)}: {_reason(exc)}") from None

    def _too_large(self, url: str, what: str) -> SourceError:
        return SourceError(_too_large_message(self.where, url, what, self.limits.max_download_bytes))

    def _raise_for_status(self, response: urllib3.BaseHTTPResponse, url: str) -> None:
        status = response.status
        if status < 400:
            return
        said = f"HTTP {status} {response.reason or ''}".strip() + f" from {redact(url)}"
        if status in RETRY_STATUSES:
            raise Retryable(said, _retry_after(response.headers.get("Retry-After")))
        if status in (401, 403):
            hint = "the server refused the credentials: check the environment variables named in source.headers_env / source.params_env"
        elif status == 404:
            hint = "check source.url (the dataset may have moved)"
        else:
            hint = "check source.url and its parameters"
        raise SourceError(f"{self.where}: {said}; {hint}")

    def _read_body(self, response: urllib3.BaseHTTPResponse, out: BinaryIO, url: str) -> int:
        out.seek(0)
        out.truncate()
        expected = response.headers.get("Content-Length")
        cap = self.limits.max_download_bytes
        if expected and expected.isdigit() and int(expected) > cap:
            raise self._too_large(url, f"announces {int(expected):,} bytes")
        size = 0
        try:
            for block in response.stream(1 << 16):
                out.write(block)
                size += len(block)
                if size > cap:
                    raise self._too_large(url, f"sent more than {cap:,} bytes")
                if self.limits.inflated(response.tell(), size):
                    raise SourceError(
                        f"{self.where}: refused {redact(url)}: its compressed body expands more than "
                        f"{self.limits.max_inflate_ratio} times ({response.tell():,} bytes to {size:,} so far; a "
                        "decompression bomb); limits.max_inflate_ratio in twinhub.yaml raises the cap")
        except (u3.ReadTimeoutError, u3.ConnectTimeoutError):
            raise Retryable(f"{redact(url)} stopped sending after {size} bytes for {self.config.timeout:g} s (source.timeout)") from None
        except (u3.ProtocolError, u3.DecodeError, u3.HTTPError) as exc:
            said = f" of {expected}" if expected else ""
            raise Retryable(f"the download of {redact(url)} was cut off after {size}{said} bytes ({_reason(exc)})") from None
        out.flush()
        return size


def _too_large_message(where: str, url: str, what: str, cap: int) -> str:
    return (f"{where}: refused {redact(url)}: it {what}, over the hub's cap of {cap >> 20:,} MB a download; "
            "limits.max_download_mb in twinhub.yaml raises it")


def policy_origin(url: str) -> tuple[str, str, int]:
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        port = -1
    return scheme, (parts.hostname or "").lower(), port


def _reason(exc: Exception) -> str:
    """The innermost reason of a urllib3 error, without the pool's wording."""
    text = str(getattr(exc, "reason", None) or exc)
    return text.split(": ", 1)[-1] if text.startswith(("<urllib3", "HTTPConnection")) else text
