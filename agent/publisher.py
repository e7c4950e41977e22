"""The agent's MQTT sink: statuses out to the broker, never blocking the poller.

The poller hands results to ``MqttSink`` from its own thread; the sink
encodes them, keeps them in its own bounded queue and hands at most
``WINDOW`` unacknowledged QoS-1 messages to paho, whose network thread does
all socket work. While the broker is away only the newest status per store
and the latest cycle summary are kept; on return the birth message goes
first, then (once paho has resent what it held) the queued statuses.

Topics and retain flags follow the v1 contract in ``shared.topics``: the
birth is retained on the state topic and the broker's last will marks the
agent offline there; statuses are retained per store; cycle summaries are
not retained; a removed store's retained status is cleared with an empty
payload.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from shared.codec import Body, encode
from shared.config import MqttSettings
from shared.errors import ConfigError
from shared.model import AgentState, CycleSummary, StoreStatus, slugify
from shared.mqtt import (
    Backoff,
    LinkState,
    disconnect_text,
    is_auth_refusal,
    make_client,
    reason_text,
)
from shared.topics import cycle_topic, is_slug, state_topic, status_topic

log = logging.getLogger(__name__)

WINDOW = 32  # QoS-1 messages handed to paho and not yet acknowledged
QOS = 1

F = TypeVar("F", bound=Callable[..., None])


@dataclass(frozen=True, slots=True)
class _Outgoing:
    """One encoded message waiting for its turn."""

    topic: str
    payload: bytes
    retain: bool
    kind: str  # "state" | "status" | "clear" | "cycle"
    slug: str = ""


def _guarded(name: str) -> Callable[[F], F]:
    """Make a paho callback log and swallow every exception it raises."""

    def wrap(method: F) -> F:
        @functools.wraps(method)
        def inner(self: MqttSink, *args: Any) -> None:
            try:
                method(self, *args)
            except Exception:
                log.exception("mqtt %s callback failed agent=%s", name, self.agent)

        return inner  # type: ignore[return-value]  # same signature as method

    return wrap


class MqttSink:
    """Publish an agent's statuses, cycle summaries and birth over MQTT."""

    def __init__(
        self,
        settings: MqttSettings,
        agent_id: str,
        *,
        interval_seconds: float,
        version: str,
        clock: Callable[[], float] = time.time,
        backoff: Backoff | None = None,
    ) -> None:
        if not is_slug(agent_id):
            raise ConfigError(f"agent.id: {agent_id!r} is not a slug ([a-z0-9_-]+)")
        self.agent = agent_id
        self._settings = settings
        self._interval = interval_seconds
        self._version = version
        self._clock = clock
        self._backoff = backoff or Backoff()
        self._started = clock()
        self._boot = int(self._started * 1000)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._client: paho.Client | None = None
        self._link = LinkState.DISCONNECTED
        self._seq = 0
        self._store_count = 0
        self._statuses: dict[str, _Outgoing] = {}  # slug -> newest, oldest first
        self._clears: dict[str, _Outgoing] = {}
        self._cycle: _Outgoing | None = None
        self._birth_due = False
        self._barrier = False  # after a reconnect: wait for paho's resends
        self._inflight = 0
        self._stopping = False
        self._down_since: float | None = None
        self._ever_connected = False
        self._auth_refused = False
        self._auth_logged = False
        self._retry_scheduled = False
        self._reject_logged = False
        self._counts = dict.fromkeys(
            (
                "published",
                "dropped_cycles",
                "dropped_statuses",
                "reconnects",
                "rejected",
                "auth_failures",
                "connect_failures",
            ),
            0,
        )

    # ------------------------------------------------------------ public API

    @property
    def link_state(self) -> LinkState:
        """Return where the link to the broker stands."""
        with self._lock:
            return self._link

    def start(self, store_count: int) -> None:
        """Connect in the background; never waits for the broker."""
        with self._lock:
            if self._client is not None:
                raise RuntimeError("MqttSink already started")
            self._store_count = store_count
            self._link = LinkState.CONNECTING
            self._stopping = False
        client_id = self._settings.client_id or f"posproctor-agent-{self.agent}"
        client = make_client(
            self._settings, client_id, max_inflight=WINDOW + 2, max_queued=WINDOW + 8
        )
        client.will_set(
            state_topic(self.agent), self._state_payload(online=False), QOS, True
        )
        client.on_pre_connect = self._on_pre_connect
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self._client = client
        log.info(
            "mqtt sink starting agent=%s broker=%s:%d stores=%d",
            self.agent,
            self._settings.host,
            self._settings.port,
            store_count,
        )
        client.loop_start()

    def stop(self, timeout: float = 5.0) -> None:
        """Flush what is queued, publish the retained offline state, disconnect."""
        client = self._client
        if client is None:
            return
        deadline = time.monotonic() + timeout
        with self._lock:
            self._changed.wait_for(self._settled_locked, timeout=timeout)
            self._stopping = True
            connected = self._link is LinkState.CONNECTED
        if connected:
            self._publish_offline(client, deadline)
        client.disconnect()
        client.loop_stop()
        with self._lock:
            self._link = LinkState.DISCONNECTED
            self._client = None
        stats = self.stats()
        log.info(
            "mqtt sink stopped agent=%s published=%d pending=%d",
            self.agent,
            stats["published"],
            stats["pending"],
        )

    def store_status(self, status: StoreStatus) -> None:
        """Queue one store's status; only the newest per store is kept."""
        try:
            slug = slugify(status.store)
            topic = status_topic(self.agent, status.store)
        except ValueError as exc:
            log.error(
                "status not sent agent=%s store=%r: %s", self.agent, status.store, exc
            )
            return
        with self._lock:
            item = _Outgoing(topic, self._encode_locked(status), True, "status", slug)
            if self._statuses.pop(slug, None) is not None:
                self._counts["dropped_statuses"] += 1
            self._statuses[slug] = item
            self._clears.pop(slug, None)
        self._pump()

    def cycle_done(self, summary: CycleSummary) -> None:
        """Queue a cycle summary; an unsent older one is dropped."""
        with self._lock:
            payload = self._encode_locked(summary)
            if self._cycle is not None:
                self._counts["dropped_cycles"] += 1
            self._cycle = _Outgoing(cycle_topic(self.agent), payload, False, "cycle")
        self._pump()

    def stores_removed(self, stores: Sequence[str]) -> None:
        """Clear the retained status of each store (by name) that left."""
        with self._lock:
            for name in stores:
                try:
                    slug = slugify(name)
                except ValueError:
                    continue
                self._statuses.pop(slug, None)
                topic = status_topic(self.agent, name)
                self._clears[slug] = _Outgoing(topic, b"", True, "clear", slug)
        self._pump()

    def set_store_count(self, n: int) -> None:
        """Re-publish the birth message with a new store count."""
        with self._lock:
            if n == self._store_count:
                return
            self._store_count = n
            self._birth_due = True
        self._pump()

    def stats(self) -> dict[str, Any]:
        """Return counters: published, pending, inflight, dropped_cycles, ..."""
        with self._lock:
            pending = len(self._statuses) + len(self._clears)
            pending += (self._cycle is not None) + self._birth_due
            return {
                **self._counts,
                "pending": pending,
                "pending_statuses": len(self._statuses),
                "inflight": self._inflight,
                "link": self._link.value,
            }

    # ------------------------------------------------------------ encoding

    def _encode_locked(self, body: Body) -> bytes:
        self._seq += 1
        return encode(
            body, agent=self.agent, boot=self._boot, seq=self._seq, sent=self._clock()
        )

    def _state_payload_locked(self, *, online: bool) -> bytes:
        state = AgentState(
            online=online,
            version=self._version,
            interval_seconds=float(self._interval),
            store_count=self._store_count,
            started=self._started,
        )
        return self._encode_locked(state)

    def _state_payload(self, *, online: bool) -> bytes:
        with self._lock:
            return self._state_payload_locked(online=online)

    # ------------------------------------------------------------ sending

    def _settled_locked(self) -> bool:
        """Say whether stop() may go on: all sent, or no broker to send to."""
        if self._link is LinkState.CONNECTED:
            return self._idle_locked()
        return self._link is LinkState.DISCONNECTED

    def _idle_locked(self) -> bool:
        empty = not (self._statuses or self._clears or self._cycle or self._birth_due)
        return empty and self._inflight == 0

    def _next_locked(self) -> _Outgoing | None:
        for queue in (self._clears, self._statuses):
            if queue:
                return queue.pop(next(iter(queue)))
        item, self._cycle = self._cycle, None
        return item

    def _take_batch(self) -> list[_Outgoing]:
        """Pick what may go to paho now: birth first, then the queue."""
        with self._lock:
            if self._link is not LinkState.CONNECTED or self._stopping:
                return []
            batch: list[_Outgoing] = []
            if self._birth_due and self._inflight < WINDOW:
                self._birth_due = False
                payload = self._state_payload_locked(online=True)
                batch.append(_Outgoing(state_topic(self.agent), payload, True, "state"))
                self._inflight += 1
            if self._barrier:
                if self._inflight > 0:
                    return batch
                self._barrier = False
            while self._inflight < WINDOW:
                item = self._next_locked()
                if item is None:
                    break
                batch.append(item)
                self._inflight += 1
            return batch

    def _pump(self) -> None:
        client = self._client
        if client is None:
            return
        for item in self._take_batch():
            self._send(client, item)

    def _send(self, client: paho.Client, item: _Outgoing) -> None:
        try:
            info = client.publish(item.topic, item.payload, QOS, item.retain)
        except ValueError as exc:
            log.error(
                "mqtt publish refused agent=%s topic=%s: %s",
                self.agent,
                item.topic,
                exc,
            )
            with self._lock:
                self._inflight -= 1
            return
        # NO_CONN: paho keeps the message and sends it after the reconnect.
        if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
            with self._lock:
                self._inflight -= 1
                self._requeue_locked(item)

    def _requeue_locked(self, item: _Outgoing) -> None:
        if item.kind == "state":
            self._birth_due = True
        elif item.kind == "cycle" and self._cycle is None:
            self._cycle = item
        elif item.kind == "status":
            self._statuses.setdefault(item.slug, item)
        elif item.kind == "clear" and item.slug not in self._statuses:
            self._clears.setdefault(item.slug, item)

    def _publish_offline(self, client: paho.Client, deadline: float) -> None:
        with self._lock:
            self._inflight += 1
        info = client.publish(
            state_topic(self.agent), self._state_payload(online=False), QOS, True
        )
        try:
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
        except (RuntimeError, ValueError) as exc:
            log.warning("offline state not confirmed agent=%s: %s", self.agent, exc)

    # ------------------------------------------------------------ link state

    def _link_up(self) -> None:
        with self._lock:
            down_for = None
            if self._down_since is not None:
                down_for = time.monotonic() - self._down_since
            if self._ever_connected:
                self._counts["reconnects"] += 1
            self._ever_connected = True
            self._link = LinkState.CONNECTED
            self._down_since = None
            self._birth_due = True
            self._barrier = True
            self._auth_refused = self._auth_logged = False
            flushing = len(self._statuses)
            self._changed.notify_all()
        self._backoff.reset()
        s = self._settings
        if down_for is None:
            log.info("mqtt link up agent=%s broker=%s:%d", self.agent, s.host, s.port)
        else:
            log.info(
                "mqtt link back agent=%s broker=%s:%d down_seconds=%.1f flushing=%d",
                self.agent,
                s.host,
                s.port,
                down_for,
                flushing,
            )

    def _link_down(self, reason: str, *, auth: bool = False) -> None:
        with self._lock:
            previous, self._link = self._link, LinkState.DISCONNECTED
            if self._down_since is None:
                self._down_since = time.monotonic()
            first_auth = auth and not self._auth_logged
            if auth:
                self._auth_refused = self._auth_logged = True
                self._counts["auth_failures"] += 1
            self._changed.notify_all()
        s = self._settings
        if first_auth:
            log.error(
                "mqtt broker refused the agent's credentials agent=%s user=%s "
                "reason=%s; retrying every %g s",
                self.agent,
                s.username or "-",
                reason,
                self._backoff.maximum,
            )
        elif previous is LinkState.CONNECTED:
            log.warning("mqtt link down agent=%s reason=%s", self.agent, reason)
        elif previous is LinkState.CONNECTING and not auth:
            log.warning(
                "mqtt broker unreachable agent=%s broker=%s:%d reason=%s",
                self.agent,
                s.host,
                s.port,
                reason,
            )
        else:
            log.debug("mqtt link still down agent=%s reason=%s", self.agent, reason)

    def _schedule_retry(self, client: paho.Client) -> None:
        with self._lock:
            if self._retry_scheduled or self._stopping:
                return
            self._retry_scheduled = True
            auth = self._auth_refused
        delay = self._backoff.maximum if auth else self._backoff.next()
        client.reconnect_delay_set(delay, delay)  # type: ignore[arg-type]  # float is fine

    # ------------------------------------------------------------ paho callbacks

    @_guarded("pre_connect")
    def _on_pre_connect(self, client: paho.Client, userdata: Any) -> None:
        with self._lock:
            self._retry_scheduled = False

    @_guarded("connect")
    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        properties: Any,
    ) -> None:
        if reason.is_failure:
            self._link_down(reason_text(reason), auth=is_auth_refusal(reason))
            return
        self._link_up()
        self._pump()

    @_guarded("connect_fail")
    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        with self._lock:
            self._counts["connect_failures"] += 1
        self._link_down("cannot connect")
        self._schedule_retry(client)

    @_guarded("disconnect")
    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason: ReasonCode,
        properties: Any,
    ) -> None:
        with self._lock:
            stopping = self._stopping
        if stopping:
            log.debug("mqtt disconnected agent=%s", self.agent)
            return
        self._link_down(disconnect_text(flags, reason))
        self._schedule_retry(client)

    @_guarded("publish")
    def _on_publish(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason: ReasonCode,
        properties: Any,
    ) -> None:
        with self._lock:
            self._inflight = max(0, self._inflight - 1)
            rejected = reason.is_failure
            self._counts["rejected" if rejected else "published"] += 1
            first_reject = rejected and not self._reject_logged
            self._reject_logged |= rejected
            self._changed.notify_all()
        if first_reject:
            log.warning(
                "mqtt broker rejected a message agent=%s reason=%s",
                self.agent,
                reason_text(reason),
            )
        self._pump()
