"""Each fault shows up in what the store serves and in ``expected()``."""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET

import pytest
import requests

from simulator import Simulator
from tests.simulator.conftest import DIAG, PASSWORD, USER, Client, fault_of


def _healthy(device: ET.Element) -> bool:
    return device.get("status") == "Online" and device.get("isAvailable") == "true"


def _connected(text: str | None) -> bool | None:
    return {"true": True, "false": False}.get(text or "")


def served_truth(client: Client) -> dict:
    """Read the store's state the way a poller would, from the XML alone."""
    forecourt = ET.fromstring(client.data("vforecourtdiagnostics").content)
    payment = ET.fromstring(client.data("vpaymentdiagnostics").content)
    pos = ET.fromstring(client.data("vposdiagnostics").content)
    controller = forecourt.find("forecourtDiagnostics/controller")
    peripherals = controller.find(f"{DIAG}peripherals").findall("device")
    truth = {
        "controller": controller.get("status") == "Online",
        "pumps": {},
        "dcrs": {},
        "price_displays": {
            d.get("id"): _healthy(d)
            for d in peripherals
            if d.get("type") == "Fuel Price Display"
        },
        "tank_sensor": next(
            (_healthy(d) for d in peripherals if d.get("type") == "Tank Level Sensor"),
            None,
        ),
    }
    for point in controller.findall("fuelingPoint"):
        for device in point.findall("device"):
            kind = "pumps" if device.get("type") == "Pump" else "dcrs"
            truth[kind][point.get("sysid")] = _healthy(device)
    feps = {
        f.get("fepName"): (
            f.get("isPrimary"),
            _connected(f.findtext("connectionStatus")),
        )
        for f in payment.iter("fepDetail")
    }
    primary = [(name, c) for name, (p, c) in feps.items() if p == "true"]
    truth["primary_fep"] = primary[0] if primary else None
    loyalty = [(n, c) for n, (_, c) in feps.items() if n.lower() == "rewards 2 go"]
    truth["loyalty_fep"] = loyalty[0] if loyalty else None
    truth["feps"] = {name: c for name, (_, c) in feps.items()}
    truth["pinpads"] = {
        p.get("popID"): _connected(p.findtext("connectionStatus"))
        for p in payment.iter("pinpadDetail")
    }
    truth["registers"] = {
        t.get("sysid"): t.get("status") == "Online" for t in pos.iter("posTerminal")
    }
    return truth


def devices(expected: dict) -> dict:
    return {
        k: v
        for k, v in expected.items()
        if k not in ("error_type", "slow_seconds", "password_days")
    }


@pytest.fixture
def rich(make_sim) -> Simulator:
    """A store with DCRs, price signs, loyalty, a tank sensor and tills."""
    sim = make_sim(12)
    return sim


def _rich_store(sim: Simulator) -> str:
    for store in sim.stores:
        if (
            store.loyalty_fep
            and len(store.price_displays) >= 2
            and sum(fp.has_dcr for fp in store.fueling_points) >= 3
            and store.tank_sensor
            and len(store.registers) >= 2
        ):
            return store.name
    raise AssertionError("the seeded fleet has no rich store; change the seed")


DEVICE_FAULTS = [
    ("pump_offline", {"ids": ["2"]}, lambda t: t["pumps"]["2"] is False),
    ("dcr_offline", {"count": 2}, lambda t: list(t["dcrs"].values()).count(False) == 2),
    (
        "price_display_offline",
        {"ids": ["Channel 2"]},
        lambda t: t["price_displays"]["Channel 2"] is False,
    ),
    (
        "tank_sensor_offline",
        {"mode": "unavailable"},
        lambda t: t["tank_sensor"] is False,
    ),
    ("pinpad_offline", {"ids": ["102"]}, lambda t: t["pinpads"]["102"] is False),
    ("register_offline", {"count": 1}, lambda t: False in t["registers"].values()),
    (
        "controller_offline",
        {},
        lambda t: (
            not t["controller"]
            and not any(t["pumps"].values())
            and not any(t["dcrs"].values())
            and not any(t["price_displays"].values())
        ),
    ),
    ("fep_disconnected", {}, lambda t: t["primary_fep"][1] is False),
    ("fep_undetermined", {}, lambda t: t["primary_fep"][1] is None),
    ("loyalty_disconnected", {}, lambda t: t["loyalty_fep"][1] is False),
]


@pytest.mark.parametrize(("fault", "params", "check"), DEVICE_FAULTS)
def test_device_fault_is_served_and_expected(rich, fault, params, check):
    store = _rich_store(rich)
    client = Client(rich, store)
    client.login()
    before = served_truth(client)
    assert devices(rich.expected(store)) == before
    rich.set_fault(fault, [store], **params)
    after = served_truth(client)
    assert check(after)
    assert after != before
    assert devices(rich.expected(store)) == after
    assert rich.expected(store)["error_type"] is None
    rich.clear_fault(fault, [store])
    assert served_truth(client) == before
    client.close()


def test_unavailable_mode_serves_online_but_not_available(rich):
    store = _rich_store(rich)
    client = Client(rich, store)
    client.login()
    rich.set_fault("pump_offline", [store], ids=["1"], mode="unavailable")
    root = ET.fromstring(client.data("vforecourtdiagnostics").content)
    pump = root.find("forecourtDiagnostics/controller/fuelingPoint[@sysid='1']/device")
    assert (pump.get("status"), pump.get("isAvailable")) == ("Online", "false")
    assert rich.expected(store)["pumps"]["1"] is False
    client.close()


