"""Logging for the command line; library modules only ever get loggers."""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Libraries that log request URLs (which carry Commander cookies) at DEBUG.
_QUIET = ("urllib3", "requests")


def configure(level: str = "INFO") -> None:
    """Send log lines to stderr at ``level``; keep chatty libraries quiet."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
