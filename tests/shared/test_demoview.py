"""The demo's screen, drawn from a real FleetState."""

from __future__ import annotations

from aggregator.state import FleetState
from shared.demoview import Progress, bar, render
from shared.model import ErrorType, slugify
from tests.aggregator.helpers import Clock, envelope, status


def _state(*statuses) -> FleetState:
    state = FleetState(clock=Clock())
    for seq, body in enumerate(statuses, start=1):
        state.apply(envelope(body, seq=seq), "edge-1", slugify(body.store))
    return state


def test_first_cycle_shows_a_progress_bar_until_the_summary_arrives():
    state = _state(status("Store 1"))
    screen = render(state.snapshot(), title="T", progress=Progress(1, 1, 4))
    assert "first cycle" in screen
    assert bar(1, 4) in screen and "1/4 stores" in screen


def test_device_classes_and_stores_needing_attention_are_listed():
    state = _state(
        status("Store 1", pumps=3),
        status("Store 2", error=ErrorType.CONNECTION),
    )
    screen = render(state.snapshot(), title="T", progress=None)
    assert "pumps               2 / 3" in screen
    assert "stores needing attention: 2" in screen
    assert "Store 2" in screen and "connection: connection while polling" in screen
    assert "pumps down: 1" in screen


def test_bar_is_full_empty_and_safe_with_no_total():
    assert bar(0, 10, 10) == "[----------]"
    assert bar(10, 10, 10) == "[##########]"
    assert bar(3, 0, 4) == "[----]"
