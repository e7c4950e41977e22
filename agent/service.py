"""Run an edge agent: load config, wire the poller to a sink, stop cleanly."""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path

from agent.poller import Poller
from agent.sink import Sink
from agent.sinks import JsonLinesSink
from shared import __version__
from shared.config import Config, load_config
from shared.runtime import raise_fd_limit, stop_on_signals

log = logging.getLogger(__name__)


def warn_insecure(config: Config) -> None:
    """Log one warning naming every scope that skips certificate checks."""
    scopes = config.insecure_scopes()
    if scopes:
        log.warning(
            "TLS verification is OFF for %s (insecure: true); "
            "pin a fingerprint or CA bundle instead",
            ", ".join(scopes),
        )


def make_sink(config: Config, output: str | None) -> Sink:
    """Return the JSON-lines sink for ``--output -``, else the MQTT publisher."""
    if output == "-":
        return JsonLinesSink(sys.stdout)
    if output is not None:
        return JsonLinesSink(open(output, "a", encoding="utf-8"))
    from agent.publisher import MqttSink

    return MqttSink(
        config.mqtt,
        config.agent.id,
        interval_seconds=config.interval_seconds,
        version=__version__,
    )


def run_agent(
    config_path: Path, *, output: str | None = None, once: bool = False
) -> None:
    """Run the agent until SIGINT/SIGTERM (or one cycle with ``once``)."""
    config = load_config(config_path)
    warn_insecure(config)
    sink = make_sink(config, output)
    poller = Poller(config, sink, on_inventory=getattr(sink, "set_store_count", None))
    poller.load_inventory()
    raise_fd_limit(poller.store_count + 256)
    log.info(
        "agent starting agent=%s stores=%d interval=%.0fs workers=%d version=%s",
        config.agent.id,
        poller.store_count,
        config.interval_seconds,
        config.agent.workers,
        __version__,
    )
    start = getattr(sink, "start", None)
    if start is not None:
        start(poller.store_count)
    stop = threading.Event()
    try:
        if once:
            poller.run_cycle()
        else:
            stop_on_signals(stop)
            poller.run(stop)
    finally:
        poller.close()
        stop_sink = getattr(sink, "stop", None)
        if stop_sink is not None:
            stop_sink()
        log.info("agent stopped agent=%s", config.agent.id)
