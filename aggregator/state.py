"""The fleet as the aggregator knows it: pure, thread-safe, clock injected.

Every decoded envelope goes through ``FleetState.apply``; the collector reads
``FleetState.snapshot()``. Design decisions:

- A store is keyed by (agent slug, store slug): IP addresses repeat across
  isolated networks. The topic's agent is authoritative (the broker's ACL
  enforces it), so an envelope claiming another agent, or a status whose
  store differs from its topic's store, is a mismatch and is not applied.
- QoS 1 may deliver a message twice and every (re)subscription replays the
  retained ones, so each agent keeps a bounded window of the sequence
  numbers seen in its current boot, and each store keeps the (boot, seq,
  poll_time) of the status it shows. A message already seen, or older than
  what a store shows, is a duplicate: nothing is applied and no counter
  moves, so a redelivered failure is never counted twice.
- ``boot`` grows with each agent restart. A message from an older boot never
  overrides newer state; in particular a last will left behind by a
  previous run cannot mark a restarted agent offline.
- Per store the state holds immutable ``StoreView`` values replaced on each
  update (copy on write), so a snapshot is a cheap copy of references taken
  under the lock and read outside it.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shared.model import AgentState, CycleSummary, ErrorType, StoreStatus, slugify

if TYPE_CHECKING:
    from shared.codec import Envelope

log = logging.getLogger(__name__)

APPLIED = "applied"
DUPLICATE = "duplicate"
MISMATCH = "mismatch"
REJECTED_CAP = "rejected_cap"
DECODE_ERROR = "decode_error"
REMOVED = "removed"
RESULTS = (APPLIED, DUPLICATE, MISMATCH, DECODE_ERROR, REJECTED_CAP, REMOVED)

# prometheus_client's default buckets, as the first version used for queries.
QUERY_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip
# Poll cycles last seconds to minutes; the default buckets would put them all in +Inf.
CYCLE_BUCKETS: tuple[float, ...] = (
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 180.0, 240.0, 300.0, 450.0, 600.0, 900.0,
)  # fmt: skip

SEQ_WINDOW = 16_384  # recent seqs remembered per agent; >= stores per agent
MAX_PENDING_CYCLES = 16  # cycles awaiting their summary, per agent
MAX_DECODE_REASONS = 32  # distinct reason labels; more fold into "other"


@dataclass(frozen=True, slots=True)
class Histo:
    """Histogram data: per-bucket counts (last one is +Inf) and the sum."""

    counts: tuple[int, ...]
    total: float = 0.0

    @classmethod
    def empty(cls, bounds: tuple[float, ...]) -> Histo:
        """Return a histogram with no observations over ``bounds``."""
        return cls((0,) * (len(bounds) + 1))

    def observe(self, value: float, bounds: tuple[float, ...]) -> Histo:
        """Return a copy with one more observation of ``value``."""
        counts = list(self.counts)
        counts[bisect.bisect_left(bounds, value)] += 1
        return Histo(tuple(counts), self.total + value)

    @property
    def count(self) -> int:
        return sum(self.counts)


@dataclass(frozen=True, slots=True)
class StoreView:
    """What the aggregator knows of one store: its latest status and its history."""

    agent: str
    slug: str
    status: StoreStatus
    seen: float  # when this status is considered reported (aggregator clock)
    boot: int
    seq: int
    consecutive_failures: int = 0
    last_success: float | None = None
    failures: Mapping[str, int] = field(default_factory=dict)
    auth_failures: int = 0
    timeout_errors: int = 0
    connection_errors: int = 0
    durations: Mapping[str, Histo] = field(default_factory=dict)
    missed_reports: int = 0


@dataclass(frozen=True, slots=True)
class AgentView:
    """One agent as of a snapshot; ``up`` and ``interval`` are already resolved."""

    agent: str
    up: bool
    interval: float
    state: AgentState | None
    last_report: float | None
    cycle: CycleSummary | None
    cycle_durations: Histo
    reports_missed: int
    reports_received: int
    reports_expected: int

    @property
    def completeness(self) -> float | None:
        """Return received / expected reports, or None before the first summary."""
        if not self.reports_expected:
            return None
        return min(1.0, self.reports_received / self.reports_expected)


@dataclass(frozen=True, slots=True)
class FleetSnapshot:
    """An immutable copy of the fleet for one scrape."""

    now: float
    stores: tuple[StoreView, ...]
    stale: frozenset[tuple[str, str]]
    agents: tuple[AgentView, ...]
    messages: Mapping[str, int]
    decode_errors: Mapping[str, int]
    stores_refused: int

    def is_stale(self, store: StoreView) -> bool:
        """Return True if ``store`` has not reported within its staleness window."""
        return (store.agent, store.slug) in self.stale


_NO_HISTORY = StoreView(
    "", "", StoreStatus(store="", ip="", group="", brand="", poll_time=0.0), 0.0, 0, 0
)


class _AgentTrack:
    """Mutable per-agent bookkeeping; only touched under FleetState's lock."""

    def __init__(self, agent: str) -> None:
        self.agent = agent
        self.boot: int | None = None
        self.state: AgentState | None = None
        self.state_key: tuple[int, int] | None = None
        self.last_report: float | None = None
        self.cycle: CycleSummary | None = None
        self.cycle_durations = Histo.empty(CYCLE_BUCKETS)
        self.reports_missed = 0
        self._recent: set[int] = set()
        self._order: deque[int] = deque()
        self._last_live: int | None = None
        self._pending: dict[int, int] = {}
        self._summarised: tuple[int, int] | None = None  # first, last cycle
        self.received = 0
        self.expected = 0

    def relation(self, boot: int) -> int:
        """Return -1, 0 or 1 as ``boot`` is older than, equal to or newer than ours."""
        if self.boot is None or boot > self.boot:
            return 1
        return 0 if boot == self.boot else -1

    def start_boot(self, boot: int) -> None:
        """Forget the window and completeness of the previous boot."""
        self.boot = boot
        self._recent.clear()
        self._order.clear()
        self._last_live = None
        self._pending.clear()
        self._summarised = None
        self.received = self.expected = 0

    def seen(self, seq: int) -> bool:
        return seq in self._recent

    def remember(self, seq: int, *, retained: bool) -> None:
        """Record ``seq`` (current boot); count a gap between live messages."""
        self._recent.add(seq)
        self._order.append(seq)
        if len(self._order) > SEQ_WINDOW:
            self._recent.discard(self._order.popleft())
        if retained:
            return
        if self._last_live is not None and seq > self._last_live + 1:
            self.reports_missed += seq - self._last_live - 1
        if self._last_live is None or seq > self._last_live:
            self._last_live = seq

    def status_received(self, cycle: int) -> None:
        """Count one status report towards completeness."""
        done = self._summarised
        if done is not None and done[0] <= cycle <= done[1]:
            self.received += 1  # arrived after its cycle's summary
            return
        self._pending[cycle] = self._pending.get(cycle, 0) + 1
        if len(self._pending) > MAX_PENDING_CYCLES:  # summaries are not arriving
            del self._pending[min(self._pending)]

    def cycle_done(self, summary: CycleSummary) -> None:
        """Close one cycle: its reports were expected and these arrived."""
        self.received += self._pending.pop(summary.cycle, 0)
        self.expected += summary.stores
        first = summary.cycle if self._summarised is None else self._summarised[0]
        self._summarised = (first, summary.cycle)
        for old in [c for c in self._pending if c < summary.cycle]:
            del self._pending[old]

    def last_summary_cycle(self) -> int | None:
        return None if self._summarised is None else self._summarised[1]


