"""MqttSink against a real Mosquitto, observed by a plain subscriber."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from shared.model import AgentState
from shared.mqtt import Backoff, LinkState
from shared.topics import cycle_topic, state_topic, status_topic
from tests.conftest import BROKER_USERS
from tests.mqtt.conftest import (
    Observer,
    status,
    summary,
    wait_until,
)

STATE = state_topic("edge-1")


def is_online_birth(m) -> bool:
    return m.topic == STATE and m.payload and m.envelope.body.online


def test_birth_is_retained_with_the_agents_details(broker, make_sink):
    sink = make_sink(stores=7)
    wait_until(lambda: sink.stats()["published"] >= 1)

    late = Observer(broker)  # subscribes after the fact: sees only retained
    try:
        birth = late.wait_for(lambda m: m.topic == STATE)
    finally:
        late.close()

    assert birth.retain
    env = birth.envelope
    assert (env.kind, env.agent) == ("state", "edge-1")
    assert env.body == AgentState(
        online=True,
        version="1.2.3",
        interval_seconds=300.0,
        store_count=7,
        started=1_700_000_123.5,
    )
    assert sink.link_state is LinkState.CONNECTED


def test_statuses_arrive_equal_to_what_was_sent_and_stay_retained(
    broker, make_sink, observer
):
    sink = make_sink()
    sent = [status("Store 1"), status("Store #2", ok=False)]
    for s in sent:
        sink.store_status(s)
    sink.cycle_done(summary())

    live = [
        observer.wait_for(lambda m, s=s: m.topic == status_topic("edge-1", s.store))
        for s in sent
    ]
    cycle = observer.wait_for(lambda m: m.topic == cycle_topic("edge-1"))
    assert [m.envelope.body for m in live] == sent
    assert cycle.envelope.body == summary()
    seqs = [m.envelope.seq for m in observer.messages]
    assert len(set(seqs)) == len(seqs)  # one counter for every kind
    ours = [m.envelope.seq for m in [*live, cycle]]
    assert ours == sorted(ours)  # in the order the poller handed them over

    late = Observer(broker)
    try:
        late.sync()
        retained = {m.topic: m for m in late.messages}
    finally:
        late.close()
    assert retained[status_topic("edge-1", "Store #2")].retain
    assert retained[status_topic("edge-1", "Store #2")].envelope.body == sent[1]
    assert cycle_topic("edge-1") not in retained  # summaries are not retained


def test_tls_listener_works_with_the_ca_file(broker, make_sink, observer):
    sink = make_sink(port=broker.tls_port, ca_file=Path(broker.ca_file))
    sink.store_status(status("Store 1"))
    got = observer.wait_for(lambda m: m.topic == status_topic("edge-1", "Store 1"))
    assert got.envelope.body == status("Store 1")
    observer.wait_for(is_online_birth)


def test_mqtt_311_works(broker, make_sink, observer):
    sink = make_sink(protocol="3.1.1")
    sink.store_status(status("Store 1"))
    got = observer.wait_for(lambda m: m.topic == status_topic("edge-1", "Store 1"))
    assert got.retain is False or got.retain is True  # live delivery
    assert got.envelope.body == status("Store 1")
    sink.stop()
    offline = observer.wait_for(
        lambda m: m.topic == STATE and not m.envelope.body.online
    )
    assert offline.envelope.body.version == "1.2.3"


def test_removed_store_has_its_retained_status_cleared(broker, make_sink, observer):
    sink = make_sink()
    sink.store_status(status("Store 1"))
    sink.store_status(status("Store 2"))
    gone, kept = status_topic("edge-1", "Store 1"), status_topic("edge-1", "Store 2")
    observer.wait_for(lambda m: m.topic == kept)

    sink.stores_removed(["Store 1"])
    observer.wait_for(lambda m: m.topic == gone and m.payload == b"")

    late = Observer(broker)
    try:
        late.sync()
        topics = {m.topic for m in late.messages}
    finally:
        late.close()
    assert kept in topics
    assert gone not in topics


def test_set_store_count_republishes_the_birth(broker, make_sink, observer):
    sink = make_sink(stores=2)
    observer.wait_for(lambda m: is_online_birth(m) and m.envelope.body.store_count == 2)
    sink.set_store_count(5)
    observer.wait_for(lambda m: is_online_birth(m) and m.envelope.body.store_count == 5)


def test_stop_publishes_retained_offline_state(broker, make_sink, observer):
    sink = make_sink()
    sink.store_status(status("Store 1"))
    sink.stop()
    assert sink.link_state is LinkState.DISCONNECTED
    observer.wait_for(lambda m: m.topic.endswith("/status"))
    offline = observer.wait_for(
        lambda m: m.topic == STATE and not m.envelope.body.online
    )
    assert offline.envelope.body.store_count == 2

    late = Observer(broker)
    try:
        retained = late.wait_for(lambda m: m.topic == STATE)
    finally:
        late.close()
    assert retained.retain and retained.envelope.body.online is False


AGENT_SCRIPT = textwrap.dedent(
    """
    import os, sys, threading, time
    from agent.publisher import MqttSink
    from shared.config import MqttSettings

    settings = MqttSettings(
        host="127.0.0.1", port=int(os.environ["PORT"]),
        username="edge-1", password=os.environ["PASSWORD"], keepalive=10,
    )
    sink = MqttSink(settings, "edge-1", interval_seconds=60.0, version="9.9")
    sink.start(3)
    while sink.stats()["published"] < 1:
        time.sleep(0.01)
    print("ready", flush=True)
    threading.Event().wait()
    """
)


def test_unclean_death_makes_the_broker_publish_the_offline_will(broker, observer):
    env = {**os.environ, "PORT": str(broker.port), "PASSWORD": BROKER_USERS["edge-1"]}
    proc = subprocess.Popen(
        [sys.executable, "-c", AGENT_SCRIPT],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        observer.wait_for(is_online_birth)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        will = observer.wait_for(
            lambda m: m.topic == STATE and not m.envelope.body.online
        )
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert will.envelope.body == AgentState(
        online=False, version="9.9", interval_seconds=60.0, store_count=3,
        started=will.envelope.body.started,
    )  # fmt: skip


def test_broker_restart_keeps_newest_status_per_store_and_delivers_after(
    broker, make_sink
):
    sink = make_sink(backoff=Backoff(0.05, 0.2))
    # A persistent observer session: the broker queues what it misses, in order.
    first = Observer(broker, client_id="observer-restart", clean_start=False)
    sink.store_status(status("Store A", 1))
    first.wait_for(lambda m: m.topic == status_topic("edge-1", "Store A"))
    first.close()

    broker.stop()
    wait_until(lambda: sink.link_state is LinkState.DISCONNECTED)
    for s in (status("Store A", 2), status("Store B", 1), status("Store A", 3)):
        sink.store_status(s)  # never blocks while the broker is away
    sink.cycle_done(summary(1))
    sink.cycle_done(summary(2))
    stats = sink.stats()
    assert stats["pending_statuses"] == 2
    assert stats["dropped_statuses"] == 1
    assert stats["dropped_cycles"] == 1

    broker.start()
    wait_until(lambda: sink.link_state is LinkState.CONNECTED)
    wait_until(lambda: sink.stats()["pending"] == 0 and sink.stats()["inflight"] == 0)
    back = Observer(
        broker, client_id="observer-restart", clean_start=False, subscribe=False
    )
    try:
        back.wait_for(lambda m: m.topic == cycle_topic("edge-1"))
        got = list(back.messages)
    finally:
        back.close()

    statuses = [m.envelope.body for m in got if m.topic.endswith("/status")]
    assert sorted((s.store, s.cycle) for s in statuses) == [
        ("Store A", 3),
        ("Store B", 1),
    ]
    kinds = [m.envelope.kind for m in got if m.payload]
    assert "state" in kinds
    first_birth = next(
        i for i, m in enumerate(got) if m.topic == STATE and m.envelope.body.online
    )
    assert all(
        i > first_birth for i, m in enumerate(got) if m.topic.endswith("/status")
    )
    assert [m.envelope.body.cycle for m in got if m.topic == cycle_topic("edge-1")] == [
        2
    ]
    assert sink.stats()["reconnects"] == 1


def test_wrong_password_is_logged_once_without_the_password(broker, make_sink, caplog):
    caplog.set_level(logging.DEBUG)
    secret = "not-the-Right-pw-123"
    sink = make_sink(password=secret, backoff=Backoff(0.02, 0.05))
    wait_until(lambda: sink.stats()["auth_failures"] >= 3)

    assert sink.link_state is LinkState.DISCONNECTED
    sink.store_status(status("Store 1"))  # still accepted, queued
    assert sink.stats()["pending_statuses"] == 1
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert "edge-1" in errors[0].getMessage()
    assert secret not in caplog.text
    assert all(secret not in r.getMessage() for r in caplog.records)
    sink.stop(timeout=1.0)
    assert secret not in caplog.text


def test_agent_cannot_publish_under_another_agents_topics(broker, make_sink, observer):
    # edge-1's credentials, but claiming to be agent edge-2.
    impostor = make_sink("edge-2", user="edge-1")
    impostor.store_status(status("Store 1"))
    wait_until(lambda: impostor.stats()["rejected"] >= 2)  # birth and status
    assert impostor.stats()["published"] == 0

    honest = make_sink("edge-1")
    honest.store_status(status("Store 1"))
    observer.wait_for(lambda m: m.topic == status_topic("edge-1", "Store 1"))
    observer.sync()
    assert not [m for m in observer.messages if "/agents/edge-2/" in m.topic]
