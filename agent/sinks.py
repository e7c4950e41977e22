"""Simple sinks: in memory (tests, embedded hand-off) and JSON lines (debugging)."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Sequence
from typing import IO, Any

from shared.model import CycleSummary, StoreStatus


class MemorySink:
    """Keep everything a poller reports, for tests and quick looks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.statuses: list[StoreStatus] = []
        self.summaries: list[CycleSummary] = []
        self.removed: list[str] = []

    def store_status(self, status: StoreStatus) -> None:
        with self._lock:
            self.statuses.append(status)

    def cycle_done(self, summary: CycleSummary) -> None:
        with self._lock:
            self.summaries.append(summary)

    def stores_removed(self, stores: Sequence[str]) -> None:
        with self._lock:
            self.removed.extend(stores)

    def latest(self) -> dict[str, StoreStatus]:
        """Return the newest status of each store, by store name."""
        with self._lock:
            return {s.store: s for s in self.statuses}


def to_jsonable(value: Any) -> Any:
    """Turn a model dataclass into JSON-ready dicts and lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: to_jsonable(getattr(value, f.name))
            for f in dataclasses.fields(value)
        }
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


class JsonLinesSink:
    """Write one JSON object per status, cycle or removal to a text stream."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def _write(self, kind: str, body: Any) -> None:
        line = json.dumps({"kind": kind, **to_jsonable(body)}, sort_keys=True)
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()

    def store_status(self, status: StoreStatus) -> None:
        self._write("status", status)

    def cycle_done(self, summary: CycleSummary) -> None:
        self._write("cycle", summary)

    def stores_removed(self, stores: Sequence[str]) -> None:
        for store in stores:
            self._write("removed", {"store": store})