class FleetState:
    """The latest state of every store and agent, fed by decoded envelopes.

    Completeness per agent: within the agent's current boot, the status
    reports received for the cycles whose summary arrived, divided by the
    stores those summaries say were polled (sum of ``CycleSummary.stores``).
    Gaps: ``reports_missed`` counts sequence numbers skipped between live
    messages of one boot; per store, a jump in ``StoreStatus.cycle`` counts
    the skipped cycles as missed reports.
    """

    def __init__(
        self,
        *,
        stale_after_intervals: float = 3.0,
        default_interval: float = 300.0,
        max_stores: int = 50_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._stale_after = stale_after_intervals
        self._default_interval = default_interval
        self._max_stores = max_stores
        self._clock = clock
        self._lock = threading.Lock()
        self._stores: dict[tuple[str, str], StoreView] = {}
        self._agents: dict[str, _AgentTrack] = {}
        self._messages: dict[str, int] = dict.fromkeys(RESULTS, 0)
        self._decode_errors: dict[str, int] = {}
        self._refused = 0
        self._cap_warned = False

    def apply(
        self,
        env: Envelope,
        topic_agent: str,
        topic_store: str | None = None,
        *,
        topic_kind: str | None = None,
        retained: bool = False,
    ) -> str:
        """Apply one envelope received on a topic of ``topic_agent``; return the result.

        The result is ``applied``, ``duplicate`` (seen before, or older than
        the state it would replace), ``mismatch`` (the envelope disagrees with
        its topic) or ``rejected_cap`` (a new store beyond ``max_stores``).
        ``retained`` marks a retained replay, which never counts as a gap.
        """
        with self._lock:
            result = self._apply(env, topic_agent, topic_store, topic_kind, retained)
            self._messages[result] += 1
        return result

    def remove_store(self, agent: str, store_slug: str) -> bool:
        """Forget a store whose retained status was cleared; False if unknown."""
        with self._lock:
            removed = self._stores.pop((agent, store_slug), None) is not None
            self._messages[REMOVED if removed else DUPLICATE] += 1
        if removed:
            log.info("store removed agent=%s store=%s", agent, store_slug)
        return removed

    def record_decode_error(self, reason: str) -> None:
        """Count one payload that could not be decoded, by short reason."""
        with self._lock:
            if (
                reason not in self._decode_errors
                and len(self._decode_errors) >= MAX_DECODE_REASONS
            ):
                reason = "other"
            self._decode_errors[reason] = self._decode_errors.get(reason, 0) + 1
            self._messages[DECODE_ERROR] += 1

    def snapshot(self) -> FleetSnapshot:
        """Return an immutable copy of the fleet, with staleness resolved now."""
        with self._lock:
            now = self._clock()
            stores = tuple(self._stores.values())
            tracks = [self._agent_parts(t) for t in self._agents.values()]
            messages = dict(self._messages)
            decode_errors = dict(self._decode_errors)
            refused = self._refused
        windows = {t[0].agent: self._stale_after * t[1] for t in tracks}
        stale = frozenset(
            (s.agent, s.slug)
            for s in stores
            if now - s.seen > windows.get(s.agent, self._window_default())
        )
        agents = tuple(self._agent_view(t, now, windows) for t in tracks)
        return FleetSnapshot(
            now, stores, stale, agents, messages, decode_errors, refused
        )

    # -- applying, under the lock -------------------------------------------

    def _apply(
        self,
        env: Envelope,
        topic_agent: str,
        topic_store: str | None,
        topic_kind: str | None,
        retained: bool,
    ) -> str:
        if env.agent != topic_agent or (topic_kind and topic_kind != env.kind):
            return MISMATCH
        body = env.body
        if isinstance(body, StoreStatus):
            return self._apply_status(env, body, topic_store, retained)
        if topic_store is not None:
            return MISMATCH
        track = self._track(env.agent)
        if isinstance(body, CycleSummary):
            return self._apply_cycle(track, env, body, retained)
        if isinstance(body, AgentState):
            return self._apply_agent_state(track, env, body, retained)
        return MISMATCH

    def _track(self, agent: str) -> _AgentTrack:
        track = self._agents.get(agent)
        if track is None:
            track = self._agents[agent] = _AgentTrack(agent)
        return track

    def _enter(self, track: _AgentTrack, env: Envelope) -> int:
        """Return the boot relation of ``env``; -2 if it is a duplicate seq."""
        relation = track.relation(env.boot)
        if relation > 0:
            track.start_boot(env.boot)
            return 0
        if relation == 0 and track.seen(env.seq):
            return -2
        return relation

    def _apply_status(
        self,
        env: Envelope,
        status: StoreStatus,
        topic_store: str | None,
        retained: bool,
    ) -> str:
        slug = _slug_or_none(status.store)
        if topic_store is None or slug != topic_store:
            return MISMATCH
        key = (env.agent, slug)
        current = self._stores.get(key)
        if current is None and len(self._stores) >= self._max_stores:
            return self._refuse(key)
        track = self._track(env.agent)
        relation = self._enter(track, env)
        if relation == -2 or (current is not None and not _newer(current, env)):
            return DUPLICATE
        now = self._clock()
        seen = min(now, status.poll_time) if retained else now
        self._stores[key] = _next_view(current, env, status, slug, seen)
        if relation == 0:
            track.remember(env.seq, retained=retained)
            if status.cycle:
                track.status_received(status.cycle)
        track.last_report = max(track.last_report or 0.0, seen)
        return APPLIED

    def _refuse(self, key: tuple[str, str]) -> str:
        self._refused += 1
        if not self._cap_warned:
            self._cap_warned = True
            log.warning(
                "store cap reached, refusing new stores "
                "max_stores=%d agent=%s store=%s",
                self._max_stores,
                *key,
            )
        return REJECTED_CAP

    def _apply_cycle(
        self, track: _AgentTrack, env: Envelope, summary: CycleSummary, retained: bool
    ) -> str:
        relation = self._enter(track, env)
        last = track.last_summary_cycle()
        if relation < 0 or (last is not None and summary.cycle <= last):
            return DUPLICATE
        track.remember(env.seq, retained=retained)
        track.cycle = summary
        track.cycle_durations = track.cycle_durations.observe(
            summary.duration, CYCLE_BUCKETS
        )
        track.cycle_done(summary)
        track.last_report = max(track.last_report or 0.0, self._clock())
        return APPLIED

    def _apply_agent_state(
        self, track: _AgentTrack, env: Envelope, state: AgentState, retained: bool
    ) -> str:
        relation = self._enter(track, env)
        if relation < 0 or track.state_key == (env.boot, env.seq):
            return DUPLICATE
        track.remember(env.seq, retained=retained)
        previous = track.state
        track.state, track.state_key = state, (env.boot, env.seq)
        if state.online:
            track.last_report = max(track.last_report or 0.0, self._clock())
        if previous is None or previous.online != state.online:
            _log_agent_state(track.agent, state)
        return APPLIED

    # -- snapshot helpers -----------------------------------------------------

    def _window_default(self) -> float:
        return self._stale_after * self._default_interval

    def _agent_parts(self, track: _AgentTrack) -> tuple[_AgentTrack, float, tuple]:
        state = track.state
        interval = (
            state.interval_seconds
            if state is not None and state.interval_seconds > 0
            else self._default_interval
        )
        copied = (
            track.state,
            track.last_report,
            track.cycle,
            track.cycle_durations,
            track.reports_missed,
            track.received,
            track.expected,
        )
        return track, interval, copied

    def _agent_view(
        self,
        parts: tuple[_AgentTrack, float, tuple],
        now: float,
        windows: Mapping[str, float],
    ) -> AgentView:
        track, interval, (state, last, cycle, histo, missed, got, want) = parts
        if state is not None:
            up = state.online
        else:
            up = last is not None and now - last <= windows[track.agent]
        return AgentView(
            track.agent, up, interval, state, last, cycle, histo, missed, got, want
        )


def _slug_or_none(name: str) -> str | None:
    try:
        return slugify(name)
    except ValueError:
        return None


def _newer(current: StoreView, env: Envelope) -> bool:
    """Return True if ``env`` (a status) is newer than what ``current`` shows."""
    assert isinstance(env.body, StoreStatus)  # the caller routes statuses only
    poll_time = env.body.poll_time
    if env.boot == current.boot:
        return env.seq > current.seq and poll_time >= current.status.poll_time
    return poll_time > current.status.poll_time


def _next_view(
    current: StoreView | None,
    env: Envelope,
    status: StoreStatus,
    slug: str,
    seen: float,
) -> StoreView:
    """Return the store's next view: the new status on top of its history."""
    durations = _observe_durations(current, status)
    missed = _missed_cycles(current, env, status)
    error = status.error_type
    if error is None:
        history = current or _NO_HISTORY
        return StoreView(
            env.agent, slug, status, seen, env.boot, env.seq, 0, status.poll_time,
            history.failures, history.auth_failures, history.timeout_errors,
            history.connection_errors, durations, missed,
        )  # fmt: skip
    history = current or _NO_HISTORY
    failures = dict(history.failures)
    failures[error.value] = failures.get(error.value, 0) + 1
    return StoreView(
        env.agent, slug, status, seen, env.boot, env.seq,
        history.consecutive_failures + 1,
        history.last_success,
        failures,
        history.auth_failures + (error == ErrorType.AUTH),
        history.timeout_errors + (error == ErrorType.TIMEOUT),
        history.connection_errors + (error == ErrorType.CONNECTION),
        durations,
        missed,
    )  # fmt: skip


def _observe_durations(
    current: StoreView | None, status: StoreStatus
) -> Mapping[str, Histo]:
    previous = current.durations if current is not None else {}
    if not status.durations:
        return previous
    durations = dict(previous)
    for endpoint, seconds in status.durations.items():
        histo = durations.get(endpoint) or Histo.empty(QUERY_BUCKETS)
        durations[endpoint] = histo.observe(seconds, QUERY_BUCKETS)
    return durations


def _missed_cycles(
    current: StoreView | None, env: Envelope, status: StoreStatus
) -> int:
    if current is None:
        return 0
    missed = current.missed_reports
    last = current.status.cycle
    if env.boot == current.boot and last and status.cycle > last + 1:
        missed += status.cycle - last - 1
    return missed


def _log_agent_state(agent: str, state: AgentState) -> None:
    if state.online:
        log.info(
            "agent connected agent=%s stores=%d version=%s interval=%.0fs",
            agent,
            state.store_count,
            state.version,
            state.interval_seconds,
        )
    else:
        log.warning("agent offline agent=%s", agent)
