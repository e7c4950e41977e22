"""The aggregator's MQTT side: subscribe to every agent topic, feed FleetState.

One thread owns the paho client: it connects, runs the network loop and,
when the link drops, waits a jittered ``Backoff`` before reconnecting. The
session is persistent (MQTT 5 session expiry, or a 3.1.1 non-clean
session), so QoS 1 reports published while the aggregator was away are
delivered when it returns; retained statuses rebuild the state after a
restart. ``on_message`` only parses, decodes and applies: every exception is
caught, counted and logged with its topic, bad payloads at most once a
minute per agent and reason.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode

from aggregator.state import MISMATCH, FleetState
from shared.codec import decode
from shared.config import MqttSettings
from shared.errors import DecodeError
from shared.mqtt import (
    Backoff,
    LinkState,
    disconnect_text,
    is_auth_refusal,
    make_client,
    reason_text,
)
from shared.topics import parse_topic, subscriptions

log = logging.getLogger(__name__)

SESSION_EXPIRY_SECONDS = 86_400
WARN_EVERY_SECONDS = 60.0
_MAX_WARN_KEYS = 1_000


# DecodeError carries only a message: map its wording to a short label value.
class WarnLimiter:
    """Allow one WARNING per key per period; callers log the rest at DEBUG."""

    def __init__(
        self,
        period: float = WARN_EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._period = period
        self._clock = clock
        self._last: dict[tuple[str, str], float] = {}

    def allow(self, agent: str, reason: str) -> bool:
        """Return True if a WARNING for (agent, reason) may be logged now."""
        now = self._clock()
        key = (agent, reason)
        last = self._last.get(key)
        if last is not None and now - last < self._period:
            return False
        if len(self._last) >= _MAX_WARN_KEYS:
            self._last.clear()
        self._last[key] = now
        return True


class MqttConsumer:
    """Keep a persistent MQTT session and apply every report to a FleetState."""

    def __init__(
        self,
        settings: MqttSettings,
        state: FleetState,
        *,
        aggregator_id: str = "central",
        agents: Sequence[str] = (),
        backoff: Backoff | None = None,
    ) -> None:
        self._settings = settings
        self._state = state
        self._topics = subscriptions(agents)
        self._backoff = backoff or Backoff(1.0, 60.0)
        self._limiter = WarnLimiter()
        self._stop = threading.Event()
        self._link = LinkState.CONNECTING
        self._link_lock = threading.Lock()
        self._connected = threading.Event()
        self._was_up = False
        self._thread: threading.Thread | None = None
        self.client_id = settings.client_id or f"posproctor-aggregator-{aggregator_id}"
        self._client = make_client(
            settings,
            self.client_id,
            clean_start=False,
            session_expiry=SESSION_EXPIRY_SECONDS,
        )
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe

    @property
    def link(self) -> LinkState:
        return self._link

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Return whether the broker link is up, with detail for ``/healthz``."""
        link = self._link
        return link is LinkState.CONNECTED, {"mode": "mqtt", "mqtt": link.value}

    def start(self) -> None:
        """Start the thread that owns the client."""
        self._thread = threading.Thread(
            target=self._run, name="aggregator-mqtt", daemon=True
        )
        self._thread.start()

    def wait_connected(self, timeout: float) -> bool:
        """Block until the link is up (subscriptions granted) or ``timeout`` passes."""
        return self._connected.wait(timeout)

    def stop(self) -> None:
        """Disconnect cleanly and join the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    # -- the owning thread -----------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._connect():
                self._loop_until_dropped()
            if not self._stop.is_set():
                self._stop.wait(self._backoff.next())
        self._close()

    def _connect(self) -> bool:
        try:
            self._client.reconnect()
        except (OSError, ValueError) as exc:
            self._set_link(LinkState.DISCONNECTED, f"cannot connect: {exc}")
            return False
        return True

    def _loop_until_dropped(self) -> None:
        while not self._stop.is_set():
            rc = self._client.loop(timeout=0.5)
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._set_link(LinkState.DISCONNECTED, reason_text(rc))
                return

    def _close(self) -> None:
        if self._link is LinkState.CONNECTED:
            self._client.disconnect()
            self._client.loop(timeout=0.2)
        with self._link_lock:
            self._link = LinkState.DISCONNECTED
        self._connected.clear()
        log.info("mqtt consumer stopped client_id=%s", self.client_id)

    def _set_link(self, new: LinkState, why: str = "") -> None:
        """Move the link to ``new``, logging each real change once."""
        with self._link_lock:
            old, self._link = self._link, new
        if new is LinkState.CONNECTED:
            self._connected.set()
            if old is not LinkState.CONNECTED:
                self._backoff.reset()
                verb = "restored" if self._was_up else "up"
                self._was_up = True
                log.info(
                    "mqtt link %s host=%s port=%d client_id=%s",
                    verb, self._settings.host, self._settings.port, self.client_id,
                )  # fmt: skip
            return
        self._connected.clear()
        if old is LinkState.CONNECTED or (old is LinkState.CONNECTING and why):
            log.warning(
                "mqtt link down host=%s port=%d reason=%s",
                self._settings.host, self._settings.port, why or "unknown",
            )  # fmt: skip
        else:
            log.debug("mqtt connect attempt failed reason=%s", why)

    # -- paho callbacks: short, never raise --------------------------------

    def _on_connect(
        self, client: paho.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        if reason.is_failure:
            if is_auth_refusal(reason):
                self._backoff.attempts = 62  # credentials will not fix themselves
            self._set_link(LinkState.DISCONNECTED, f"refused: {reason_text(reason)}")
            return
        client.subscribe([(topic, 1) for topic in self._topics])

    def _on_subscribe(
        self, _client: paho.Client, _userdata: Any, _mid: int, codes: Any, _p: Any
    ) -> None:
        """Count the link as up once the broker has granted the subscriptions.

        Until then a message published by an agent could miss us, so health
        and ``wait_connected`` wait for this acknowledgement.
        """
        refused = [str(code) for code in codes if code.is_failure]
        if refused:
            log.error(
                "mqtt subscription refused client_id=%s topics=%s reasons=%s",
                self.client_id, ",".join(self._topics), ",".join(refused),
            )  # fmt: skip
        self._set_link(LinkState.CONNECTED)

    def _on_disconnect(
        self, _client: paho.Client, _userdata: Any, flags: Any, reason: Any, _p: Any
    ) -> None:
        if not self._stop.is_set():
            self._set_link(LinkState.DISCONNECTED, disconnect_text(flags, reason))

    def _on_message(self, _client: paho.Client, _userdata: Any, msg: Any) -> None:
        try:
            self.handle(msg.topic, msg.payload, retained=bool(msg.retain))
        except Exception:
            self._state.record_decode_error("internal")
            log.exception("unexpected error handling message topic=%s", msg.topic)

    def handle(self, topic_name: str, payload: bytes, *, retained: bool = False) -> str:
        """Apply one message; return the result ("applied", "decode_error"...)."""
        try:
            topic = parse_topic(topic_name)
        except DecodeError as exc:
            return self._bad(topic_name, "-", "topic", exc)
        if topic.kind == "status" and not payload:
            removed = self._state.remove_store(topic.agent, topic.store or "")
            return "removed" if removed else "duplicate"
        try:
            env = decode(payload)
        except DecodeError as exc:
            return self._bad(topic_name, topic.agent, exc.reason, exc)
        result = self._state.apply(
            env, topic.agent, topic.store, topic_kind=topic.kind, retained=retained
        )
        if result == MISMATCH:
            self._warn(topic.agent, "mismatch", topic_name, "envelope disagrees")
        return result

    def _bad(self, topic: str, agent: str, reason: str, exc: DecodeError) -> str:
        self._state.record_decode_error(reason)
        self._warn(agent, reason, topic, str(exc))
        return "decode_error"

    def _warn(self, agent: str, reason: str, topic: str, detail: str) -> None:
        level = logging.WARNING if self._limiter.allow(agent, reason) else logging.DEBUG
        log.log(
            level,
            "bad message dropped agent=%s reason=%s topic=%s detail=%s",
            agent, reason, topic[:200], detail[:200],
        )  # fmt: skip
