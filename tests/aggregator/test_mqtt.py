"""The aggregator against a real Mosquitto: publish as edge-1, read /metrics."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import msgpack
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from prometheus_client.parser import text_string_to_metric_families

from aggregator.consumer import MqttConsumer
from aggregator.http import MetricsServer
from aggregator.service import build_server
from aggregator.state import FleetState
from shared.codec import encode
from shared.config import AggregatorSettings, Config, MqttSettings
from shared.model import AgentState
from shared.mqtt import Backoff, LinkState
from shared.topics import cycle_topic, state_topic, status_topic
from tests.aggregator.helpers import T0, birth, status, summary
from tests.conftest import BROKER_USERS


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


@dataclass
class Aggregator:
    state: FleetState
    consumer: MqttConsumer
    server: MetricsServer

    def metrics(self) -> dict:
        code, text = get(self.server.url + "/metrics")
        assert code == 200
        return {f.name: f for f in text_string_to_metric_families(text)}

    def value(self, family: str, **labels: str) -> float | None:
        for sample in self.metrics()[family].samples:
            if all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
        return None

    def stop(self) -> None:
        self.consumer.stop()
        self.server.stop()


def start_aggregator(broker, agg_id: str) -> Aggregator:
    config = Config(
        path=None,
        mqtt=MqttSettings(
            host="127.0.0.1",
            port=broker.port,
            username="aggregator",
            password=BROKER_USERS["aggregator"],
        ),
        aggregator=AggregatorSettings(
            id=agg_id, listen_host="127.0.0.1", listen_port=0
        ),
    )
    state = FleetState()
    consumer = MqttConsumer(
        config.mqtt, state, aggregator_id=agg_id, backoff=Backoff(0.05, 0.3)
    )
    server = build_server(config, state, consumer.health)
    server.start()
    consumer.start()
    assert consumer.wait_connected(10)
    return Aggregator(state, consumer, server)


class Agent:
    """A plain paho client publishing as one agent, numbering its messages."""

    def __init__(self, broker, name: str = "edge-1", boot: int = 1) -> None:
        self.name, self.boot, self.seq = name, boot, 0
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"test-{name}-{uuid.uuid4().hex[:6]}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self.client.username_pw_set(name, BROKER_USERS[name])
        self.broker = broker

    def will(self) -> None:
        payload = self.encode(AgentState(online=False))
        self.client.will_set(state_topic(self.name), payload, qos=1, retain=True)

    def connect(self) -> Agent:
        self.client.connect("127.0.0.1", self.broker.port)
        self.client.loop_start()
        return self

    def encode(self, body) -> bytes:
        self.seq += 1
        return encode(body, agent=self.name, boot=self.boot, seq=self.seq, sent=T0)

    def send(self, topic: str, payload: bytes, retain: bool = True) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def status(self, body) -> None:
        self.send(status_topic(self.name, body.store), self.encode(body))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def aggregator(broker) -> Iterator[Aggregator]:
    agg = start_aggregator(broker, "t1")
    yield agg
    agg.stop()


@pytest.fixture
def agent(broker) -> Iterator[Agent]:
    edge = Agent(broker).connect()
    yield edge
    edge.close()


def test_published_statuses_appear_on_metrics(aggregator, agent):
    agent.send(state_topic("edge-1"), agent.encode(birth(stores=2)))
    agent.status(status("Store 1"))
    agent.status(status("Store 2", pumps=3))
    wait_for(lambda: len(aggregator.state.snapshot().stores) == 2)
    assert aggregator.value("posproctor_pump_status", store="Store 2",
                            fueling_point_id="3", agent="edge-1") == 1.0  # fmt: skip
    assert aggregator.value("posproctor_pump_status", store="Store 2",
                            fueling_point_id="2") == 0.0  # fmt: skip
    assert aggregator.value("posproctor_agent_up", agent="edge-1") == 1.0
    code, body = get(aggregator.server.url + "/healthz")
    assert (code, body.split("\n")[0]) == (200, "ok")


def test_bad_payloads_are_counted_and_serving_goes_on(aggregator, agent):
    good = agent.encode(status("Store 1"))
    topic = status_topic("edge-1", "Store 1")
    wrong_version = msgpack.packb({"v": 99, "k": "status", "a": "edge-1", "d": {}})
    for payload in (
        b"\xc1\xc1 not msgpack",
        good[:-7],
        b"\x00" * 70_000,
        wrong_version,
    ):
        agent.send(topic, payload, retain=False)
    agent.send(cycle_topic("edge-1"), b"", retain=False)

    def counted() -> bool:
        return aggregator.state.snapshot().messages["decode_error"] == 5

    wait_for(counted)
    errors = {
        s.labels["reason"]: s.value
        for s in aggregator.metrics()["posproctor_aggregator_decode_errors"].samples
    }
    assert errors == {"malformed": 2.0, "oversized": 1.0, "version": 1.0, "empty": 1.0}
    agent.send(topic, good)
    wait_for(lambda: len(aggregator.state.snapshot().stores) == 1)
    assert aggregator.value("posproctor_scrape_success", store="Store 1") == 1.0


def test_envelope_naming_another_agent_is_a_mismatch(aggregator, agent):
    liar = encode(status("Store 1"), agent="edge-2", boot=1, seq=1, sent=T0)
    agent.send(status_topic("edge-1", "Store 1"), liar, retain=False)
    wait_for(lambda: aggregator.state.snapshot().messages["mismatch"] == 1)
    assert aggregator.state.snapshot().stores == ()


def test_cleared_retained_status_removes_the_store(aggregator, agent):
    agent.status(status("Store 1"))
    wait_for(lambda: len(aggregator.state.snapshot().stores) == 1)
    agent.send(status_topic("edge-1", "Store 1"), b"")
    wait_for(lambda: aggregator.state.snapshot().stores == ())


def test_restarted_aggregator_rebuilds_state_from_retained(broker, agent):
    first = start_aggregator(broker, "t2")
    for i in range(1, 6):
        agent.status(status(f"Store {i}", poll_time=time.time()))
    wait_for(lambda: len(first.state.snapshot().stores) == 5)
    first.stop()
    # Not retained: only the persistent session can deliver it.
    agent.send(cycle_topic("edge-1"), agent.encode(summary(1, stores=5)), retain=False)
    second = start_aggregator(broker, "t2")
    try:
        wait_for(lambda: len(second.state.snapshot().stores) == 5)
        assert second.value("posproctor_controller_status", store="Store 4") == 1.0
        assert second.value("posproctor_store_stale", store="Store 4") == 0.0
        wait_for(lambda: second.state.snapshot().messages["applied"] == 6)
        assert second.value("posproctor_total_systems", enabled="true") == 5.0
    finally:
        second.stop()


def test_retained_report_of_a_long_dead_agent_is_stale(broker, agent):
    agent.status(status("Store 1", poll_time=time.time() - 86_400))
    agg = start_aggregator(broker, "t3")
    try:
        wait_for(lambda: len(agg.state.snapshot().stores) == 1)
        assert agg.value("posproctor_store_stale", store="Store 1") == 1.0
        assert agg.value("posproctor_controller_status", store="Store 1") is None
    finally:
        agg.stop()


def test_last_will_sets_agent_up_to_zero(aggregator, broker):
    edge = Agent(broker)
    edge.will()
    edge.connect()
    edge.send(state_topic("edge-1"), edge.encode(birth()))
    wait_for(lambda: aggregator.value("posproctor_agent_up", agent="edge-1") == 1.0)
    edge.client.socket().shutdown(socket.SHUT_RDWR)  # die without DISCONNECT
    edge.client.loop_stop()
    wait_for(lambda: aggregator.value("posproctor_agent_up", agent="edge-1") == 0.0)


def test_health_follows_the_broker_link(aggregator, broker):
    broker.stop()
    wait_for(lambda: aggregator.consumer.link is LinkState.DISCONNECTED)
    assert get(aggregator.server.url + "/healthz")[0] == 503
    assert get(aggregator.server.url + "/metrics")[0] == 200
    broker.start()
    wait_for(lambda: aggregator.consumer.link is LinkState.CONNECTED)
    assert get(aggregator.server.url + "/healthz")[0] == 200
