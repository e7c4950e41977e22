"""Prometheus exposition of the fleet, built at scrape time from a snapshot.

No labelled metric objects are ever created from message content: each
scrape takes one ``FleetState.snapshot()`` and writes every family from it,
so a store that disappears or goes stale simply stops being written.

``render()`` writes Prometheus text format 0.0.4 directly: with 10,000
stores of about 30 series each, building prometheus_client metric families
sample by sample and formatting them costs several times more (see
``bench/bench_aggregator.py``). ``collect()`` still offers the same families
through the standard Collector protocol, parsed back from that text, for
callers that want them in a registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from aggregator.state import (
    CYCLE_BUCKETS,
    QUERY_BUCKETS,
    RESULTS,
    AgentView,
    FleetSnapshot,
    Histo,
    StoreView,
)
from shared.model import Device, Fep, StoreStatus

STORE_LABELS = "store, ip, group, brand, agent"


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One exposed family: its name as written, type and help text."""

    name: str
    type: str
    help: str


def _spec(name: str, kind: str, text: str) -> MetricSpec:
    return MetricSpec(name, kind, text)


G, C, H = "gauge", "counter", "histogram"
SPECS: tuple[MetricSpec, ...] = (
    _spec("posproctor_controller_status", G,
          "Forecourt controller status (1=online, 0=offline)."),
    _spec("posproctor_pump_status", G,
          "Pump status by fueling point (1=online, 0=offline)."),
    _spec("posproctor_dcr_status", G,
          "Dispenser card reader status by fueling point (1=online, 0=offline)."),
    _spec("posproctor_price_display_status", G,
          "Fuel price display status (1=online, 0=offline)."),
    _spec("posproctor_primary_fep_status", G,
          "Primary card processor FEP link (1=connected, 0=otherwise)."),
    _spec("posproctor_loyalty_fep_status", G,
          "Loyalty FEP link (1=connected, 0=otherwise)."),
    _spec("posproctor_pos_register_status", G,
          "POS register status (1=online, 0=offline)."),
    _spec("posproctor_pinpad_status", G, "PIN pad status (1=online, 0=offline)."),
    _spec("posproctor_tank_sensor_status", G,
          "Tank sensor (ATG) status (1=online, 0=offline)."),
    _spec("posproctor_password_expiry_days", G,
          "Days until the monitoring account's Commander password expires."),
    _spec("posproctor_scrape_success", G,
          "Whether the last poll of the Commander succeeded (1) or failed (0)."),
    _spec("posproctor_commander_error_state_info", G,
          "Current error state and last error of each Commander."),
    _spec("posproctor_query_duration_seconds", H,
          "Time spent querying Commander endpoints, by endpoint."),
    _spec("posproctor_query_failures_total", C,
          "Failed polls per Commander by error type."),
    _spec("posproctor_auth_failures_total", C,
          "Authentication failures per Commander."),
    _spec("posproctor_timeout_errors_total", C, "Timeout errors per Commander."),
    _spec("posproctor_connection_errors_total", C,
          "Connection errors per Commander."),
    _spec("posproctor_last_successful_connection_timestamp", G,
          "Unix time of the last successful poll of the Commander."),
    _spec("posproctor_consecutive_failures", G,
          "Consecutive failed polls of the Commander."),
    _spec("posproctor_store_report_age_seconds", G,
          "Seconds since the store's agent last reported its status."),
    _spec("posproctor_store_stale", G,
          "1 if the store has not reported within its staleness window "
          "(stale_after_intervals x its agent's interval); its device series "
          "are then dropped."),
    _spec("posproctor_store_reports_missed_total", C,
          "Poll cycles for which no status arrived from the store "
          "(gaps in its cycle numbers)."),
    _spec("posproctor_scrape_cycle_duration_seconds", H,
          "Duration of each agent's poll cycles."),
    _spec("posproctor_concurrent_queries", G,
          "Peak concurrent Commander queries in the agent's last cycle."),
    _spec("posproctor_total_systems", G,
          "Commanders in the agent's inventory by enabled state (last cycle)."),
    _spec("posproctor_agent_up", G,
          "1 if the agent is connected (birth message), 0 after its last will."),
    _spec("posproctor_agent_last_report_timestamp_seconds", G,
          "Unix time the aggregator last received a report from the agent."),
    _spec("posproctor_agent_reports_missed_total", C,
          "Messages the agent numbered but the aggregator never received "
          "(sequence gaps within one agent run)."),
    _spec("posproctor_agent_report_completeness_ratio", G,
          "Status reports received / reports expected in the agent's current "
          "run: expected is the sum of stores polled over the cycles whose "
          "summary arrived."),
    _spec("posproctor_aggregator_messages_total", C,
          "MQTT messages handled by the aggregator, by result."),
    _spec("posproctor_aggregator_decode_errors_total", C,
          "Payloads the aggregator could not decode, by reason."),
    _spec("posproctor_aggregator_stores", G, "Stores the aggregator holds."),
    _spec("posproctor_aggregator_agents", G, "Agents the aggregator knows."),
    _spec("posproctor_aggregator_stores_refused_total", C,
          "New stores refused because the store cap was reached."),
)  # fmt: skip
SPEC_BY_NAME = {spec.name: spec for spec in SPECS}

