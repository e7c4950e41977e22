"""FleetState: what is applied, what is refused, and what is counted once."""

from __future__ import annotations

from aggregator.state import FleetState
from shared.model import AgentState, ErrorType
from tests.aggregator.helpers import T0, Clock, birth, envelope, status, summary


def _fleet(clock: Clock | None = None, **kw) -> FleetState:
    return FleetState(clock=clock or Clock(), default_interval=300.0, **kw)


def _store(fleet: FleetState, slug: str = "store-1", agent: str = "edge-1"):
    snap = fleet.snapshot()
    return next(s for s in snap.stores if (s.agent, s.slug) == (agent, slug))


def _agent(fleet: FleetState, agent: str = "edge-1"):
    return next(a for a in fleet.snapshot().agents if a.agent == agent)


def test_status_is_applied_under_agent_and_store_slug():
    fleet = _fleet()
    assert fleet.apply(envelope(status()), "edge-1", "store-1") == "applied"
    store = _store(fleet)
    assert store.status.store == "Store 1"
    assert store.status.pumps[1].online is False
    assert fleet.snapshot().messages["applied"] == 1


def test_same_store_name_under_two_agents_is_two_stores():
    fleet = _fleet()
    fleet.apply(envelope(status(), agent="edge-1"), "edge-1", "store-1")
    fleet.apply(envelope(status(), agent="edge-2"), "edge-2", "store-1")
    assert len(fleet.snapshot().stores) == 2


def test_redelivered_failure_is_counted_once():
    fleet = _fleet()
    failed = envelope(status(error=ErrorType.TIMEOUT), seq=5)
    assert fleet.apply(failed, "edge-1", "store-1") == "applied"
    assert fleet.apply(failed, "edge-1", "store-1") == "duplicate"
    assert fleet.apply(failed, "edge-1", "store-1", retained=True) == "duplicate"
    store = _store(fleet)
    assert store.failures == {"timeout": 1}
    assert store.timeout_errors == 1
    assert store.consecutive_failures == 1
    assert fleet.snapshot().messages["duplicate"] == 2


def test_duplicate_outside_the_seq_window_is_still_refused_per_store():
    fleet = _fleet()
    fleet.apply(envelope(status(error=ErrorType.AUTH), seq=1), "edge-1", "store-1")
    for seq in range(2, 20_000):  # push seq 1 out of the agent's window
        fleet.apply(envelope(status("Other", cycle=seq), seq=seq), "edge-1", "other")
    again = envelope(status(error=ErrorType.AUTH), seq=1)
    assert fleet.apply(again, "edge-1", "store-1") == "duplicate"
    assert _store(fleet).auth_failures == 1


def test_older_status_never_overwrites_newer():
    fleet = _fleet()
    newer = envelope(status(cycle=2, poll_time=T0 + 60), seq=10)
    older = envelope(status(cycle=1, error=ErrorType.TIMEOUT), seq=4)
    fleet.apply(newer, "edge-1", "store-1")
    assert fleet.apply(older, "edge-1", "store-1") == "duplicate"
    store = _store(fleet)
    assert store.status.cycle == 2
    assert store.failures == {}


def test_status_from_a_previous_boot_does_not_overwrite_a_newer_poll():
    fleet = _fleet()
    fleet.apply(
        envelope(status(poll_time=T0 + 600), boot=2, seq=1), "edge-1", "store-1"
    )
    late = envelope(status(poll_time=T0, error=ErrorType.AUTH), boot=1, seq=99)
    assert fleet.apply(late, "edge-1", "store-1") == "duplicate"
    assert _store(fleet).status.ok


