"""The consumer's message handling, without a broker: topics, payloads, logs."""

from __future__ import annotations

import logging

from aggregator.consumer import MqttConsumer, WarnLimiter
from aggregator.state import FleetState
from shared.codec import encode
from shared.config import MqttSettings
from tests.aggregator.helpers import T0, Clock, status

TOPIC = "posproctor/v1/agents/edge-1/stores/store-1/status"


def _consumer() -> tuple[MqttConsumer, FleetState]:
    state = FleetState(clock=Clock())
    return MqttConsumer(MqttSettings(port=1), state, aggregator_id="unit"), state


def test_client_id_names_the_aggregator():
    consumer, _ = _consumer()
    assert consumer.client_id == "posproctor-aggregator-unit"


def test_good_payload_is_applied_with_retained_flag():
    consumer, _ = _consumer()
    payload = encode(status(), agent="edge-1", boot=1, seq=1, sent=T0)
    assert consumer.handle(TOPIC, payload, retained=True) == "applied"
    assert consumer.handle(TOPIC, payload) == "duplicate"


def test_foreign_topic_and_bad_payloads_are_counted_by_reason():
    consumer, state = _consumer()
    assert consumer.handle("other/topic", b"x") == "decode_error"
    assert consumer.handle(TOPIC, b"\xc1") == "decode_error"
    assert consumer.handle(TOPIC, b"\x80") == "decode_error"  # an empty map
    assert state.snapshot().decode_errors == {"topic": 1, "malformed": 1, "schema": 1}


def test_bad_payload_warnings_are_rate_limited(caplog):
    consumer, state = _consumer()
    with caplog.at_level(logging.DEBUG, logger="aggregator.consumer"):
        for _ in range(5):
            consumer.handle(TOPIC, b"\xc1")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "agent=edge-1 reason=malformed" in warnings[0].getMessage()
    assert state.snapshot().decode_errors["malformed"] == 5


def test_limiter_allows_again_after_its_period():
    clock = Clock(now=0.0)
    limiter = WarnLimiter(period=60.0, clock=clock)
    assert limiter.allow("edge-1", "malformed")
    assert not limiter.allow("edge-1", "malformed")
    assert limiter.allow("edge-2", "malformed")
    clock.now = 61.0
    assert limiter.allow("edge-1", "malformed")
