"""Process plumbing shared by the long-running commands."""

from __future__ import annotations

import logging
import resource
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


def raise_fd_limit(needed: int) -> None:
    """Allow ``needed`` open files, up to the hard limit; warn when short.

    An agent keeps one HTTPS connection per Commander and the simulator one
    listener per store, so 1,000 stores outgrow the usual 1,024 soft limit.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < needed:
        log.warning(
            "open-file limit %d is below the %d this fleet needs", target, needed
        )
    else:
        log.info("raised open-file limit from %d to %d", soft, target)
