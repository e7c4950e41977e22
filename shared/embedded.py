"""Embedded mode: agent and aggregator in one process, no MQTT.

The poller's reports go through the same codec as over MQTT (encode, then
decode, then apply), so both modes obey one contract; only the broker is
left out. This is the first version's single-host topology.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from agent.poller import Poller
from agent.service import warn_insecure
from aggregator.http import MetricsServer
from aggregator.service import EmbeddedFeed, build_embedded
from aggregator.state import FleetState
from shared import __version__
from shared.config import Config
from shared.model import AgentState, CycleSummary, StoreStatus
from shared.runtime import raise_fd_limit

log = logging.getLogger(__name__)


class EmbeddedSink:
    """A poller sink that feeds an in-process FleetState through the codec."""

    def __init__(self, feed: EmbeddedFeed, config: Config) -> None:
        self._feed = feed
        self._config = config
        self._started = time.time()
        self._store_count = 0
        self.last_cycle: CycleSummary | None = None
        self.reported = 0  # statuses in the current cycle, for progress views

    def announce(self, store_count: int) -> None:
        """Publish the agent's birth message (again when the store count changes)."""
        self._store_count = store_count
        self._feed.publish(
            AgentState(
                online=True,
                version=__version__,
                interval_seconds=self._config.interval_seconds,
                store_count=store_count,
                started=self._started,
            )
        )

    def set_store_count(self, store_count: int) -> None:
        if store_count != self._store_count:
            self.announce(store_count)

    def store_status(self, status: StoreStatus) -> None:
        self._feed.publish(status)
        self.reported += 1

    def cycle_done(self, summary: CycleSummary) -> None:
        self._feed.publish(summary)
        self.last_cycle = summary
        self.reported = 0

    def stores_removed(self, stores: Sequence[str]) -> None:
        for store in stores:
            self._feed.remove(store)


class Embedded:
    """The poller, the fleet state and /metrics, started and stopped together."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.state: FleetState
        self.server: MetricsServer
        self.state, self.server = build_embedded(config)
        self.sink = EmbeddedSink(EmbeddedFeed(self.state, config.agent.id), config)
        self.poller = Poller(config, self.sink, on_inventory=self.sink.set_store_count)
        self._thread: threading.Thread | None = None

    def start(self, stop: threading.Event, *, first_delay: float | None = None) -> None:
        """Load the inventory, serve /metrics and start polling in a thread."""
        warn_insecure(self.config)
        self.poller.load_inventory()
        raise_fd_limit(self.poller.store_count + 256)
        self.server.start()
        self.sink.announce(self.poller.store_count)
        self._thread = threading.Thread(
            target=self.poller.run,
            args=(stop,),
            kwargs={"first_delay": first_delay},
            name="poller",
            daemon=True,
        )
        self._thread.start()
        log.info(
            "embedded agent+aggregator started agent=%s stores=%d interval=%.0fs "
            "metrics=%s",
            self.config.agent.id,
            self.poller.store_count,
            self.config.interval_seconds,
            self.server.url,
        )

    def stop(self) -> None:
        """Finish the current cycle, release sessions and stop serving."""
        if self._thread is not None:
            self._thread.join(timeout=self.config.timeout_seconds + 5)
        self.poller.close()
        self.server.stop()
        log.info("embedded agent+aggregator stopped")


def run_embedded(config: Config, stop: threading.Event) -> None:
    """Run embedded mode until ``stop`` is set."""
    embedded = Embedded(config)
    embedded.start(stop)
    try:
        stop.wait()
    finally:
        embedded.stop()
