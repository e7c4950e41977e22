"""One simulated Commander: answer CGILink commands under the active faults.

Synchronous and free of I/O: the server hands it a path and the request
parameters and writes back the ``Reply``; waiting (latency, slow responses)
and listening (connection refused) are the server's business.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from simulator import xmlgen
from simulator.faults import (
    DATA_COMMANDS,
    StoreView,
    build_view,
    expected_devices,
    expected_error,
)
from simulator.fleet import SimStore
from simulator.httpio import HTML_TYPE, XML_TYPE, reason
from simulator.sessions import LoginOutcome, SessionPolicy, SessionRules, SessionTable

logger = logging.getLogger(__name__)

CGI_PATHS = ("/cgi-bin/CGILink", "/cgi-bin/NAXML")
ACCESS_DENIED = "CGIPortal.AccessDenied"  # unverified code; the message is Verifone's
INTERNAL_ERROR = "CGIPortal.InternalError"
_VIEWS: dict[str, Callable[[StoreView, str, str], bytes]] = {
    "vforecourtdiagnostics": xmlgen.forecourt,
    "vpaymentdiagnostics": xmlgen.payment,
    "vposdiagnostics": xmlgen.pos,
}


@dataclass(frozen=True, slots=True)
class Reply:
    """What to send back; ``cut`` closes the connection after half the body."""

    status: int = 200
    body: bytes = b""
    content_type: str = XML_TYPE
    cut: bool = False


@dataclass(slots=True)
class StoreCounters:
    """What one simulated Commander has seen, for tests and benchmarks."""

    logins: int = 0
    failed_logins: int = 0
    requests: dict[str, int] = field(default_factory=dict)
    cookies: int = 0  # live cookies handed out by validate, right now
    releases: int = 0
    connections: int = 0  # TCP connections accepted
    peak_cookies: int = 0  # the most live cookies at any one time


@dataclass(frozen=True, slots=True)
class Account:
    """The monitoring user this Commander accepts."""

    username: str
    password: str = field(repr=False)


class SimCommander:
    """Answer the commands of commander-api.md for one store."""

    def __init__(
        self,
        store: SimStore,
        account: Account,
        rules: SessionRules,
        clock: Callable[[], float],
        password_days: int = 60,
    ) -> None:
        self.store = store
        self.account = account
        self.sessions = SessionTable(rules, clock)
        self.faults: dict[str, dict[str, Any]] = {}
        self.password_days = password_days
        self._counters = StoreCounters()
        self._evict = rules.policy is SessionPolicy.EVICT
        self._view: StoreView | None = None

    # -- faults ---------------------------------------------------------

    def set_fault(self, fault: str, params: Mapping[str, Any]) -> None:
        """Turn ``fault`` on with resolved ``params`` (replacing earlier ones)."""
        if fault == "cookie_expired":
            self.sessions.drop_all()
            if "session_limit_reached" in self.faults:
                self.sessions.fill_foreign()
            return
        self.faults[fault] = dict(params)
        if fault == "session_limit_reached":
            self.sessions.fill_foreign()
        self._view = None

    def clear_fault(self, fault: str) -> None:
        """Turn ``fault`` off; clearing one that is not set does nothing."""
        if (
            self.faults.pop(fault, None) is not None
            and fault == "session_limit_reached"
        ):
            self.sessions.drop_foreign()
        self._view = None

    def view(self) -> StoreView:
        """Return what the diagnostics commands report right now."""
        if self._view is None:
            self._view = build_view(self.store, self.faults)
        return self._view

    def expected(self) -> dict[str, Any]:
        """Return the device truth and the error a correct poller reports."""
        truth = expected_devices(self.view())
        truth["error_type"] = expected_error(
            self.faults, self.sessions.locked(), self._evict
        )
        truth["slow_seconds"] = self.faults.get("slow_response", {}).get("seconds", 0.0)
        truth["password_days"] = self.password_days
        return truth

    def counters(self) -> StoreCounters:
        """Return a copy of the counters with the live cookie count filled in."""
        return replace(
            self._counters,
            requests=dict(self._counters.requests),
            cookies=self.sessions.own_cookies,
        )

    def count_connection(self) -> None:
        self._counters.connections += 1

    def extra_delay(self, command: str) -> float:
        """Return the seconds a ``slow_response`` fault adds to ``command``."""
        params = self.faults.get("slow_response")
        if params is None or command not in params.get("commands", (command,)):
            return 0.0
        return float(params.get("seconds", 0.0))

    # -- requests -------------------------------------------------------

    def handle(self, path: str, params: Mapping[str, str]) -> Reply:
        """Answer one request to ``path`` with ``params``."""
        command = params.get("cmd", "")
        requests = self._counters.requests
        requests[command] = requests.get(command, 0) + 1
        if path not in CGI_PATHS:
            return _html(404, f"The requested URL {path} was not found on this server.")
        if self._hits("http_500", command):
            return _html(500, "The server encountered an internal error.")
        return self._mangle(command, self._dispatch(command, params))

    def _hits(self, fault: str, command: str) -> bool:
        params = self.faults.get(fault)
        return params is not None and command in params.get("commands", DATA_COMMANDS)

    def _dispatch(self, command: str, params: Mapping[str, str]) -> Reply:
        if command == "validate":
            return self._validate(params)
        if not command:
            return _fault("CGIPortal.ParseError", "Parse Error")
        cookie = params.get("cookie")
        if command == "releaseCredential":
            if not self.sessions.release(cookie):
                return _fault(xmlgen.LOGIN_REQUIRED, xmlgen.MSG_NO_CREDENTIAL)
            self._counters.releases += 1
            return Reply(body=xmlgen.empty_response())
        if not self.sessions.touch(cookie):
            return _fault(xmlgen.LOGIN_REQUIRED, xmlgen.MSG_NO_CREDENTIAL)
        return self._command(command)

    def _command(self, command: str) -> Reply:
        injected = self.faults.get("fault_response")
        if injected is not None and command in injected.get("commands", DATA_COMMANDS):
            return _fault(
                injected.get("code", INTERNAL_ERROR),
                injected.get("message", "Internal Error"),
            )
        time = xmlgen.local_time(self.store.timezone)
        if command == "vdatetime":
            return Reply(body=xmlgen.datetime_answer(time, self.store.timezone))
        render = _VIEWS.get(command)
        if render is None:
            return _fault(ACCESS_DENIED, xmlgen.MSG_DENIED)
        return Reply(body=render(self.view(), self.store.site_id, time))

    def _validate(self, params: Mapping[str, str]) -> Reply:
        if self.sessions.locked():
            return self._refuse(xmlgen.LOGIN_REQUIRED, xmlgen.MSG_LOCKED)
        good = self._password_ok(params.get("user", ""), params.get("passwd", ""))
        if good and self._otp_missing(params.get("otp")):
            return self._refuse("CGIPortal.OTPRequired", xmlgen.MSG_OTP)
        outcome, cookie = self.sessions.login(good)
        if outcome is LoginOutcome.LOCKED:
            logger.info("account locked store=%s", self.store.name)
            return self._refuse(xmlgen.LOGIN_REQUIRED, xmlgen.MSG_LOCKED)
        if outcome is LoginOutcome.INVALID:
            return self._refuse(xmlgen.LOGIN_REQUIRED, xmlgen.MSG_INVALID)
        if outcome is LoginOutcome.FULL or cookie is None:
            return self._refuse(INTERNAL_ERROR, xmlgen.MSG_SESSIONS)
        counters = self._counters
        counters.logins += 1
        counters.peak_cookies = max(counters.peak_cookies, self.sessions.own_cookies)
        body = xmlgen.credential(cookie, self.store.site_id, self.password_days)
        return Reply(body=body)

    def _password_ok(self, user: str, password: str) -> bool:
        wanted = self.account.password
        wrong = self.faults.get("wrong_credentials")
        if wrong is not None:
            wanted = wrong.get("password", f"{wanted}-rotated")
        same_user = hmac.compare_digest(user.encode(), self.account.username.encode())
        same_password = hmac.compare_digest(password.encode(), wanted.encode())
        return same_user and same_password

    def _otp_missing(self, otp: str | None) -> bool:
        params = self.faults.get("otp_required")
        if params is None:
            return False
        wanted = params.get("otp")
        return wanted is None or otp != wanted

    def _refuse(self, code: str, message: str) -> Reply:
        self._counters.failed_logins += 1
        return _fault(code, message)

    def _mangle(self, command: str, reply: Reply) -> Reply:
        if self._hits("empty_body", command):
            return replace(reply, body=b"")
        truncated = self.faults.get("truncated_xml")
        if truncated is None or command not in truncated.get("commands", DATA_COMMANDS):
            return reply
        if truncated.get("mode", "body") == "connection":
            return replace(reply, cut=True)
        return replace(reply, body=reply.body[: len(reply.body) // 2])


def _fault(code: str, message: str) -> Reply:
    return Reply(body=xmlgen.fault(code, message))


def _html(status: int, detail: str) -> Reply:
    return Reply(status, xmlgen.html_error(status, reason(status), detail), HTML_TYPE)