_VALUE = ("0.0\n", "1.0\n")
_QUERY_LE = (*(repr(b) for b in QUERY_BUCKETS), "+Inf")
_CYCLE_LE = (*(repr(b) for b in CYCLE_BUCKETS), "+Inf")

Lines = dict[str, list[str]]


def _esc(value: str) -> str:
    """Escape a label value for the text format."""
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def _num(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    if value == float("-inf"):
        return "-Inf"
    return repr(float(value))


def store_labels(store: StoreView) -> str:
    """Return the escaped ``store, ip, group, brand, agent`` label pairs."""
    s = store.status
    return (
        f'store="{_esc(s.store)}",ip="{_esc(s.ip)}",group="{_esc(s.group)}",'
        f'brand="{_esc(s.brand)}",agent="{_esc(store.agent)}"'
    )


class FleetCollector(Collector):
    """Expose a FleetState's snapshot as Prometheus metrics."""

    def __init__(self, snapshot: Callable[[], FleetSnapshot]) -> None:
        self._snapshot = snapshot

    def render(self) -> bytes:
        """Return the fleet's metrics in Prometheus text format 0.0.4."""
        return render_snapshot(self._snapshot()).encode("utf-8")

    def collect(self) -> Iterator[Metric]:
        """Yield the same families as ``render()`` for a CollectorRegistry.

        The families are parsed back from the text, which is slow for a
        large fleet (seconds at 10,000 stores): ``/metrics`` uses ``render()``.
        """
        yield from text_string_to_metric_families(self.render().decode("utf-8"))

    def describe(self) -> Iterable[Metric]:
        """Describe nothing: series depend on the fleet, so collect at scrape."""
        return ()


def render_snapshot(snap: FleetSnapshot) -> str:
    """Return the text exposition of one snapshot."""
    lines: Lines = {spec.name: [] for spec in SPECS}
    for store in snap.stores:
        _store_lines(lines, store, snap)
    for agent in snap.agents:
        _agent_lines(lines, agent)
    _self_lines(lines, snap)
    out: list[str] = []
    for spec in SPECS:
        out.append(f"# HELP {spec.name} {spec.help}\n# TYPE {spec.name} {spec.type}\n")
        out.extend(lines[spec.name])
    return "".join(out)


def _store_lines(lines: Lines, store: StoreView, snap: FleetSnapshot) -> None:
    base = store_labels(store)
    stale = snap.is_stale(store)
    if not stale:
        _device_lines(lines, base, store.status)
    _history_lines(lines, base, store)
    age = max(0.0, snap.now - store.seen)
    lines["posproctor_store_report_age_seconds"].append(
        f"posproctor_store_report_age_seconds{{{base}}} {_num(age)}\n"
    )
    lines["posproctor_store_stale"].append(
        f"posproctor_store_stale{{{base}}} {_VALUE[stale]}"
    )


def _device_lines(lines: Lines, base: str, s: StoreStatus) -> None:
    if s.controller is not None:
        _one(lines, "posproctor_controller_status", base, s.controller)
    _many(lines, "posproctor_pump_status", base, "fueling_point_id", s.pumps)
    _many(lines, "posproctor_dcr_status", base, "fueling_point_id", s.dcrs)
    _many(
        lines, "posproctor_price_display_status", base, "display_id", s.price_displays
    )
    _many(lines, "posproctor_pos_register_status", base, "register_id", s.registers)
    _many(lines, "posproctor_pinpad_status", base, "pinpad_id", s.pinpads)
    if s.tank_sensor is not None:
        _one(lines, "posproctor_tank_sensor_status", base, s.tank_sensor)
    _fep_lines(lines, base, s.primary_fep, s.loyalty_fep)
    if s.password_days is not None:
        lines["posproctor_password_expiry_days"].append(
            f"posproctor_password_expiry_days{{{base}}} {_num(s.password_days)}\n"
        )
    lines["posproctor_scrape_success"].append(
        f"posproctor_scrape_success{{{base}}} {_VALUE[s.ok]}"
    )
    lines["posproctor_commander_error_state_info"].append(
        f'posproctor_commander_error_state_info{{{base},status="'
        f'{"healthy" if s.ok else "error"}",last_error_type="'
        f'{_esc(str(s.error_type or ""))}",last_error_message="{_esc(s.error)}"}}'
        " 1.0\n"
    )


def _one(lines: Lines, name: str, base: str, device: Device) -> None:
    lines[name].append(f"{name}{{{base}}} {_VALUE[device.online]}")


def _many(
    lines: Lines, name: str, base: str, label: str, devices: tuple[Device, ...]
) -> None:
    target = lines[name]
    for d in devices:
        target.append(f'{name}{{{base},{label}="{_esc(d.id)}"}} {_VALUE[d.online]}')


def _fep_lines(
    lines: Lines, base: str, primary: Fep | None, loyalty: Fep | None
) -> None:
    if primary is not None:
        lines["posproctor_primary_fep_status"].append(
            f'posproctor_primary_fep_status{{{base},fep_name="{_esc(primary.name)}"}} '
            f"{_VALUE[primary.connected is True]}"
        )
    if loyalty is not None:
        lines["posproctor_loyalty_fep_status"].append(
            f"posproctor_loyalty_fep_status{{{base}}} "
            f"{_VALUE[loyalty.connected is True]}"
        )


def _history_lines(lines: Lines, base: str, store: StoreView) -> None:
    target = lines["posproctor_query_duration_seconds"]
    for endpoint, histo in store.durations.items():
        labels = f'{base},endpoint="{_esc(endpoint)}"'
        _histogram(
            target, "posproctor_query_duration_seconds", labels, histo, _QUERY_LE
        )
    failures = lines["posproctor_query_failures_total"]
    for error_type, count in store.failures.items():
        failures.append(
            f'posproctor_query_failures_total{{{base},error_type="{_esc(error_type)}"}}'
            f" {_num(count)}\n"
        )
    for name, value in (
        ("posproctor_auth_failures_total", store.auth_failures),
        ("posproctor_timeout_errors_total", store.timeout_errors),
        ("posproctor_connection_errors_total", store.connection_errors),
        ("posproctor_consecutive_failures", store.consecutive_failures),
        ("posproctor_store_reports_missed_total", store.missed_reports),
    ):
        lines[name].append(f"{name}{{{base}}} {_num(value)}\n")
    if store.last_success is not None:
        name = "posproctor_last_successful_connection_timestamp"
        lines[name].append(f"{name}{{{base}}} {_num(store.last_success)}\n")


def _histogram(
    target: list[str], name: str, labels: str, histo: Histo, les: tuple[str, ...]
) -> None:
    cumulative = 0
    sep = "," if labels else ""
    for le, count in zip(les, histo.counts, strict=True):
        cumulative += count
        target.append(f'{name}_bucket{{{labels}{sep}le="{le}"}} {cumulative}.0\n')
    braces = f"{{{labels}}}" if labels else ""
    target.append(f"{name}_sum{braces} {_num(histo.total)}\n")
    target.append(f"{name}_count{braces} {cumulative}.0\n")


def _agent_lines(lines: Lines, agent: AgentView) -> None:
    label = f'agent="{_esc(agent.agent)}"'
    _histogram(
        lines["posproctor_scrape_cycle_duration_seconds"],
        "posproctor_scrape_cycle_duration_seconds",
        label,
        agent.cycle_durations,
        _CYCLE_LE,
    )
    _gauge(lines, "posproctor_agent_up", label, agent.up)
    _gauge(lines, "posproctor_agent_reports_missed_total", label, agent.reports_missed)
    if agent.last_report is not None:
        _gauge(
            lines, "posproctor_agent_last_report_timestamp_seconds", label,
            agent.last_report,
        )  # fmt: skip
    if agent.completeness is not None:
        _gauge(
            lines, "posproctor_agent_report_completeness_ratio", label,
            agent.completeness,
        )  # fmt: skip
    if agent.cycle is not None:
        cycle = agent.cycle
        _gauge(lines, "posproctor_concurrent_queries", label, cycle.peak_concurrency)
        name = "posproctor_total_systems"
        _gauge(lines, name, f'enabled="true",{label}', cycle.stores)
        _gauge(lines, name, f'enabled="false",{label}', cycle.disabled)


def _gauge(lines: Lines, name: str, labels: str, value: float) -> None:
    braces = f"{{{labels}}}" if labels else ""
    lines[name].append(f"{name}{braces} {_num(value)}\n")


def _self_lines(lines: Lines, snap: FleetSnapshot) -> None:
    name = "posproctor_aggregator_messages_total"
    for result in RESULTS:
        _gauge(lines, name, f'result="{result}"', snap.messages.get(result, 0))
    name = "posproctor_aggregator_decode_errors_total"
    for reason, count in sorted(snap.decode_errors.items()):
        _gauge(lines, name, f'reason="{_esc(reason)}"', count)
    _gauge(lines, "posproctor_aggregator_stores", "", len(snap.stores))
    _gauge(lines, "posproctor_aggregator_agents", "", len(snap.agents))
    _gauge(lines, "posproctor_aggregator_stores_refused_total", "", snap.stores_refused)
