"""One Commander's session: login, cookie reuse, lockout guard, one poll.

A ``CommanderClient`` owns everything the agent holds for one Commander:
its HTTPS session, its cookie and its failed-login count. The cookie is
reused across cycles until a ``CGIPortal.LoginRequired`` Fault says it is
gone; then the client logs in once and retries the command once.

Lockout guard: after two failed logins in a row the client stops logging in
to that Commander until its credentials change or the cool-down passes,
then tries once more. The Commander itself locks an account after six
failures, so a wrong password never locks the store out.

One request at a time per Commander: ``poll`` holds the client's lock, and
``try_poll`` lets the poller skip a store whose previous poll is still stuck.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TypeVar

from agent import http, parse
from shared.config import Commander, Config, Credentials, TlsPolicy
from shared.errors import (
    AuthError,
    CommanderError,
    CommanderTimeout,
    FaultError,
    LockoutError,
)
from shared.model import Device, StoreStatus

log = logging.getLogger(__name__)
T = TypeVar("T")

FAILED_LOGINS_BEFORE_GUARD = 2
FORECOURT = "vforecourtdiagnostics"
PAYMENT = "vpaymentdiagnostics"
POS = "vposdiagnostics"


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """What every client of one agent shares."""

    timeout: float = 30.0
    loyalty_names: Collection[str] = ("rewards 2 go",)
    max_bytes: int = 4 * 1024 * 1024
    lockout_cooldown: float = 1800.0

    @classmethod
    def from_config(cls, config: Config) -> ClientSettings:
        """Return the client settings that ``config.yaml`` describes."""
        return cls(
            timeout=config.timeout_seconds,
            loyalty_names=config.loyalty_names,
            max_bytes=config.agent.max_response_bytes,
            lockout_cooldown=config.agent.lockout_cooldown_minutes * 60.0,
        )


@dataclass(slots=True)
class _Reading:
    """What one poll has read so far; a failure keeps what came before it."""

    durations: dict[str, float] = field(default_factory=dict)
    forecourt: parse.Forecourt | None = None
    payment: parse.Payment | None = None
    registers: tuple[Device, ...] = ()


class CommanderClient:
    """Poll one Commander, gently: one cookie, one request at a time."""

    def __init__(
        self,
        commander: Commander,
        credentials: Credentials,
        tls: TlsPolicy,
        settings: ClientSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        on_body: Callable[[str, bytes], None] | None = None,
    ) -> None:
        """``on_body`` sees each data command's raw answer (never the login's)."""
        self.commander = commander
        self._on_body = on_body
        self._credentials = credentials
        self._tls = tls
        self._settings = settings
        self._clock = clock
        self._wall_clock = wall_clock
        self._session = http.make_session(tls)
        self._cookie: str | None = None
        self._failed_logins = 0
        self._guard_until = 0.0
        self._pos_supported = True
        self._password_days: int | None = None
        self._deadline = 0.0
        self._lock = threading.Lock()

    def update(
        self, commander: Commander, credentials: Credentials, tls: TlsPolicy
    ) -> None:
        """Take a changed inventory row, credentials or TLS policy."""
        with self._lock:
            if credentials != self._credentials:
                self._credentials = credentials
                self._failed_logins = 0
                self._guard_until = 0.0
                self._cookie = None
            if tls != self._tls or commander.base_url != self.commander.base_url:
                self._tls = tls
                self._session.close()
                self._session = http.make_session(tls)
                self._cookie = None
            self.commander = commander

    def try_poll(self, cycle: int) -> StoreStatus | None:
        """Poll unless a previous poll still holds this Commander; then None."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            return self._poll(cycle)
        finally:
            self._lock.release()

    def poll(self, cycle: int = 0) -> StoreStatus:
        """Read the Commander's health; failures come back inside the status."""
        with self._lock:
            return self._poll(cycle)

    def release(self, wait: float = 1.0) -> None:
        """Give the session cookie back to the Commander (best effort).

        A poll stuck on this Commander keeps its lock; after ``wait``
        seconds the cookie is left to expire on the Commander instead.
        """
        if not self._lock.acquire(timeout=wait):
            log.debug(
                "release skipped, poll still running store=%s", self.commander.store
            )
            return
        try:
            cookie, self._cookie = self._cookie, None
            if cookie is not None:
                try:
                    self._call({"cmd": "releaseCredential", "cookie": cookie}, 5.0)
                except CommanderError as exc:
                    log.debug(
                        "release failed store=%s error=%s", self.commander.store, exc
                    )
            self._session.close()
        finally:
            self._lock.release()

    # -- one poll -------------------------------------------------------

    def _poll(self, cycle: int) -> StoreStatus:
        started = self._wall_clock()
        self._deadline = self._clock() + self._settings.timeout
        found = _Reading()
        error: CommanderError | None = None
        try:
            self._read_all(found)
        except CommanderError as exc:
            error = exc
        return self._status(started, cycle, found, error)

    def _read_all(self, found: _Reading) -> None:
        limit = self._settings.max_bytes
        durations = found.durations
        found.forecourt = self._fetch(
            FORECOURT, durations, lambda body: parse.parse_forecourt(body, limit)
        )
        names = self._settings.loyalty_names
        found.payment = self._fetch(
            PAYMENT, durations, lambda body: parse.parse_payment(body, names, limit)
        )
        if self._pos_supported:
            found.registers = self._read_pos(durations)

    def _read_pos(self, durations: dict[str, float]) -> tuple[Device, ...]:
        limit = self._settings.max_bytes
        try:
            return self._fetch(
                POS, durations, lambda body: parse.parse_pos(body, limit)
            )
        except FaultError as exc:
            self._pos_supported = False
            log.info(
                "registers not readable, skipping vposdiagnostics store=%s fault=%s",
                self.commander.store,
                exc,
            )
            return ()

    def _status(
        self,
        started: float,
        cycle: int,
        found: _Reading,
        error: CommanderError | None,
    ) -> StoreStatus:
        c = self.commander
        forecourt, payment = found.forecourt, found.payment
        return StoreStatus(
            store=c.store,
            ip=c.ip,
            group=c.group,
            brand=c.brand,
            poll_time=started,
            cycle=cycle,
            error_type=error.error_type if error else None,
            error=str(error) if error else "",
            durations=found.durations,
            controller=forecourt.controller if forecourt else None,
            pumps=forecourt.pumps if forecourt else (),
            dcrs=forecourt.dcrs if forecourt else (),
            price_displays=forecourt.price_displays if forecourt else (),
            tank_sensor=forecourt.tank_sensor if forecourt else None,
            primary_fep=payment.primary_fep if payment else None,
            loyalty_fep=payment.loyalty_fep if payment else None,
            feps=payment.feps if payment else (),
            pinpads=payment.pinpads if payment else (),
            registers=found.registers,
            password_days=self._password_days,
        )

    # -- session --------------------------------------------------------

    def _fetch(
        self, cmd: str, durations: dict[str, float], parser: Callable[[bytes], T]
    ) -> T:
        """Run one data command with the cached cookie, logging in as needed."""
        if self._cookie is None:
            self._login(durations)
        try:
            return parser(self._timed(cmd, durations))
        except FaultError as exc:
            if exc.code != parse.LOGIN_REQUIRED:
                raise
        log.debug("session expired, logging in again store=%s", self.commander.store)
        self._cookie = None
        self._login(durations)
        return parser(self._timed(cmd, durations))

    def _login(self, durations: dict[str, float]) -> None:
        self._check_guard()
        creds = self._credentials
        form = {"cmd": "validate", "user": creds.username, "passwd": creds.password}
        start = self._clock()
        try:
            body = http.call(
                self._session,
                self.commander.base_url,
                form=form,
                timeout=self._time_left(),
                max_bytes=self._settings.max_bytes,
            )
            credential = parse.parse_credential(body, self._settings.max_bytes)
        except AuthError:
            self._login_failed()
            raise
        finally:
            durations["validate"] = self._clock() - start
        self._failed_logins = 0
        self._cookie = credential.cookie
        self._password_days = credential.password_days

    def _check_guard(self) -> None:
        if self._failed_logins < FAILED_LOGINS_BEFORE_GUARD:
            return
        remaining = self._guard_until - self._clock()
        if remaining > 0:
            raise LockoutError(
                f"not logging in after {self._failed_logins} failed logins, "
                f"to protect the account; next try in {remaining / 60:.0f} min "
                "or when the credentials change"
            )

    def _login_failed(self) -> None:
        self._failed_logins += 1
        if self._failed_logins >= FAILED_LOGINS_BEFORE_GUARD:
            self._guard_until = self._clock() + self._settings.lockout_cooldown
            log.warning(
                "login guard on store=%s failed_logins=%d cooldown_min=%.0f",
                self.commander.store,
                self._failed_logins,
                self._settings.lockout_cooldown / 60,
            )

    def _timed(self, cmd: str, durations: dict[str, float]) -> bytes:
        start = self._clock()
        try:
            cookie = self._cookie or ""
            body = self._call({"cmd": cmd, "cookie": cookie}, self._time_left())
        finally:
            durations[cmd] = durations.get(cmd, 0.0) + self._clock() - start
        if self._on_body is not None:
            self._on_body(cmd, body)
        return body

    def _time_left(self) -> float:
        left = self._deadline - self._clock()
        if left <= 0:
            raise CommanderTimeout(
                f"poll not finished within {self._settings.timeout:.0f}s"
            )
        return left

    def _call(self, params: dict[str, str], timeout: float) -> bytes:
        return http.call(
            self._session,
            self.commander.base_url,
            params=params,
            timeout=timeout,
            max_bytes=self._settings.max_bytes,
        )
