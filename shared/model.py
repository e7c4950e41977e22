"""The status model both sides agree on.

An agent turns each poll of a Commander into one ``StoreStatus`` and each
poll cycle into one ``CycleSummary``; it announces itself with an
``AgentState``. These values are what the msgpack codec carries over MQTT
(or hands over in memory in embedded mode), so they hold plain data only:
no clients, no sockets, no secrets.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

SCHEMA_VERSION = 1


class ErrorType(StrEnum):
    """Why a poll of one Commander failed; the ``error_type`` metric label."""

    AUTH = "auth"
    LOCKOUT = "lockout"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    TLS = "tls"
    HTTP = "http"
    FAULT = "fault"
    PARSE = "parse"


@dataclass(frozen=True, slots=True)
class Device:
    """One device's health: ``online`` is what alerts and metrics use.

    ``status`` keeps the Commander's own words (``Online``, ``Offline``...)
    for people reading a report.
    """

    id: str
    online: bool
    status: str = ""


@dataclass(frozen=True, slots=True)
class Fep:
    """A payment front-end processor link; ``connected`` is None when unknown."""

    name: str
    connected: bool | None
    status: str = ""


@dataclass(frozen=True, slots=True)
class StoreStatus:
    """What one poll of one Commander found.

    ``error_type`` is None when every required endpoint answered; then the
    device fields describe the store. On failure they hold whatever was
    read before the failure (often nothing) and ``error`` says what went
    wrong in a short, secret-free sentence.
    """

    store: str
    ip: str
    group: str
    brand: str
    poll_time: float
    cycle: int = 0
    error_type: ErrorType | None = None
    error: str = ""
    durations: Mapping[str, float] = field(default_factory=dict)
    controller: Device | None = None
    pumps: tuple[Device, ...] = ()
    dcrs: tuple[Device, ...] = ()
    price_displays: tuple[Device, ...] = ()
    tank_sensor: Device | None = None
    primary_fep: Fep | None = None
    loyalty_fep: Fep | None = None
    feps: tuple[Fep, ...] = ()
    pinpads: tuple[Device, ...] = ()
    registers: tuple[Device, ...] = ()
    password_days: int | None = None

    @property
    def ok(self) -> bool:
        return self.error_type is None


@dataclass(frozen=True, slots=True)
class CycleSummary:
    """One poll cycle of one agent, start to finish."""

    cycle: int
    started: float
    duration: float
    stores: int
    ok: int
    failed: int
    disabled: int = 0
    errors: Mapping[str, int] = field(default_factory=dict)
    workers: int = 0
    peak_concurrency: int = 0
    deadline_missed: int = 0


@dataclass(frozen=True, slots=True)
class AgentState:
    """An agent's birth message, or (``online=False``) its last will."""

    online: bool
    version: str = ""
    interval_seconds: float = 0.0
    store_count: int = 0
    started: float = 0.0


_SLUG_DROP = re.compile(r"[^a-z0-9_-]+")


def slugify(text: str) -> str:
    """Return the MQTT-safe slug of a store or agent name (``[a-z0-9_-]``).

    Runs of other characters become one hyphen; an empty result is an
    error, since a slug names a topic level.
    """
    slug = _SLUG_DROP.sub("-", text.strip().lower()).strip("-")
    if not slug:
        raise ValueError(f"{text!r} has no letters or digits to make a slug from")
    return slug
