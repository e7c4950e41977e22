"""The exposition: parsed back with prometheus_client and compared to the input."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from aggregator.collector import SPECS, FleetCollector
from aggregator.state import FleetState
from shared.model import AgentState, ErrorType
from tests.aggregator.helpers import Clock, birth, envelope, status, summary

STORE = {
    "store": "Store 1",
    "ip": "10.0.0.1",
    "group": "North",
    "brand": "Shell",
    "agent": "edge-1",
}


def _families(fleet: FleetState) -> dict:
    text = FleetCollector(fleet.snapshot).render().decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def _values(families: dict, name: str, label: str | None = None) -> dict:
    family = families[name.removesuffix("_total")]
    return {
        (s.labels.get(label) if label else None): s.value
        for s in family.samples
        if {k: s.labels.get(k) for k in STORE} == STORE
    }


def _fleet_with_one_store(clock: Clock | None = None, **kw) -> FleetState:
    fleet = FleetState(clock=clock or Clock())
    fleet.apply(envelope(birth(interval=60.0), seq=1), "edge-1")
    fleet.apply(envelope(status(**kw), seq=2), "edge-1", "store-1")
    return fleet


def test_every_device_class_matches_the_status():
    sent = status()
    fams = _families(_fleet_with_one_store())
    assert _values(fams, "posproctor_controller_status") == {None: 1.0}
    for name, label, devices in (
        ("posproctor_pump_status", "fueling_point_id", sent.pumps),
        ("posproctor_dcr_status", "fueling_point_id", sent.dcrs),
        ("posproctor_price_display_status", "display_id", sent.price_displays),
        ("posproctor_pos_register_status", "register_id", sent.registers),
        ("posproctor_pinpad_status", "pinpad_id", sent.pinpads),
    ):
        expected = {d.id: float(d.online) for d in devices}
        assert _values(fams, name, label) == expected, name
    assert _values(fams, "posproctor_tank_sensor_status") == {None: 1.0}
    assert _values(fams, "posproctor_primary_fep_status", "fep_name") == {
        "buypass": 1.0
    }
    assert _values(fams, "posproctor_loyalty_fep_status") == {None: 1.0}
    assert _values(fams, "posproctor_password_expiry_days") == {None: 12.0}
    assert _values(fams, "posproctor_scrape_success") == {None: 1.0}


def test_disconnected_loyalty_is_zero_and_missing_loyalty_has_no_series():
    fams = _families(_fleet_with_one_store(loyalty=False))
    assert _values(fams, "posproctor_loyalty_fep_status") == {None: 0.0}
    fams = _families(_fleet_with_one_store(loyalty=None))
    assert _values(fams, "posproctor_loyalty_fep_status") == {}


def test_failed_poll_shows_error_state_and_counters():
    fams = _families(_fleet_with_one_store(error=ErrorType.AUTH))
    assert _values(fams, "posproctor_scrape_success") == {None: 0.0}
    assert _values(fams, "posproctor_query_failures_total", "error_type") == {
        "auth": 1.0
    }
    assert _values(fams, "posproctor_auth_failures_total") == {None: 1.0}
    assert _values(fams, "posproctor_timeout_errors_total") == {None: 0.0}
    assert _values(fams, "posproctor_consecutive_failures") == {None: 1.0}
    info = fams["posproctor_commander_error_state_info"].samples[0].labels
    assert info["status"] == "error"
    assert info["last_error_type"] == "auth"
    assert info["last_error_message"] == "auth while polling"
    assert _values(fams, "posproctor_pump_status", "fueling_point_id") == {}


def test_query_duration_histogram_has_default_buckets():
    fams = _families(_fleet_with_one_store())
    samples = [
        s
        for s in fams["posproctor_query_duration_seconds"].samples
        if s.labels.get("endpoint") == "diagnostics"
    ]
    buckets = {s.labels["le"]: s.value for s in samples if s.name.endswith("_bucket")}
    assert len(buckets) == 15
    assert buckets["0.1"] == 0.0
    assert buckets["0.25"] == 1.0
    assert buckets["+Inf"] == 1.0
    count = next(s for s in samples if s.name.endswith("_count"))
    assert count.value == 1.0


def test_stale_store_loses_device_series_but_keeps_age_and_counters():
    clock = Clock()
    fleet = _fleet_with_one_store(clock, error=ErrorType.TIMEOUT)
    fleet.apply(
        envelope(status(cycle=2, poll_time=clock.now + 1), seq=3), "edge-1", "store-1"
    )
    clock.now += 1000
    fams = _families(fleet)
    for name in (
        "posproctor_controller_status",
        "posproctor_pump_status",
        "posproctor_scrape_success",
        "posproctor_primary_fep_status",
        "posproctor_commander_error_state_info",
    ):
        assert not fams[name].samples, name
    assert _values(fams, "posproctor_store_stale") == {None: 1.0}
    assert _values(fams, "posproctor_store_report_age_seconds") == {None: 1000.0}
    assert _values(fams, "posproctor_timeout_errors_total") == {None: 1.0}
    assert _values(fams, "posproctor_last_successful_connection_timestamp")


def test_agent_series():
    fleet = _fleet_with_one_store()
    fleet.apply(envelope(summary(1, stores=1, disabled=2, peak_concurrency=5), seq=3),
                "edge-1")  # fmt: skip
    fams = _families(fleet)

    def agent_values(name: str, label: str | None = None) -> dict:
        return {
            (s.labels.get(label) if label else s.labels["agent"]): s.value
            for s in fams[name].samples
            if s.name == name or s.name == name + "_total"
        }

    assert agent_values("posproctor_agent_up") == {"edge-1": 1.0}
    assert agent_values("posproctor_concurrent_queries") == {"edge-1": 5.0}
    assert agent_values("posproctor_total_systems", "enabled") == {
        "true": 1.0,
        "false": 2.0,
    }
    assert agent_values("posproctor_agent_report_completeness_ratio") == {"edge-1": 1.0}
    cycle = fams["posproctor_scrape_cycle_duration_seconds"].samples
    assert any(s.name.endswith("_count") and s.value == 1.0 for s in cycle)
    fleet.apply(envelope(AgentState(online=False), seq=4), "edge-1")
    assert _families(fleet)["posproctor_agent_up"].samples[0].value == 0.0


def test_self_metrics_count_messages_and_decode_errors():
    fleet = _fleet_with_one_store()
    fleet.record_decode_error("malformed")
    fams = _families(fleet)
    results = {
        s.labels["result"]: s.value
        for s in fams["posproctor_aggregator_messages"].samples
    }
    assert results["applied"] == 2.0
    assert results["decode_error"] == 1.0
    reasons = fams["posproctor_aggregator_decode_errors"].samples
    assert [(s.labels["reason"], s.value) for s in reasons] == [("malformed", 1.0)]
    assert fams["posproctor_aggregator_stores"].samples[0].value == 1.0
    assert fams["posproctor_aggregator_agents"].samples[0].value == 1.0


def test_every_metric_has_help_text_and_a_type():
    text = FleetCollector(_fleet_with_one_store().snapshot).render().decode()
    for spec in SPECS:
        assert f"# HELP {spec.name} " in text
        assert f"# TYPE {spec.name} {spec.type}" in text
        assert len(spec.help) > 20


def test_label_values_are_escaped():
    fleet = FleetState(clock=Clock())
    weird = status('Joe\'s "Gas" \\ Go')
    slug = "joe-s-gas-go"
    assert fleet.apply(envelope(weird), "edge-1", slug) == "applied"
    text = FleetCollector(fleet.snapshot).render().decode()
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    stores = {s.labels["store"] for s in fams["posproctor_controller_status"].samples}
    assert stores == {'Joe\'s "Gas" \\ Go'}


def test_collector_works_in_a_private_registry():
    registry = CollectorRegistry()
    registry.register(FleetCollector(_fleet_with_one_store().snapshot))
    text = generate_latest(registry).decode()
    assert 'posproctor_pump_status{agent="edge-1"' in text
    assert "posproctor_aggregator_messages_total" in text


def test_the_metrics_reference_lists_every_exposed_family():
    from pathlib import Path

    from aggregator.collector import SPECS

    doc = (Path(__file__).resolve().parents[2] / "docs/metrics.md").read_text()
    missing = [spec.name for spec in SPECS if f"`{spec.name}`" not in doc]
    assert missing == []
