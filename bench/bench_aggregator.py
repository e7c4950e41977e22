"""Benchmark the aggregator: ingest rate, /metrics render time, memory.

    python -m bench.bench_aggregator [--stores 10000] [--messages 20000]
                                     [--broker-messages 10000] [--no-broker]

Prints a table, then one JSON line with every figure. Targets: ingest
>= 20,000 statuses/s on one core in process; /metrics for 10,000 stores
<= 0.5 s and >= 3x faster than plain labelled prometheus_client metrics;
RSS <= 300 MB at 10,000 stores.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from aggregator.collector import FleetCollector
from aggregator.state import FleetSnapshot, FleetState, StoreView
from shared.codec import decode, encode
from shared.model import CycleSummary, Device, ErrorType, Fep, StoreStatus, slugify

if TYPE_CHECKING:
    from aggregator.consumer import MqttConsumer
    from shared.config import MqttSettings
    from tests.support.mosquitto import Broker

AGENTS = ("edge-1", "edge-2", "edge-3", "edge-4")
QUEUE_LIMITS = "\nmax_queued_messages 1000000\nmax_inflight_messages 100\n"


def make_status(i: int, cycle: int, now: float) -> StoreStatus:
    """Return store ``i``'s status: about 30 series once exposed."""
    failed = i % 50 == 0
    return StoreStatus(
        store=f"Store {i:05d}",
        ip=f"10.{i // 65536}.{i // 256 % 256}.{i % 256}",
        group=f"Region {i % 12}",
        brand=("Shell", "BP", "Exxon", "Chevron")[i % 4],
        poll_time=now,
        cycle=cycle,
        error_type=ErrorType.TIMEOUT if failed else None,
        error="no answer within 30 s" if failed else "",
        durations={"diagnostics": 0.05 + (i % 20) / 10},
        controller=Device("controller", True),
        pumps=tuple(Device(str(n), n != 3) for n in range(1, 5)),
        dcrs=tuple(Device(str(n), True) for n in range(1, 5)),
        price_displays=(Device("1", True), Device("2", i % 7 != 0)),
        tank_sensor=Device("tank", True),
        primary_fep=Fep("buypass", True),
        loyalty_fep=Fep("rewards 2 go", i % 9 != 0),
    )


def payloads(stores: int, messages: int) -> list[tuple[str, str, bytes]]:
    """Return (agent, store slug, payload) for ``messages`` statuses."""
    now = time.time()
    out = []
    seqs = dict.fromkeys(AGENTS, 0)
    for n in range(messages):
        i, cycle = n % stores, n // stores + 1
        agent = AGENTS[i % len(AGENTS)]
        seqs[agent] += 1
        status = make_status(i, cycle, now + cycle)
        payload = encode(status, agent=agent, boot=1, seq=seqs[agent], sent=now)
        out.append((agent, slugify(status.store), payload))
    return out


