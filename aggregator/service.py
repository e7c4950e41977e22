"""Wire the aggregator together: fleet state, MQTT consumer and HTTP server.

There is no periodic job: staleness is computed from the clock at scrape
time. Embedded mode (agent and aggregator in one process) reuses the same
state and HTTP server through ``build_embedded`` and hands statuses over in
memory with ``EmbeddedFeed`` (encode, decode, apply: the same path as MQTT).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from aggregator.collector import FleetCollector
from aggregator.consumer import MqttConsumer
from aggregator.http import Health, MetricsServer, metrics_renderer, runtime_registry
from aggregator.state import FleetState
from shared.codec import Body, decode, encode
from shared.config import Config
from shared.model import slugify

log = logging.getLogger(__name__)


def build_state(
    config: Config, *, clock: Callable[[], float] = time.time
) -> FleetState:
    """Return an empty FleetState configured from ``config``."""
    return FleetState(
        stale_after_intervals=config.aggregator.stale_after_intervals,
        default_interval=config.interval_seconds,
        max_stores=config.aggregator.max_stores,
        clock=clock,
    )


def build_server(config: Config, state: FleetState, health: Health) -> MetricsServer:
    """Return a (not yet started) metrics server over ``state``."""
    collector = FleetCollector(state.snapshot)
    render = metrics_renderer(collector.render, runtime_registry())
    settings = config.aggregator
    return MetricsServer(
        render, health, host=settings.listen_host, port=settings.listen_port
    )


def _embedded_health() -> tuple[bool, Mapping[str, Any]]:
    return True, {"mode": "embedded"}


def build_embedded(config: Config) -> tuple[FleetState, MetricsServer]:
    """Return the state and (not started) HTTP server for embedded mode."""
    state = build_state(config)
    return state, build_server(config, state, _embedded_health)


class EmbeddedFeed:
    """Hand reports to a FleetState in memory, through the real codec."""

    def __init__(
        self,
        state: FleetState,
        agent: str,
        *,
        boot: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._state = state
        self._agent = agent
        self._boot = boot if boot is not None else int(clock() * 1000)
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        self._clock = clock

    def publish(self, body: Body) -> str:
        """Encode, decode and apply one status, summary or agent state."""
        with self._lock:
            seq = next(self._seq)
        payload = encode(
            body, agent=self._agent, boot=self._boot, seq=seq, sent=self._clock()
        )
        env = decode(payload)
        store = getattr(body, "store", None)
        return self._state.apply(
            env,
            self._agent,
            slugify(store) if store is not None else None,
            topic_kind=env.kind,
        )

    def remove(self, store: str) -> bool:
        """Forget a store (by name) that left the inventory."""
        return self._state.remove_store(self._agent, slugify(store))


def run_aggregator(config: Config, stop: threading.Event) -> None:
    """Run the central aggregator until ``stop`` is set."""
    state = build_state(config)
    consumer = MqttConsumer(
        config.mqtt,
        state,
        aggregator_id=config.aggregator.id,
        agents=config.aggregator.agents,
    )
    server = build_server(config, state, consumer.health)
    server.start()
    consumer.start()
    log.info(
        "aggregator started id=%s broker=%s:%d metrics=%s",
        config.aggregator.id,
        config.mqtt.host,
        config.mqtt.port,
        server.url,
    )
    try:
        stop.wait()
    finally:
        consumer.stop()
        server.stop()
        log.info("aggregator stopped id=%s", config.aggregator.id)
