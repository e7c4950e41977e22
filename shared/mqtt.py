"""The one place that turns ``MqttSettings`` into a paho-mqtt 2.x client.

Both the agent's publisher and the aggregator's consumer build their client
here, so protocol version, TLS, credentials and session handling are set the
same way on both sides. Also here: the ``LinkState`` of a broker link, a
``Backoff`` for reconnect delays, and readable text for paho reason codes.
"""

from __future__ import annotations

import logging
import random
import ssl
from collections.abc import Callable
from enum import Enum

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from shared.config import MqttSettings
from shared.errors import ConfigError

log = logging.getLogger(__name__)

PROTOCOLS = {"5": MQTTProtocolVersion.MQTTv5, "3.1.1": MQTTProtocolVersion.MQTTv311}

# CONNACK reason codes that mean "these credentials will not do": retrying
# soon cannot help, so callers log them once and back off to the maximum.
_AUTH_REFUSALS = frozenset({0x86, 0x87, 0x8C})  # bad user/password, not authorised


class LinkState(Enum):
    """Where one client's link to the broker stands."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"


class Backoff:
    """Reconnect delays growing exponentially, with full jitter.

    The n-th delay (from 0) is drawn uniformly from
    ``[minimum, min(maximum, minimum * 2**n)]``; ``reset`` starts over after
    a good connection.
    """

    def __init__(
        self,
        minimum: float = 1.0,
        maximum: float = 60.0,
        *,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if not 0 < minimum <= maximum:
            raise ValueError("backoff needs 0 < minimum <= maximum")
        self.minimum = minimum
        self.maximum = maximum
        self._rand = rand
        self.attempts = 0

    def next(self) -> float:
        """Return the delay before the next attempt and count the attempt."""
        ceiling = min(self.maximum, self.minimum * 2 ** min(self.attempts, 62))
        self.attempts += 1
        return self.minimum + self._rand() * (ceiling - self.minimum)

    def reset(self) -> None:
        """Start again from the minimum delay."""
        self.attempts = 0


def reason_text(reason: ReasonCode | MQTTErrorCode | int | None) -> str:
    """Return short readable text for a paho reason or error code."""
    if reason is None:
        return "no reason given"
    if isinstance(reason, ReasonCode):
        return reason.getName().lower()
    if isinstance(reason, MQTTErrorCode):
        return paho.error_string(reason).rstrip(".").lower()
    return f"code {reason}"


def disconnect_text(flags: paho.DisconnectFlags, reason: ReasonCode | None) -> str:
    """Return why a link dropped, as passed to a VERSION2 ``on_disconnect``."""
    if not flags.is_disconnect_packet_from_server and (
        reason is None or reason.getName() == "Unspecified error"
    ):
        return "connection lost"
    return reason_text(reason)


def is_auth_refusal(reason: ReasonCode | int | None) -> bool:
    """Return True when a CONNACK reason says the credentials were refused."""
    if isinstance(reason, ReasonCode):
        return reason.value in _AUTH_REFUSALS
    return False


def _protocol(settings: MqttSettings) -> MQTTProtocolVersion:
    try:
        return PROTOCOLS[settings.protocol]
    except KeyError:
        raise ConfigError(
            f"mqtt.protocol: {settings.protocol!r} is not one of "
            f"{', '.join(repr(p) for p in PROTOCOLS)}"
        ) from None


def _set_tls(client: paho.Client, settings: MqttSettings) -> None:
    if settings.ca_file is None:
        return
    try:
        client.tls_set(
            ca_certs=str(settings.ca_file),
            certfile=str(settings.cert_file) if settings.cert_file else None,
            keyfile=str(settings.key_file) if settings.key_file else None,
        )
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise ConfigError(
            f"mqtt.ca_file/cert_file/key_file: cannot load TLS files: {exc}"
        ) from exc


def make_client(
    settings: MqttSettings,
    client_id: str,
    *,
    clean_start: bool = True,
    session_expiry: int = 0,
    max_inflight: int = 20,
    max_queued: int = 0,
) -> paho.Client:
    """Build a client for ``settings``, ready for ``loop_start()``.

    The broker address, keepalive and session options are stored with
    ``connect_async``: starting the network loop connects in the
    background. Do not call ``connect()`` again, it would drop the session
    options. ``session_expiry`` (seconds) applies to MQTT 5; with 3.1.1
    ``clean_start=False`` asks for a persistent session instead.
    ``max_inflight`` bounds unacknowledged QoS 1/2 messages and
    ``max_queued`` (0: no bound) everything paho holds; paho only lets them
    change before the first connection.
    """
    protocol = _protocol(settings)
    v5 = protocol == MQTTProtocolVersion.MQTTv5
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=protocol,
        clean_session=None if v5 else clean_start,
    )
    if settings.username:
        client.username_pw_set(settings.username, settings.password)
    _set_tls(client, settings)
    client.max_inflight_messages_set(max_inflight)
    client.max_queued_messages_set(max_queued)
    properties = None
    if v5 and session_expiry > 0:
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = session_expiry
    client.connect_async(
        settings.host,
        settings.port,
        keepalive=settings.keepalive,
        clean_start=clean_start if v5 else paho.MQTT_CLEAN_START_FIRST_ONLY,
        properties=properties,
    )
    log.debug(
        "mqtt client built client_id=%s host=%s port=%d protocol=%s tls=%s user=%s",
        client_id,
        settings.host,
        settings.port,
        settings.protocol,
        settings.ca_file is not None,
        settings.username or "-",
    )
    return client
