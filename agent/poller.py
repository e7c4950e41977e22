"""The agent's poll loop: every interval, poll each store once, report.

Each cycle submits one poll per store to a bounded worker pool and waits
until every store has answered or the cycle deadline passes. A store's own
poll is bounded by ``timeout_seconds`` (see ``agent.client``); the deadline
is that timeout plus a grace period, counted from when the store's poll
started, so a stuck store is reported as a timeout and never holds the
cycle. A store whose previous poll is still stuck is reported as a timeout
without taking a worker.

Between cycles the loop re-reads ``commanders.csv`` and
``credentials.yaml`` when they change on disk; a broken edit is logged and
the previous inventory stays in force.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from enum import Enum

from agent.client import ClientSettings, CommanderClient
from agent.sink import Sink
from shared.config import (
    Commander,
    Config,
    CredentialSet,
    FileWatch,
    load_commanders,
    load_credentials,
)
from shared.errors import ConfigError
from shared.model import CycleSummary, ErrorType, StoreStatus, slugify

log = logging.getLogger(__name__)

DEADLINE_GRACE_SECONDS = 2.0


class StoreState(Enum):
    UNKNOWN = "unknown"
    UP = "up"
    DOWN = "down"


@dataclass
class _Inventory:
    commanders: dict[str, Commander] = field(default_factory=dict)  # by slug
    disabled: int = 0


class Poller:
    """Poll one agent's stores on a schedule and hand results to a sink."""

    def __init__(
        self,
        config: Config,
        sink: Sink,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        on_inventory: Callable[[int], None] | None = None,
    ) -> None:
        """``on_inventory`` hears the new store count after each (re)load."""
        self._config = config
        self._on_inventory = on_inventory
        self._sink = sink
        self._clock = clock
        self._wall_clock = wall_clock
        self._settings = ClientSettings.from_config(config)
        self._clients: dict[str, CommanderClient] = {}
        self._states: dict[str, StoreState] = {}
        self._password_warned: set[str] = set()
        self._inventory = _Inventory()
        self._watches = (
            FileWatch(config.agent.commanders_file),
            FileWatch(config.agent.credentials_file),
        )
        self._pool = ThreadPoolExecutor(
            max_workers=config.agent.workers, thread_name_prefix="poll"
        )
        self._active = 0
        self._peak = 0
        self._active_lock = threading.Lock()
        self.cycle = 0

    @property
    def store_count(self) -> int:
        return len(self._inventory.commanders)

    # -- inventory ------------------------------------------------------

    def load_inventory(self) -> None:
        """Read commanders.csv and credentials.yaml; raise ConfigError if bad."""
        credentials = load_credentials(self._config.agent.credentials_file)
        inventory = load_commanders(self._config.agent.commanders_file)
        for watch in self._watches:
            watch.changed()
        mine = inventory.for_agent(self._config.agent.id)
        self._apply_inventory(
            {c.slug: c for c in mine},
            credentials,
            disabled=inventory.counts().get(False, 0),
        )

    def reload_if_changed(self) -> None:
        """Re-read the inventory if a file changed; keep the old one if broken."""
        changed = [watch.changed() for watch in self._watches]  # ask every watch
        if not any(changed):
            return
        before = set(self._inventory.commanders)
        try:
            self.load_inventory()
        except ConfigError as exc:
            log.error("inventory change rejected, keeping the previous one: %s", exc)
            return
        after = set(self._inventory.commanders)
        log.info(
            "inventory reloaded stores=%d added=%d removed=%d",
            len(after),
            len(after - before),
            len(before - after),
        )

    def _apply_inventory(
        self,
        commanders: dict[str, Commander],
        credentials: CredentialSet,
        disabled: int,
    ) -> None:
        old = self._inventory.commanders
        removed = [c for slug, c in old.items() if slug not in commanders]
        for commander in removed:
            client = self._clients.pop(commander.slug, None)
            self._states.pop(commander.slug, None)
            if client is not None:
                self._pool.submit(client.release)
        for slug, commander in commanders.items():
            creds = credentials.for_commander(commander)
            tls = self._config.tls.for_commander(commander)
            client = self._clients.get(slug)
            if client is None:
                self._clients[slug] = CommanderClient(
                    commander, creds, tls, self._settings, clock=self._clock
                )
            else:
                client.update(commander, creds, tls)
        self._inventory = _Inventory(commanders, disabled)
        if removed:
            self._sink.stores_removed([c.store for c in removed])
        if self._on_inventory is not None:
            self._on_inventory(len(commanders))

    # -- running --------------------------------------------------------

    def run(self, stop: threading.Event, *, first_delay: float | None = None) -> None:
        """Run cycles every interval until ``stop`` is set.

        The first cycle waits a random start-time jitter (or ``first_delay``)
        so that agents restarted together do not poll in lockstep. Later
        cycles start on a fixed cadence; an overrunning cycle makes the next
        one start at once, and missed slots are skipped, not bunched.
        """
        jitter = self._config.agent.start_jitter_seconds
        delay = random.uniform(0, jitter) if first_delay is None else first_delay  # noqa: S311 - scheduling jitter, not security
        if stop.wait(delay):
            return
        interval = self._config.interval_seconds
        next_start = self._clock()
        while not stop.is_set():
            self.reload_if_changed()
            self.run_cycle()
            next_start += interval
            now = self._clock()
            if next_start < now:
                skipped = int((now - next_start) // interval) + 1
                log.warning("cycle overran the interval, skipping=%d slot(s)", skipped)
                next_start += skipped * interval
            stop.wait(max(0.0, next_start - now))

    def run_cycle(self) -> CycleSummary:
        """Poll every store once and return the cycle's summary."""
        self.cycle += 1
        started_wall = self._wall_clock()
        started = self._clock()
        self._peak = self._active = 0
        statuses, missed = self._poll_all(self._inventory.commanders.values())
        summary = self._summary(statuses, started_wall, self._clock() - started, missed)
        self._sink.cycle_done(summary)
        self._log_cycle(summary)
        return summary

    def close(self) -> None:
        """Release every Commander session and stop the workers."""
        releases = [self._pool.submit(c.release) for c in self._clients.values()]
        wait(releases, timeout=10)
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- one cycle ------------------------------------------------------

    def _poll_all(
        self, commanders: Iterable[Commander]
    ) -> tuple[list[StoreStatus], int]:
        starts: dict[Future, list[float]] = {}
        futures: dict[Future, Commander] = {}
        for commander in commanders:
            started: list[float] = []
            future = self._pool.submit(self._poll_one, commander, started)
            futures[future] = commander
            starts[future] = started
        statuses: list[StoreStatus] = []
        pending = set(futures)
        budget = self._settings.timeout + DEADLINE_GRACE_SECONDS
        while pending:
            done, pending = wait(pending, timeout=0.25, return_when="FIRST_COMPLETED")
            for future in done:
                statuses.append(self._report(future.result()))
            now = self._clock()
            stuck = {f for f in pending if starts[f] and now - starts[f][0] > budget}
            if stuck and stuck == pending:
                break
        missed = 0
        for future in pending:
            missed += 1
            status = self._timed_out(futures[future], "poll overran the cycle")
            statuses.append(self._report(status))
        return statuses, missed

    def _report(self, status: StoreStatus) -> StoreStatus:
        """Log a state change and hand the status on as soon as it is known."""
        self._track(status)
        self._sink.store_status(status)
        return status

    def _poll_one(self, commander: Commander, started: list[float]) -> StoreStatus:
        started.append(self._clock())
        client = self._clients.get(commander.slug)
        if client is None:  # removed from the inventory since submission
            return self._timed_out(commander, "store removed during the cycle")
        with self._active_lock:
            self._active += 1
            self._peak = max(self._peak, self._active)
        try:
            status = client.try_poll(self.cycle)
        finally:
            with self._active_lock:
                self._active -= 1
        if status is None:
            return self._timed_out(commander, "previous poll still running")
        return status

    def _timed_out(self, commander: Commander, why: str) -> StoreStatus:
        return StoreStatus(
            store=commander.store,
            ip=commander.ip,
            group=commander.group,
            brand=commander.brand,
            poll_time=self._wall_clock(),
            cycle=self.cycle,
            error_type=ErrorType.TIMEOUT,
            error=why,
        )

    def _summary(
        self,
        statuses: list[StoreStatus],
        started: float,
        duration: float,
        missed: int,
    ) -> CycleSummary:
        errors = Counter(str(s.error_type) for s in statuses if not s.ok)
        return CycleSummary(
            cycle=self.cycle,
            started=started,
            duration=duration,
            stores=len(statuses),
            ok=sum(1 for s in statuses if s.ok),
            failed=sum(errors.values()),
            disabled=self._inventory.disabled,
            errors=dict(errors),
            workers=self._config.agent.workers,
            peak_concurrency=self._peak,
            deadline_missed=missed,
        )

    # -- logging --------------------------------------------------------

    def _track(self, status: StoreStatus) -> None:
        """Log a store's state change, and an expiring password once."""
        key = slugify(status.store)
        new = StoreState.UP if status.ok else StoreState.DOWN
        old = self._states.get(key, StoreState.UNKNOWN)
        self._states[key] = new
        if new is StoreState.DOWN and old is not StoreState.DOWN:
            log.warning(
                "store down store=%s ip=%s error_type=%s error=%s",
                status.store,
                status.ip,
                status.error_type,
                status.error,
            )
        elif new is StoreState.UP and old is StoreState.DOWN:
            log.info("store back store=%s ip=%s", status.store, status.ip)
        self._warn_password(key, status)

    def _warn_password(self, key: str, status: StoreStatus) -> None:
        days = status.password_days
        expiring = days is not None and days <= self._config.agent.password_warning_days
        if not expiring:
            self._password_warned.discard(key)
        elif key not in self._password_warned:
            self._password_warned.add(key)
            log.warning(
                "monitoring password expires soon store=%s days_left=%d",
                status.store,
                days,
            )

    def _log_cycle(self, summary: CycleSummary) -> None:
        errors = " ".join(f"{k}={v}" for k, v in sorted(summary.errors.items()))
        log.info(
            "cycle done cycle=%d stores=%d ok=%d failed=%d duration=%.1fs%s",
            summary.cycle,
            summary.stores,
            summary.ok,
            summary.failed,
            summary.duration,
            f" {errors}" if errors else "",
        )
