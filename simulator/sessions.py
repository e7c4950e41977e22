"""One Commander's login state: cookies, the session cap and the lockout.

Time comes from an injected clock (seconds), so tests can jump past the
idle timeout or the lockout without waiting. Not thread-safe: the server
touches it only from its event loop.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, StrEnum


class SessionPolicy(StrEnum):
    """What ``validate`` does when every session slot is taken."""

    REFUSE = "refuse"
    EVICT = "evict"


class LoginOutcome(Enum):
    """Why a login failed, or OK."""

    OK = "ok"
    INVALID = "invalid"
    LOCKED = "locked"
    FULL = "full"


@dataclass(slots=True)
class _Session:
    last_used: float
    foreign: bool = False  # held by another client (session_limit_reached)


@dataclass(frozen=True, slots=True)
class SessionRules:
    """The limits every simulated Commander enforces."""

    idle_ttl: float = 900.0
    limit: int = 5
    policy: SessionPolicy = SessionPolicy.REFUSE
    lockout_threshold: int = 6
    lockout_seconds: float = 1800.0


class SessionTable:
    """Hold one Commander's session cookies and failed-login count."""

    def __init__(self, rules: SessionRules, clock: Callable[[], float]) -> None:
        self._rules = rules
        self._clock = clock
        self._sessions: dict[str, _Session] = {}
        self._failures = 0
        self._locked_until: float | None = None
        self.pinned = False  # foreign sessions never idle out while set

    @property
    def own_cookies(self) -> int:
        """Count live cookies handed out by ``validate``."""
        self._expire()
        return sum(1 for s in self._sessions.values() if not s.foreign)

    def locked(self) -> bool:
        """Tell whether the account is locked right now."""
        if self._locked_until is None:
            return False
        if self._clock() < self._locked_until:
            return True
        self._locked_until = None
        self._failures = 0
        return False

    def login(self, password_ok: bool) -> tuple[LoginOutcome, str | None]:
        """Check a login; return the outcome and, if OK, a new cookie."""
        if self.locked():
            return LoginOutcome.LOCKED, None
        if not password_ok:
            return self._fail(), None
        self._failures = 0
        self._expire()
        if len(self._sessions) >= self._rules.limit:
            if self._rules.policy is SessionPolicy.REFUSE:
                return LoginOutcome.FULL, None
            self._evict_oldest()
        cookie = secrets.token_hex(16)
        self._sessions[cookie] = _Session(self._clock())
        return LoginOutcome.OK, cookie

    def _fail(self) -> LoginOutcome:
        self._failures += 1
        if self._failures >= self._rules.lockout_threshold:
            self._locked_until = self._clock() + self._rules.lockout_seconds
            return LoginOutcome.LOCKED
        return LoginOutcome.INVALID

    def _evict_oldest(self) -> None:
        while len(self._sessions) >= self._rules.limit and self._sessions:
            oldest = min(self._sessions, key=lambda c: self._sessions[c].last_used)
            del self._sessions[oldest]

    def touch(self, cookie: str | None) -> bool:
        """Tell whether ``cookie`` is live, and restart its idle timer if so."""
        if not cookie:
            return False
        self._expire()
        session = self._sessions.get(cookie)
        if session is None or session.foreign:
            return False
        session.last_used = self._clock()
        return True

    def release(self, cookie: str | None) -> bool:
        """Drop ``cookie``; tell whether it was live."""
        if cookie is None or not self.touch(cookie):
            return False
        del self._sessions[cookie]
        return True

    def drop_all(self) -> None:
        """Forget every cookie, as a Commander restart would."""
        self._sessions.clear()

    def fill_foreign(self) -> None:
        """Let other clients take every free slot and keep them."""
        self.pinned = True
        self._expire()
        now = self._clock()
        while len(self._sessions) < self._rules.limit:
            self._sessions[secrets.token_hex(16)] = _Session(now, foreign=True)

    def drop_foreign(self) -> None:
        """Let the other clients log out."""
        self.pinned = False
        for cookie in [c for c, s in self._sessions.items() if s.foreign]:
            del self._sessions[cookie]

    def _expire(self) -> None:
        cutoff = self._clock() - self._rules.idle_ttl
        stale = [
            cookie
            for cookie, session in self._sessions.items()
            if session.last_used <= cutoff and not (session.foreign and self.pinned)
        ]
        for cookie in stale:
            del self._sessions[cookie]
