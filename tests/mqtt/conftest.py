"""Helpers for the MQTT tests: a plain paho observer and sink factories."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent.publisher import MqttSink
from shared.codec import Envelope, decode
from shared.config import MqttSettings
from shared.model import CycleSummary, Device, ErrorType, Fep, StoreStatus
from shared.mqtt import Backoff
from tests.conftest import BROKER_USERS
from tests.support.mosquitto import Broker

WAIT = 10.0  # generous upper bound for anything a healthy broker does


def wait_until(predicate: Callable[[], object], timeout: float = WAIT) -> None:
    """Return as soon as ``predicate()`` is true; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.01)


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool

    @property
    def envelope(self) -> Envelope:
        return decode(self.payload)


class Observer:
    """A plain paho subscriber logged in as the aggregator; records messages."""

    def __init__(
        self,
        broker: Broker,
        topic: str = "posproctor/v1/#",
        *,
        client_id: str | None = None,
        clean_start: bool = True,
        subscribe: bool = True,
    ) -> None:
        self.messages: list[Received] = []
        self._cond = threading.Condition()
        self._acked: set[int] = set()
        self.session_present = False
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"observer-{uuid.uuid4().hex[:8]}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self.client.username_pw_set("aggregator", BROKER_USERS["aggregator"])
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 0 if clean_start else 300
        self.client.connect(
            "127.0.0.1", broker.port, clean_start=clean_start, properties=props
        )
        self.client.loop_start()
        if subscribe:
            self.subscribe(topic)

    def _on_message(self, client, userdata, msg) -> None:
        with self._cond:
            self.messages.append(Received(msg.topic, msg.payload, bool(msg.retain)))
            self._cond.notify_all()

    def _on_subscribe(self, client, userdata, mid, reasons, properties) -> None:
        with self._cond:
            self._acked.add(mid)
            self._cond.notify_all()

    def subscribe(self, topic: str) -> None:
        """Subscribe at QoS 1 and wait for the SUBACK."""
        _, mid = self.client.subscribe(topic, qos=1)
        with self._cond:
            assert self._cond.wait_for(lambda: mid in self._acked, WAIT)

    def sync(self) -> None:
        """Round-trip to the broker: what it sent before is now received."""
        self.subscribe(f"posproctor/v1/sync/{uuid.uuid4().hex}")

    def wait_for(
        self, predicate: Callable[[Received], bool], timeout: float = WAIT
    ) -> Received:
        """Return the first message matching ``predicate``, waiting for it."""
        found: list[Received] = []

        def match() -> bool:
            found[:] = [m for m in self.messages if predicate(m)]
            return bool(found)

        with self._cond:
            if not self._cond.wait_for(match, timeout):
                topics = [m.topic for m in self.messages]
                raise AssertionError(f"no matching message; got {topics}")
        return found[0]

    def on(self, topic: str) -> list[Received]:
        with self._cond:
            return [m for m in self.messages if m.topic == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def status(store: str, cycle: int = 1, *, ok: bool = True) -> StoreStatus:
    """Return a realistic status for ``store``; ``cycle`` tells versions apart."""
    return StoreStatus(
        store=store,
        ip="10.1.2.3",
        group="north",
        brand="Shell",
        poll_time=1_700_000_000.0 + cycle,
        cycle=cycle,
        error_type=None if ok else ErrorType.TIMEOUT,
        error="" if ok else "no answer within 30 s",
        durations={"vforecourtdiagnostics": 0.25, "vpaymentdiagnostics": 0.125},
        controller=Device("controller", True, "Online"),
        pumps=(Device("1", True, "Online"), Device("2", False, "Offline")),
        dcrs=(Device("1", True),),
        price_displays=(Device("sign-1", True, "Online"),),
        primary_fep=Fep("Chase", True, "Connected"),
        loyalty_fep=Fep("Rewards 2 Go", None),
        password_days=40,
    )


def summary(cycle: int = 1) -> CycleSummary:
    return CycleSummary(
        cycle=cycle, started=1_700_000_000.0, duration=4.5, stores=2, ok=1, failed=1,
        errors={"timeout": 1}, workers=10, peak_concurrency=2,
    )  # fmt: skip


def settings_for(broker: Broker, user: str = "edge-1", **overrides) -> MqttSettings:
    values = {
        "host": "127.0.0.1",
        "port": broker.port,
        "username": user,
        "password": BROKER_USERS.get(user, ""),
        "keepalive": 10,
    }
    values.update(overrides)
    return MqttSettings(**values)


FAST = (0.05, 0.3)  # backoff bounds that keep reconnect tests quick


@pytest.fixture
def make_sink(broker: Broker) -> Iterator[Callable[..., MqttSink]]:
    """Build started sinks (stopped at teardown); keyword args go to MqttSettings."""
    sinks: list[MqttSink] = []

    def build(
        agent: str = "edge-1",
        *,
        user: str = "edge-1",
        stores: int = 2,
        backoff: Backoff | None = None,
        **overrides,
    ) -> MqttSink:
        sink = MqttSink(
            settings_for(broker, user, **overrides),
            agent,
            interval_seconds=300.0,
            version="1.2.3",
            clock=lambda: 1_700_000_123.5,
            backoff=backoff or Backoff(*FAST),
        )
        sinks.append(sink)
        sink.start(stores)
        return sink

    yield build
    for sink in sinks:
        sink.stop(timeout=2.0)


@pytest.fixture
def observer(broker: Broker) -> Iterator[Observer]:
    obs = Observer(broker)
    yield obs
    obs.close()