def test_consecutive_failures_reset_on_success_and_last_success_kept():
    fleet = _fleet()
    fleet.apply(envelope(status(poll_time=T0), seq=1), "edge-1", "store-1")
    for seq in (2, 3):
        bad = status(cycle=seq, poll_time=T0 + seq, error=ErrorType.CONNECTION)
        fleet.apply(envelope(bad, seq=seq), "edge-1", "store-1")
    store = _store(fleet)
    assert store.consecutive_failures == 2
    assert store.last_success == T0
    assert store.connection_errors == 2
    fleet.apply(envelope(status(cycle=4, poll_time=T0 + 4), seq=4), "edge-1", "store-1")
    store = _store(fleet)
    assert store.consecutive_failures == 0
    assert store.last_success == T0 + 4
    assert store.failures == {"connection": 2}


def test_query_durations_fill_histogram_buckets():
    fleet = _fleet()
    fleet.apply(envelope(status(durations={"diagnostics": 0.2})), "edge-1", "store-1")
    later = status(cycle=2, poll_time=T0 + 1, durations={"diagnostics": 3.0})
    fleet.apply(envelope(later, seq=2), "edge-1", "store-1")
    histo = _store(fleet).durations["diagnostics"]
    assert histo.count == 2
    assert histo.total == 3.2


def test_mismatched_agent_or_store_is_not_applied():
    fleet = _fleet()
    assert fleet.apply(envelope(status(), agent="edge-2"), "edge-1", "store-1") == (
        "mismatch"
    )
    assert fleet.apply(envelope(status()), "edge-1", "store-9") == "mismatch"
    assert fleet.apply(envelope(status()), "edge-1", None) == "mismatch"
    assert fleet.apply(envelope(birth()), "edge-1", "store-1") == "mismatch"
    assert fleet.apply(envelope(birth()), "edge-1", topic_kind="cycle") == "mismatch"
    snap = fleet.snapshot()
    assert snap.stores == ()
    assert snap.messages["mismatch"] == 5


def test_store_goes_stale_after_three_agent_intervals():
    clock = Clock()
    fleet = _fleet(clock)
    fleet.apply(envelope(birth(interval=60.0), seq=1), "edge-1")
    fleet.apply(envelope(status(), seq=2), "edge-1", "store-1")
    clock.now += 180
    assert not fleet.snapshot().is_stale(_store(fleet))
    clock.now += 1
    assert fleet.snapshot().is_stale(_store(fleet))
    fresh = status(cycle=2, poll_time=clock.now)
    fleet.apply(envelope(fresh, seq=3), "edge-1", "store-1")
    assert not fleet.snapshot().is_stale(_store(fleet))


def test_store_of_unknown_agent_uses_default_interval():
    clock = Clock()
    fleet = _fleet(clock)
    fleet.apply(envelope(status()), "edge-1", "store-1")
    clock.now += 899
    assert not fleet.snapshot().stale
    clock.now += 2
    assert fleet.snapshot().stale == {("edge-1", "store-1")}


def test_retained_status_age_counts_from_its_poll_time():
    clock = Clock(now=T0 + 10_000)
    fleet = _fleet(clock)
    fleet.apply(envelope(status(poll_time=T0)), "edge-1", "store-1", retained=True)
    assert _store(fleet).seen == T0
    assert fleet.snapshot().is_stale(_store(fleet))


def test_last_will_marks_agent_down_and_birth_up_again():
    fleet = _fleet()
    fleet.apply(envelope(birth(), seq=1), "edge-1")
    assert _agent(fleet).up
    fleet.apply(envelope(AgentState(online=False), seq=2), "edge-1")
    assert not _agent(fleet).up
    fleet.apply(envelope(birth(), boot=2, seq=1), "edge-1")
    assert _agent(fleet).up


def test_will_of_a_previous_run_does_not_mark_restarted_agent_down():
    fleet = _fleet()
    fleet.apply(envelope(birth(), boot=1, seq=1), "edge-1")
    fleet.apply(envelope(birth(), boot=2, seq=1), "edge-1")
    stale_will = envelope(AgentState(online=False), boot=1, seq=0)
    assert fleet.apply(stale_will, "edge-1") == "duplicate"
    assert _agent(fleet).up


