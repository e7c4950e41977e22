"""Where a poll cycle's results go: the seam between polling and transport.

The poller calls a ``Sink`` from its own thread; a sink must not block for
long (the MQTT sink queues, the in-memory sink appends).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from shared.model import CycleSummary, StoreStatus


class Sink(Protocol):
    def store_status(self, status: StoreStatus) -> None:
        """Take one store's status from the current cycle."""

    def cycle_done(self, summary: CycleSummary) -> None:
        """Take the summary of a finished cycle."""

    def stores_removed(self, stores: Sequence[str]) -> None:
        """Forget stores (by name) that left the inventory."""