def filled_state(stores: int) -> FleetState:
    """Return a FleetState holding ``stores`` stores and their agents."""
    state = FleetState(max_stores=max(50_000, stores))
    for agent, slug, payload in payloads(stores, stores):
        state.apply(decode(payload), agent, slug)
    for n, agent in enumerate(AGENTS, start=1):
        summary = CycleSummary(1, time.time(), 95.0, stores // 4, stores // 4, 0)
        state.apply(decode(encode(summary, agent=agent, boot=1, seq=10**6 + n,
                                  sent=time.time())), agent)  # fmt: skip
    return state


def bench_ingest(stores: int, messages: int) -> float:
    """Return statuses decoded and applied per second, in process."""
    data = payloads(stores, messages)
    state = FleetState(max_stores=max(50_000, stores))
    start = time.perf_counter()
    for agent, slug, payload in data:
        state.apply(decode(payload), agent, slug)
    return messages / (time.perf_counter() - start)


def _publish(port: int, password: str, data: list[tuple[str, str, bytes]]) -> None:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

    from shared.topics import status_topic

    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id="bench-edge-1",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.username_pw_set("edge-1", password)
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    infos = [client.publish(status_topic("edge-1", s), p, qos=1) for _, s, p in data]
    for info in infos:
        info.wait_for_publish(60)
    client.disconnect()
    client.loop_stop()


def bench_broker(stores: int, messages: int) -> tuple[float, int]:
    """Return statuses/s from a publisher process through Mosquitto, and applied."""
    from aggregator.consumer import MqttConsumer
    from shared.config import MqttSettings
    from tests.support.mosquitto import Broker

    users = {"aggregator": "bench-agg-pw", "edge-1": "bench-edge-pw"}
    data = [
        (a, s, encode(decode(p).body, agent="edge-1", boot=1, seq=n, sent=0.0))
        for n, (a, s, p) in enumerate(payloads(stores, messages), start=1)
    ]

    class BenchBroker(Broker):
        # Mosquitto queues at most 1000 QoS 1 messages per client by default
        # and drops the rest; a burst of a whole fleet needs more room.
        def _config(self) -> str:
            return super()._config() + QUEUE_LIMITS

    with tempfile.TemporaryDirectory() as tmp:
        broker = BenchBroker(Path(tmp) / "mosquitto", users)
        broker.start()
        try:
            return _through_broker(broker, users, data, MqttConsumer, MqttSettings)
        finally:
            broker.stop()


def _through_broker(
    broker: Broker,
    users: dict[str, str],
    data: list[tuple[str, str, bytes]],
    consumer_cls: type[MqttConsumer],
    settings_cls: type[MqttSettings],
) -> tuple[float, int]:
    state = FleetState(max_stores=max(50_000, len(data)))
    settings = settings_cls(
        host="127.0.0.1", port=broker.port, username="aggregator",
        password=users["aggregator"],
    )  # fmt: skip
    consumer = consumer_cls(settings, state, aggregator_id="bench")
    consumer.start()
    consumer.wait_connected(10)
    publisher = multiprocessing.Process(
        target=_publish, args=(broker.port, users["edge-1"], data)
    )
    start = time.perf_counter()
    publisher.start()
    applied, last_change = 0, start
    while applied < len(data) and time.perf_counter() - last_change < 5:
        time.sleep(0.01)
        now_applied = state.snapshot().messages["applied"]
        if now_applied != applied:
            applied, last_change = now_applied, time.perf_counter()
    elapsed = last_change - start
    publisher.join(30)
    consumer.stop()
    return applied / elapsed, applied


def best_of(runs: int, func: Callable[[], bytes]) -> tuple[float, int]:
    """Return the best wall time of ``runs`` calls and the output size."""
    best, size = float("inf"), 0
    for _ in range(runs):
        start = time.perf_counter()
        size = len(func())
        best = min(best, time.perf_counter() - start)
    return best, size


def plain_registry(snap: FleetSnapshot) -> CollectorRegistry:
    """Return a private registry of labelled metrics holding the same values."""
    from prometheus_client import Counter, Gauge, Histogram

    reg = CollectorRegistry()
    base = ["store", "ip", "group", "brand", "agent"]

    def gauge(name: str, extra: tuple[str, ...] = ()) -> Gauge:
        return Gauge(name, name, [*base, *extra], registry=reg)

    def counter(name: str, extra: tuple[str, ...] = ()) -> Counter:
        return Counter(name, name, [*base, *extra], registry=reg)

    m: dict[str, Any] = {
        "controller": gauge("posproctor_controller_status"),
        "pump": gauge("posproctor_pump_status", ("fueling_point_id",)),
        "dcr": gauge("posproctor_dcr_status", ("fueling_point_id",)),
        "pd": gauge("posproctor_price_display_status", ("display_id",)),
        "pf": gauge("posproctor_primary_fep_status", ("fep_name",)),
        "lf": gauge("posproctor_loyalty_fep_status"),
        "tank": gauge("posproctor_tank_sensor_status"),
        "ok": gauge("posproctor_scrape_success"),
        "info": gauge(
            "posproctor_commander_error_state_info",
            ("status", "last_error_type", "last_error_message"),
        ),
        "dur": Histogram(
            "posproctor_query_duration_seconds", "d", [*base, "endpoint"], registry=reg
        ),
        "fail": counter("posproctor_query_failures", ("error_type",)),
        "auth": counter("posproctor_auth_failures"),
        "timeout": counter("posproctor_timeout_errors"),
        "conn": counter("posproctor_connection_errors"),
        "last": gauge("posproctor_last_successful_connection_timestamp"),
        "consec": gauge("posproctor_consecutive_failures"),
        "age": gauge("posproctor_store_report_age_seconds"),
        "stale": gauge("posproctor_store_stale"),
        "missed": counter("posproctor_store_reports_missed"),
    }
    for store in snap.stores:
        _fill_plain(m, store, snap.now)
    return reg


def _fill_plain(m: dict[str, Any], store: StoreView, now: float) -> None:
    s = store.status
    lab = (s.store, s.ip, s.group, s.brand, store.agent)
    m["controller"].labels(*lab).set(s.controller.online)
    for key, devices in (("pump", s.pumps), ("dcr", s.dcrs), ("pd", s.price_displays)):
        for d in devices:
            m[key].labels(*lab, d.id).set(d.online)
    m["pf"].labels(*lab, s.primary_fep.name).set(bool(s.primary_fep.connected))
    m["lf"].labels(*lab).set(bool(s.loyalty_fep.connected))
    m["tank"].labels(*lab).set(s.tank_sensor.online)
    m["ok"].labels(*lab).set(s.ok)
    state = "healthy" if s.ok else "error"
    m["info"].labels(*lab, state, str(s.error_type or ""), s.error).set(1)
    for endpoint, seconds in s.durations.items():
        m["dur"].labels(*lab, endpoint).observe(seconds)
    for error_type, count in store.failures.items():
        m["fail"].labels(*lab, error_type).inc(count)
    m["auth"].labels(*lab).inc(store.auth_failures)
    m["timeout"].labels(*lab).inc(store.timeout_errors)
    m["conn"].labels(*lab).inc(store.connection_errors)
    if store.last_success is not None:
        m["last"].labels(*lab).set(store.last_success)
    m["consec"].labels(*lab).set(store.consecutive_failures)
    m["age"].labels(*lab).set(now - store.seen)
    m["stale"].labels(*lab).set(0)
    m["missed"].labels(*lab).inc(store.missed_reports)


def bench_render(stores: int) -> dict[str, float]:
    """Return render figures for ours and the plain labelled implementation."""
    from prometheus_client import disable_created_metrics, generate_latest

    disable_created_metrics()  # a fair baseline: no extra _created series
    state = filled_state(stores)
    ours, size = best_of(3, FleetCollector(state.snapshot).render)
    plain = plain_registry(state.snapshot())
    theirs, plain_size = best_of(2, lambda: generate_latest(plain))
    text = FleetCollector(state.snapshot).render()
    samples = sum(1 for line in text.splitlines() if not line.startswith(b"#"))
    return {
        "render_s": ours,
        "render_bytes": size,
        "samples_per_store": samples / stores,
        "plain_render_s": theirs,
        "plain_bytes": plain_size,
        "speedup": theirs / ours,
    }


def rss_child(stores: int) -> None:
    """Fill a state, render once, print RSS in MB (runs in a subprocess)."""
    import psutil

    state = filled_state(stores)
    FleetCollector(state.snapshot).render()
    print(psutil.Process().memory_info().rss / 1e6)


def bench_rss(stores: int) -> float:
    """Return the RSS in MB of a fresh process holding ``stores`` stores."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.bench_aggregator", "--rss-child", str(stores)],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stores", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--broker-messages", type=int, default=10_000)
    parser.add_argument("--no-broker", action="store_true")
    parser.add_argument("--rss-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child(args.rss_child)
        return
    figures: dict[str, float] = {"stores": args.stores}
    figures["ingest_per_s"] = bench_ingest(args.stores, args.messages)
    if not args.no_broker:
        rate, applied = bench_broker(args.stores, args.broker_messages)
        figures["broker_ingest_per_s"] = rate
        figures["broker_applied"] = applied
        figures["broker_sent"] = args.broker_messages
    figures.update(bench_render(args.stores))
    figures["rss_mb"] = bench_rss(args.stores)
    print_table(figures)
    print(json.dumps({k: round(v, 4) for k, v in figures.items()}))


def print_table(f: dict[str, float]) -> None:
    """Print the figures against their targets."""
    rows = [
        ("ingest in process (statuses/s)", f"{f['ingest_per_s']:,.0f}", ">= 20,000"),
        (
            "ingest via Mosquitto (statuses/s)",
            f"{f['broker_ingest_per_s']:,.0f}" if "broker_ingest_per_s" in f else "-",
            f"(applied {f.get('broker_applied', 0):,.0f}"
            f" of {f.get('broker_sent', 0):,.0f})",
        ),
        (
            f"/metrics render, {f['stores']:,.0f} stores (s)",
            f"{f['render_s']:.3f}",
            "<= 0.5",
        ),
        ("  size (MB)", f"{f['render_bytes'] / 1e6:.1f}", ""),
        ("  samples per store", f"{f['samples_per_store']:.1f}", "~30+"),
        ("plain labelled metrics render (s)", f"{f['plain_render_s']:.3f}", ""),
        ("  size (MB)", f"{f['plain_bytes'] / 1e6:.1f}", ""),
        ("speed-up over plain", f"{f['speedup']:.1f}x", ">= 3x"),
        (f"RSS at {f['stores']:,.0f} stores (MB)", f"{f['rss_mb']:.0f}", "<= 300"),
    ]
    print(f"{'figure':<38} {'value':>12}  target")
    for name, value, target in rows:
        print(f"{name:<38} {value:>12}  {target}")


if __name__ == "__main__":
    main()
