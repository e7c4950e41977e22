"""Agent process -> real Mosquitto -> aggregator process -> HTTP GET /metrics."""

from __future__ import annotations

import signal
import time

import paho.mqtt.client as mqtt

from tests.conftest import BROKER_USERS
from tests.e2e.conftest import SIM_PASSWORD, Site, wait_until


def _store_labels(site: Site, store: str) -> dict[str, str]:
    sim_store = next(s for s in site.sim.stores if s.name == store)
    host, _ = site.sim.address(store)
    return {
        "store": store,
        "ip": host,
        "group": sim_store.group,
        "brand": sim_store.brand,
    }


def _by_id(site: Site, name: str, id_label: str, store: str) -> dict[str, bool]:
    return {
        s.labels[id_label]: s.value == 1.0
        for s in site.metrics().get(name, [])
        if s.labels["store"] == store
    }


def _all_reported(site: Site, agent: str) -> bool:
    ok = site.metrics().get("posproctor_scrape_success", [])
    return len([s for s in ok if s.labels["agent"] == agent]) == len(site.sim.stores)


def _break_things(site: Site) -> tuple[str, str]:
    names = [s.name for s in site.sim.stores]
    faulty, dark = names[0], names[1]
    site.sim.set_fault("pump_offline", [faulty], ids=["2"])
    site.sim.set_fault("dcr_offline", [faulty], ids=["1"])
    site.sim.set_fault("price_display_offline", [faulty], count=1)
    site.sim.set_fault("fep_disconnected", [faulty])
    site.sim.set_fault("register_offline", [faulty], count=1)
    site.sim.set_fault("pinpad_offline", [faulty], count=1)
    site.sim.set_fault("controller_offline", [names[2]])
    site.sim.set_fault("connection_refused", [dark])
    return faulty, dark


def test_metrics_match_the_simulated_fleet_for_every_device_class(site):
    faulty, dark = _break_things(site)
    site.start_aggregator()
    site.start_agent("edge-1")
    wait_until(lambda: _all_reported(site, "edge-1"), what="every store reported")
    for store in site.sim.stores:
        truth = site.sim.expected(store.name)
        labels = {**_store_labels(site, store.name), "agent": "edge-1"}
        if store.name == dark:
            assert site.value("posproctor_scrape_success", **labels) == 0.0
            assert (
                site.value(
                    "posproctor_query_failures_total", error_type="connection", **labels
                )
                >= 1.0
            )
            continue
        assert site.value("posproctor_scrape_success", **labels) == 1.0
        controller = site.value("posproctor_controller_status", **labels)
        assert controller == float(truth["controller"])
        for metric, label, key in (
            ("posproctor_pump_status", "fueling_point_id", "pumps"),
            ("posproctor_dcr_status", "fueling_point_id", "dcrs"),
            ("posproctor_price_display_status", "display_id", "price_displays"),
            ("posproctor_pos_register_status", "register_id", "registers"),
            ("posproctor_pinpad_status", "pinpad_id", "pinpads"),
        ):
            assert _by_id(site, metric, label, store.name) == truth[key], metric
        fep_name, connected = truth["primary_fep"]
        fep = site.value("posproctor_primary_fep_status", fep_name=fep_name, **labels)
        assert fep == float(connected)
        loyalty = site.value("posproctor_loyalty_fep_status", **labels)
        if truth["loyalty_fep"] is None:
            assert loyalty is None
        else:
            assert loyalty == float(truth["loyalty_fep"][1] is True)
    assert (
        _by_id(site, "posproctor_pump_status", "fueling_point_id", faulty)["2"] is False
    )
    assert site.value("posproctor_agent_up", agent="edge-1") == 1.0
    exposed = "".join(proc.log() for proc in site.procs) + str(site.metrics())
    for secret in (SIM_PASSWORD, BROKER_USERS["edge-1"], BROKER_USERS["aggregator"]):
        assert secret not in exposed


