"""Builders shared by the aggregator tests: statuses, envelopes, a clock."""

from __future__ import annotations

from dataclasses import dataclass

from shared.codec import Envelope, decode, encode
from shared.model import AgentState, CycleSummary, Device, ErrorType, Fep, StoreStatus

T0 = 1_700_000_000.0


@dataclass
class Clock:
    """A clock the test moves by hand."""

    now: float = T0

    def __call__(self) -> float:
        return self.now


def status(
    store: str = "Store 1",
    *,
    cycle: int = 1,
    poll_time: float = T0,
    error: ErrorType | None = None,
    pumps: int = 2,
    loyalty: bool | None = True,
    durations: dict[str, float] | None = None,
) -> StoreStatus:
    """Return a full status of one store, or a failed one when ``error`` is set."""
    if error is not None:
        return StoreStatus(
            store=store, ip="10.0.0.1", group="North", brand="Shell",
            poll_time=poll_time, cycle=cycle, error_type=error,
            error=f"{error.value} while polling",
            durations=durations or {},
        )  # fmt: skip
    return StoreStatus(
        store=store,
        ip="10.0.0.1",
        group="North",
        brand="Shell",
        poll_time=poll_time,
        cycle=cycle,
        durations={"diagnostics": 0.2, "payment": 0.03}
        if durations is None
        else durations,
        controller=Device("controller", True, "Online"),
        pumps=tuple(Device(str(i), i != 2) for i in range(1, pumps + 1)),
        dcrs=tuple(Device(str(i), i != 1) for i in range(1, pumps + 1)),
        price_displays=(Device("PD1", True), Device("PD2", False)),
        tank_sensor=Device("tank", True),
        primary_fep=Fep("buypass", True),
        loyalty_fep=None if loyalty is None else Fep("rewards 2 go", loyalty),
        pinpads=(Device("101", True), Device("102", False)),
        registers=(Device("1", True),),
        password_days=12,
    )


def envelope(body, *, agent: str = "edge-1", boot: int = 1, seq: int = 1) -> Envelope:
    """Return ``body`` as the aggregator receives it: encoded, then decoded."""
    return decode(encode(body, agent=agent, boot=boot, seq=seq, sent=T0))


def birth(interval: float = 60.0, stores: int = 2) -> AgentState:
    return AgentState(True, "1.0.0", interval, stores, T0)


def summary(cycle: int, stores: int = 2, **kw) -> CycleSummary:
    fields = dict(started=T0, duration=42.0, stores=stores, ok=stores, failed=0)
    fields.update(kw)
    return CycleSummary(cycle=cycle, **fields)