def test_birth_interval_and_cycle_summary_are_kept():
    fleet = _fleet()
    fleet.apply(envelope(birth(interval=120.0), seq=1), "edge-1")
    fleet.apply(envelope(summary(1, peak_concurrency=7, disabled=3), seq=2), "edge-1")
    agent = _agent(fleet)
    assert agent.interval == 120.0
    assert agent.cycle.peak_concurrency == 7
    assert agent.cycle.disabled == 3
    assert agent.cycle_durations.count == 1
    again = envelope(summary(1), seq=2)
    assert fleet.apply(again, "edge-1") == "duplicate"
    assert _agent(fleet).cycle_durations.count == 1


def test_store_cap_refuses_new_stores_but_updates_known_ones():
    fleet = _fleet(max_stores=2)
    for seq, name in enumerate(("A", "B", "C"), start=1):
        fleet.apply(envelope(status(name), seq=seq), "edge-1", name.lower())
    snap = fleet.snapshot()
    assert {s.slug for s in snap.stores} == {"a", "b"}
    assert snap.stores_refused == 1
    assert snap.messages["rejected_cap"] == 1
    update = envelope(status("A", cycle=2, poll_time=T0 + 1), seq=4)
    assert fleet.apply(update, "edge-1", "a") == "applied"


def test_sequence_gaps_between_live_messages_are_counted():
    fleet = _fleet()
    for seq in (1, 2, 5, 6, 9):
        body = status(f"S{seq}")
        fleet.apply(envelope(body, seq=seq), "edge-1", f"s{seq}")
    assert _agent(fleet).reports_missed == 4


def test_retained_replay_is_not_a_gap():
    fleet = _fleet()
    for seq in (3, 40, 17):
        body = status(f"S{seq}")
        fleet.apply(envelope(body, seq=seq), "edge-1", f"s{seq}", retained=True)
    fleet.apply(envelope(status("S41"), seq=41), "edge-1", "s41")
    fleet.apply(envelope(status("S42"), seq=42), "edge-1", "s42")
    assert _agent(fleet).reports_missed == 0


def test_skipped_store_cycles_count_as_missed_reports():
    fleet = _fleet()
    for seq, cycle in ((1, 1), (2, 2), (3, 5)):
        body = status(cycle=cycle, poll_time=T0 + cycle)
        fleet.apply(envelope(body, seq=seq), "edge-1", "store-1")
    assert _store(fleet).missed_reports == 2


def test_completeness_is_received_over_expected_per_summarised_cycle():
    fleet = _fleet()
    seq = iter(range(1, 100))
    for name in ("A", "B"):
        fleet.apply(
            envelope(status(name, cycle=1), seq=next(seq)), "edge-1", name.lower()
        )
    assert _agent(fleet).completeness is None
    fleet.apply(envelope(summary(1, stores=2), seq=next(seq)), "edge-1")
    assert _agent(fleet).completeness == 1.0
    body = status("A", cycle=2, poll_time=T0 + 60)
    fleet.apply(envelope(body, seq=next(seq)), "edge-1", "a")
    fleet.apply(envelope(summary(2, stores=2), seq=next(seq)), "edge-1")
    agent = _agent(fleet)
    assert (agent.reports_received, agent.reports_expected) == (3, 4)
    assert agent.completeness == 0.75


def test_remove_store_forgets_it():
    fleet = _fleet()
    fleet.apply(envelope(status()), "edge-1", "store-1")
    assert fleet.remove_store("edge-1", "store-1")
    assert not fleet.remove_store("edge-1", "store-1")
    snap = fleet.snapshot()
    assert snap.stores == ()
    assert snap.messages["removed"] == 1


def test_decode_error_reasons_are_bounded():
    fleet = _fleet()
    for i in range(40):
        fleet.record_decode_error(f"reason-{i}")
    snap = fleet.snapshot()
    assert len(snap.decode_errors) == 33
    assert snap.decode_errors["other"] == 8
    assert snap.messages["decode_error"] == 40