def test_an_agent_cannot_publish_under_another_agents_topics(site):
    site.start_aggregator()
    honest = site.start_agent("edge-2")
    # edge-1's broker login, configured to claim it is edge-2's sibling "edge-9".
    impostor = site.start_agent("edge-9", user="edge-1")
    wait_until(lambda: _all_reported(site, "edge-2"), what="edge-2 reported")
    wait_until(lambda: impostor.log().count("cycle done") >= 2, what="impostor cycles")
    agents = {
        s.labels.get("agent") for s in site.metrics()["posproctor_scrape_success"]
    }
    assert agents == {"edge-2"}
    assert site.value("posproctor_agent_up", agent="edge-9") is None
    assert honest.alive() and impostor.alive()


def test_broker_restart_both_sides_reconnect_and_data_flows_again(site):
    site.start_aggregator()
    agent = site.start_agent("edge-1")
    wait_until(lambda: _all_reported(site, "edge-1"), what="first reports")
    site.broker.stop()
    time.sleep(2)
    site.broker.start()
    restarted = time.time()

    def fresh_report() -> bool:
        last = site.value(
            "posproctor_agent_last_report_timestamp_seconds", agent="edge-1"
        )
        return last is not None and last > restarted

    wait_until(fresh_report, timeout=60, what="a report after the broker restart")
    assert agent.alive()
    assert site.procs[0].alive()
    assert "link" in agent.log().lower()


def test_aggregator_restart_recovers_the_fleet_from_retained_messages(site):
    site.start_aggregator()
    site.start_agent("edge-1", interval_s=600)  # the next cycle is ten minutes away
    wait_until(lambda: _all_reported(site, "edge-1"), what="first reports")
    before = site.metrics()["posproctor_pump_status"]
    site.procs[0].stop()
    site.start_aggregator()
    wait_until(lambda: _all_reported(site, "edge-1"), timeout=20, what="state back")
    after = site.metrics()["posproctor_pump_status"]
    assert sorted(
        (s.labels["store"], s.labels["fueling_point_id"], s.value) for s in after
    ) == sorted(
        (s.labels["store"], s.labels["fueling_point_id"], s.value) for s in before
    )


def test_killed_agent_goes_down_by_its_will_and_its_stores_go_stale(site):
    site.start_aggregator(stale_after_intervals=2)
    agent = site.start_agent("edge-1", interval_s=3)
    wait_until(lambda: _all_reported(site, "edge-1"), what="first reports")
    agent.stop(signal.SIGKILL)
    wait_until(
        lambda: site.value("posproctor_agent_up", agent="edge-1") == 0.0,
        timeout=60,
        what="agent_up 0 from the last will",
    )
    wait_until(
        lambda: not site.metrics().get("posproctor_pump_status"),
        timeout=30,
        what="device series gone after the staleness window",
    )
    stale = [s for s in site.metrics()["posproctor_store_stale"] if s.value == 1.0]
    assert len(stale) == len(site.sim.stores)
    ages = site.metrics()["posproctor_store_report_age_seconds"]
    assert all(s.value >= 6 for s in ages)


def test_garbage_payloads_are_counted_and_the_aggregator_keeps_serving(site):
    site.start_aggregator()
    site.start_agent("edge-1")
    wait_until(lambda: _all_reported(site, "edge-1"), what="first reports")
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="garbage")
    client.username_pw_set("edge-2", BROKER_USERS["edge-2"])
    client.connect("127.0.0.1", site.broker.port)
    client.loop_start()
    topic = "posproctor/v1/agents/edge-2/stores/store-x/status"
    for payload in (b"\xc1\xc1", b"\x82\xa1v", b"x" * 300_000, b"\x81\xa1v\x63"):
        client.publish(topic, payload, qos=1).wait_for_publish(5)
    client.loop_stop()
    client.disconnect()

    def counted() -> float:
        errors = site.metrics().get("posproctor_aggregator_decode_errors_total", [])
        return sum(s.value for s in errors) >= 4

    wait_until(counted, what="four decode errors counted")
    assert _all_reported(site, "edge-1")
    assert site.procs[0].alive()
