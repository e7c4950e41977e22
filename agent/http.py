"""HTTPS to one Commander: TLS trust, timeouts, a size cap, and error mapping.

This is the one place where ``requests`` exceptions become our own
(``shared.errors``). Their text is not kept: requests and urllib3 put the
request URL into their messages, and a Commander URL carries the session
cookie. So each error is re-raised ``from None`` with a message we write.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Mapping
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter

from shared.config import TlsPolicy
from shared.errors import (
    CommanderTimeout,
    CommanderUnreachable,
    HttpError,
    ParseError,
    TlsError,
)

CGI_PATH = "/cgi-bin/CGILink"
_CHUNK = 64 * 1024


class _PinnedAdapter(HTTPAdapter):
    """An adapter that accepts exactly one certificate, by SHA-256 fingerprint."""

    def __init__(self, fingerprint: str, pool_maxsize: int = 1) -> None:
        self._fingerprint = fingerprint
        super().__init__(pool_maxsize=pool_maxsize)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **kwargs: Any
    ) -> None:
        kwargs["assert_fingerprint"] = self._fingerprint
        super().init_poolmanager(connections, maxsize, block, **kwargs)


def make_session(tls: TlsPolicy) -> requests.Session:
    """Return a session that trusts Commander certificates as ``tls`` says."""
    _hide_request_urls()
    session = requests.Session()
    session.trust_env = False  # a store's LAN address never goes through a proxy
    session.headers["User-Agent"] = "posproctor"
    if tls.fingerprint:
        session.mount("https://", _PinnedAdapter(tls.fingerprint, pool_maxsize=1))
        session.verify = False
    else:
        session.mount("https://", HTTPAdapter(pool_maxsize=1))
        if tls.insecure:
            quiet_insecure_warnings()
            session.verify = False
        elif tls.ca_bundle is not None:
            session.verify = str(tls.ca_bundle)
    return session


def _hide_request_urls() -> None:
    """Keep urllib3 from logging request URLs, which carry session cookies.

    urllib3 logs every request line at DEBUG. This is the one place where
    the agent sets a library's log level: whoever configures logging, a
    cookie must not reach a log line.
    """
    logger = logging.getLogger("urllib3.connectionpool")
    if logger.getEffectiveLevel() < logging.INFO:
        logger.setLevel(logging.INFO)


def quiet_insecure_warnings() -> None:
    """Silence urllib3's per-request warning; the agent warns once at start."""
    warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)


def call(
    session: requests.Session,
    base_url: str,
    *,
    params: Mapping[str, str] | None = None,
    form: Mapping[str, str] | None = None,
    timeout: float,
    max_bytes: int,
) -> bytes:
    """Send one CGILink request and return the body of a 200 answer.

    ``form`` sends a POST with the parameters in the body (used for login,
    so the password never sits in a URL); otherwise a GET with ``params``.
    """
    url = base_url + CGI_PATH
    deadline = time.monotonic() + timeout
    try:
        if form is not None:
            response = session.post(url, data=form, timeout=timeout, stream=True)
        else:
            response = session.get(url, params=params, timeout=timeout, stream=True)
        with response:
            if response.status_code != 200:
                raise HttpError(f"HTTP {response.status_code} from the Commander")
            return _read_capped(response, max_bytes, deadline, timeout)
    except requests.exceptions.SSLError:
        raise TlsError(_tls_message(session)) from None
    except requests.exceptions.Timeout:
        raise CommanderTimeout(f"no answer within {timeout:.0f}s") from None
    except requests.exceptions.ChunkedEncodingError:
        raise ParseError("response cut short by the Commander") from None
    except requests.exceptions.ConnectionError as exc:
        raise CommanderUnreachable(_connection_message(exc)) from None
    except requests.exceptions.RequestException as exc:
        raise CommanderUnreachable(f"request failed ({type(exc).__name__})") from None


def _read_capped(
    response: requests.Response, max_bytes: int, deadline: float, timeout: float
) -> bytes:
    body = bytearray()
    for chunk in response.iter_content(_CHUNK):
        body += chunk
        if len(body) > max_bytes:
            raise ParseError(f"response exceeds the {max_bytes}-byte limit")
        if time.monotonic() > deadline:
            raise CommanderTimeout(f"response not complete within {timeout:.0f}s")
    return bytes(body)


def _tls_message(session: requests.Session) -> str:
    adapter = session.get_adapter("https://")
    if isinstance(adapter, _PinnedAdapter):
        return "certificate does not match the pinned fingerprint"
    if session.verify is False:
        return "TLS handshake failed"
    return (
        "certificate not trusted (pin its fingerprint, give a CA bundle, "
        "or set insecure: true for this store)"
    )


def _connection_message(exc: requests.exceptions.ConnectionError) -> str:
    reason = str(exc).lower()
    if "refused" in reason:
        return "connection refused"
    if "reset" in reason:
        return "connection reset by the Commander"
    if "remotedisconnected" in reason or "aborted" in reason:
        return "connection closed by the Commander before it answered"
    if "no route" in reason or "unreachable" in reason:
        return "no route to the Commander"
    return "cannot connect to the Commander"
