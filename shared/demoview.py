"""The demo's terminal view: fleet health drawn from a FleetSnapshot.

Pure: ``render`` turns a snapshot into text; the demo loop prints it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aggregator.state import FleetSnapshot, StoreView
from shared.model import Device, Fep, StoreStatus

BAR_WIDTH = 30
MAX_ATTENTION_ROWS = 12


@dataclass(frozen=True, slots=True)
class Progress:
    """How far the current cycle is, for the first-cycle progress bar."""

    cycle: int
    reported: int
    stores: int


def bar(done: int, total: int, width: int = BAR_WIDTH) -> str:
    """Return a text bar ``[#####-----]`` filled ``done/total``."""
    filled = 0 if total <= 0 else round(width * min(done, total) / total)
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def _devices(status: StoreStatus) -> dict[str, list[bool]]:
    def online(items: Iterable[Device]) -> list[bool]:
        return [d.online for d in items]

    def linked(fep: Fep | None) -> list[bool]:
        return [] if fep is None else [fep.connected is True]

    return {
        "controllers": online([status.controller] if status.controller else []),
        "pumps": online(status.pumps),
        "DCRs": online(status.dcrs),
        "price displays": online(status.price_displays),
        "card processor": linked(status.primary_fep),
        "loyalty": linked(status.loyalty_fep),
        "registers": online(status.registers),
        "pin pads": online(status.pinpads),
    }


def _class_health(stores: Iterable[StoreView]) -> dict[str, tuple[int, int]]:
    totals: dict[str, list[int]] = {}
    for view in stores:
        if not view.status.ok:
            continue
        for name, states in _devices(view.status).items():
            up_total = totals.setdefault(name, [0, 0])
            up_total[0] += sum(states)
            up_total[1] += len(states)
    return {name: (up, total) for name, (up, total) in totals.items()}


def problems(status: StoreStatus) -> list[str]:
    """Return what is wrong at one store, in a few words each."""
    if not status.ok:
        return [f"{status.error_type}: {status.error}"]
    found = []
    for name, states in _devices(status).items():
        down = states.count(False)
        if down:
            found.append(f"{name} down: {down}")
    return found


def _attention(snapshot: FleetSnapshot) -> list[str]:
    rows = []
    for view in sorted(snapshot.stores, key=lambda v: v.status.store):
        stale = (view.agent, view.slug) in snapshot.stale
        issues = ["no report (stale)"] if stale else problems(view.status)
        if issues:
            s = view.status
            rows.append(
                f"  {s.store:<12} {s.group:<18} {s.brand:<12} {'; '.join(issues)}"
            )
    return rows


def render(
    snapshot: FleetSnapshot,
    *,
    title: str,
    progress: Progress | None,
    clock_text: Callable[[float], str] = lambda t: f"{t:.1f}s",
) -> str:
    """Return the whole screen for one refresh."""
    lines = [title, ""]
    agent = snapshot.agents[0] if snapshot.agents else None
    last = agent.cycle if agent else None
    if progress is not None and (last is None or progress.reported):
        label = "first cycle" if last is None else f"cycle {progress.cycle}"
        lines.append(
            f"{label:<14} {bar(progress.reported, progress.stores)} "
            f"{progress.reported}/{progress.stores} stores"
        )
    if last is not None:
        lines.append(
            f"last cycle     #{last.cycle} took {clock_text(last.duration)}: "
            f"{last.ok} ok, {last.failed} failed"
        )
    lines += ["", f"{'device class':<16}{'up / total':>12}"]
    for name, (up, total) in _class_health(snapshot.stores).items():
        if total:
            marker = "" if up == total else f"   {total - up} down"
            lines.append(f"{name:<16}{up:>5} / {total:<5} {bar(up, total, 20)}{marker}")
    attention = _attention(snapshot)
    lines += ["", f"stores needing attention: {len(attention)}"]
    lines += attention[:MAX_ATTENTION_ROWS]
    if len(attention) > MAX_ATTENTION_ROWS:
        lines.append(f"  ... and {len(attention) - MAX_ATTENTION_ROWS} more")
    return "\n".join(lines)
