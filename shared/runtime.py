"""Process plumbing shared by the long-running commands."""

from __future__ import annotations

import logging
import signal
import threading

log = logging.getLogger(__name__)


def stop_on_signals(stop: threading.Event) -> None:
    """Set ``stop`` on SIGINT or SIGTERM (call from the main thread)."""

    def handler(signum: int, _frame: object) -> None:
        log.info("stopping on %s", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
