"""make_client, Backoff and reason texts."""

from __future__ import annotations

import threading
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from shared.config import MqttSettings
from shared.errors import ConfigError
from shared.mqtt import Backoff, is_auth_refusal, make_client, reason_text
from tests.mqtt.conftest import WAIT, settings_for


def connect_and_wait(client: paho.Client, flags: list | None = None) -> ReasonCode:
    """Run the loop in the background and return the CONNACK reason."""
    got: list[ReasonCode] = []
    done = threading.Event()

    def on_connect(client, userdata, connect_flags, reason, properties):
        got.append(reason)
        if flags is not None:
            flags.append(connect_flags)
        done.set()

    client.on_connect = on_connect
    client.loop_start()
    try:
        assert done.wait(WAIT), "no CONNACK"
    finally:
        client.disconnect()
        client.loop_stop()
    return got[0]


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_client_connects_with_either_protocol(broker, protocol):
    client = make_client(settings_for(broker, protocol=protocol), "t-proto")
    assert not connect_and_wait(client).is_failure


def test_client_connects_over_tls_with_the_ca_file(broker):
    settings = settings_for(broker, port=broker.tls_port, ca_file=Path(broker.ca_file))
    assert not connect_and_wait(make_client(settings, "t-tls")).is_failure


def test_persistent_session_survives_a_reconnect(broker):
    settings = settings_for(broker, user="aggregator")
    flags: list[paho.ConnectFlags] = []
    for _ in range(2):
        client = make_client(
            settings, "t-session", clean_start=False, session_expiry=60
        )
        connect_and_wait(client, flags)
    assert [f.session_present for f in flags] == [False, True]


def test_wrong_password_is_an_auth_refusal(broker):
    client = make_client(settings_for(broker, password="nope"), "t-auth")
    client.reconnect_delay_set(0.05, 0.05)  # paho retries; keep loop_stop quick
    reason = connect_and_wait(client)
    assert reason.is_failure and is_auth_refusal(reason)
    assert "not authori" in reason_text(reason) or "password" in reason_text(reason)


def test_unknown_protocol_and_missing_tls_files_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="protocol"):
        make_client(MqttSettings(protocol="4"), "x")
    with pytest.raises(ConfigError, match="TLS"):
        make_client(MqttSettings(ca_file=tmp_path / "missing.pem"), "x")


def test_password_never_appears_in_settings_repr():
    assert "s3cret" not in repr(MqttSettings(username="u", password="s3cret"))


def test_backoff_grows_with_full_jitter_and_resets():
    high = Backoff(1.0, 60.0, rand=lambda: 1.0)
    assert [high.next() for _ in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    low = Backoff(1.0, 60.0, rand=lambda: 0.0)
    assert {low.next() for _ in range(5)} == {1.0}
    half = Backoff(1.0, 60.0, rand=lambda: 0.5)
    assert [half.next() for _ in range(3)] == [1.0, 1.5, 2.5]
    high.reset()
    assert high.next() == 1.0
    for _ in range(10_000):  # no overflow after a very long outage
        high.next()
    assert high.next() == 60.0


def test_backoff_refuses_nonsense_bounds():
    with pytest.raises(ValueError):
        Backoff(0.0, 1.0)
    with pytest.raises(ValueError):
        Backoff(5.0, 1.0)


def test_reason_text_is_short_and_readable():
    assert (
        reason_text(ReasonCode(PacketTypes.CONNACK, "Not authorized"))
        == "not authorized"
    )
    assert (
        reason_text(paho.MQTTErrorCode.MQTT_ERR_CONN_LOST) == "the connection was lost"
    )
    assert reason_text(None) == "no reason given"
    assert not is_auth_refusal(ReasonCode(PacketTypes.CONNACK, "Server unavailable"))