def test_fleet_wide_fault_hits_every_store(sim):
    sim.set_fault("fep_disconnected")
    assert all(sim.expected(s.name)["primary_fep"][1] is False for s in sim.stores)
    sim.clear_fault("fep_disconnected")
    assert all(sim.expected(s.name)["primary_fep"][1] is True for s in sim.stores)


def test_unknown_fault_or_parameter_is_refused(sim):
    with pytest.raises(ValueError, match="unknown fault"):
        sim.set_fault("pumps_on_fire")
    with pytest.raises(ValueError, match="takes no parameter"):
        sim.set_fault("controller_offline", seconds=3)
    with pytest.raises(ValueError, match="unknown command 'vforcourt'"):
        sim.set_fault("http_500", commands=["vforcourt"])
    with pytest.raises(ValueError, match="unknown store"):
        sim.set_fault("controller_offline", ["Store 9999"])


def test_http_500_is_an_html_page(sim, client):
    client.login()
    sim.set_fault("http_500", [sim.stores[0].name])
    response = client.data("vforecourtdiagnostics")
    assert response.status_code == 500
    assert "<html>" in response.text
    assert sim.expected(sim.stores[0].name)["error_type"] == "http"


def test_fault_response_on_data_commands(sim, client):
    client.login()
    store = sim.stores[0].name
    sim.set_fault("fault_response", [store], commands=["vpaymentdiagnostics"])
    assert fault_of(client.data("vpaymentdiagnostics"))[0] == "CGIPortal.InternalError"
    assert fault_of(client.data("vforecourtdiagnostics")) is None
    assert sim.expected(store)["error_type"] == "fault"


def test_truncated_body_does_not_parse(sim, client):
    client.login()
    sim.set_fault("truncated_xml", [sim.stores[0].name])
    response = client.data("vforecourtdiagnostics")
    assert response.status_code == 200
    assert response.text.startswith("<?xml")
    with pytest.raises(ET.ParseError):
        ET.fromstring(response.content)
    assert sim.expected(sim.stores[0].name)["error_type"] == "parse"


def test_truncated_connection_cuts_mid_body(sim, client):
    client.login()
    sim.set_fault("truncated_xml", [sim.stores[0].name], mode="connection")
    with pytest.raises(requests.exceptions.RequestException):
        client.data("vforecourtdiagnostics")


def test_empty_body(sim, client):
    client.login()
    sim.set_fault("empty_body", [sim.stores[0].name])
    response = client.data("vpaymentdiagnostics")
    assert response.status_code == 200
    assert response.content == b""


def test_slow_response_outlasts_a_short_client_timeout(sim, client):
    client.login()
    store = sim.stores[0].name
    sim.set_fault("slow_response", [store], seconds=1.0)
    assert sim.expected(store)["slow_seconds"] == 1.0
    with pytest.raises(requests.exceptions.Timeout):
        client.get("vforecourtdiagnostics", timeout=0.2, cookie=client.cookie)
    sim.clear_fault("slow_response", [store])
    fresh = Client(sim, store)
    fresh.login()
    assert fault_of(fresh.data("vforecourtdiagnostics")) is None
    fresh.close()


def test_connection_refused_refuses_and_clears(sim):
    store = sim.stores[0].name
    host, port = sim.address(store)
    client = Client(sim, store)
    client.login()
    sim.set_fault("connection_refused", [store])
    assert sim.expected(store)["error_type"] == "connection"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host, port), timeout=2).close()
    with pytest.raises(requests.exceptions.ConnectionError):
        client.data("vdatetime")
    sim.clear_fault("connection_refused", [store])
    assert sim.address(store) == (host, port)
    client.login()
    assert fault_of(client.data("vdatetime")) is None
    client.close()


def test_cookie_expired_drops_sessions_now(sim, client):
    client.login()
    sim.set_fault("cookie_expired", [sim.stores[0].name])
    assert fault_of(client.data("vposdiagnostics"))[0] == "CGIPortal.LoginRequired"
    client.login()
    assert fault_of(client.data("vposdiagnostics")) is None


def test_wrong_credentials_accepts_another_password(sim, client):
    store = sim.stores[0].name
    sim.set_fault("wrong_credentials", [store], password="rotated-99")
    assert fault_of(client.get("validate", user=USER, passwd=PASSWORD))[1] == (
        "Invalid Credentials"
    )
    assert sim.expected(store)["error_type"] == "auth"
    client.login(password="rotated-99")
    sim.clear_fault("wrong_credentials", [store])
    client.login()


def test_otp_required(sim, client):
    store = sim.stores[0].name
    sim.set_fault("otp_required", [store], otp="4321")
    code, message = fault_of(client.get("validate", user=USER, passwd=PASSWORD))
    assert (code, message) == ("CGIPortal.OTPRequired", "One Time Password required")
    client.login(otp="4321")


@pytest.mark.parametrize(("policy", "gets_in"), [("refuse", False), ("evict", True)])
def test_session_limit_reached_by_others(make_sim, policy, gets_in):
    sim = make_sim(1, session_policy=policy)
    store = sim.stores[0].name
    sim.set_fault("session_limit_reached", [store])
    client = Client(sim, store)
    response = client.get("validate", user=USER, passwd=PASSWORD)
    assert (fault_of(response) is None) is gets_in
    assert sim.expected(store)["error_type"] == (None if gets_in else "auth")
    sim.clear_fault("session_limit_reached", [store])
    client.login()
    client.close()
