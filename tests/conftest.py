"""Fixtures every test folder may use."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.mosquitto import Broker

BROKER_USERS = {
    "aggregator": "agg-secret-pw",
    "edge-1": "edge1-secret-pw",
    "edge-2": "edge2-secret-pw",
}


@pytest.fixture
def broker(tmp_path) -> Iterator[Broker]:
    """A running Mosquitto with users ``aggregator``, ``edge-1``, ``edge-2``."""
    server = Broker(tmp_path / "mosquitto", dict(BROKER_USERS))
    server.start()
    try:
        yield server
    finally:
        server.stop()
