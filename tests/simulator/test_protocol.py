"""The simulator speaks the Commander's CGILink/XML protocol over HTTPS."""

from __future__ import annotations

import hashlib
import re
import socket
import ssl
import xml.etree.ElementTree as ET

import pytest

from simulator.xmlgen import MSG_NO_CREDENTIAL
from tests.simulator.conftest import DIAG, DOMAIN, PASSWORD, USER, Client, fault_of

ISO_WITH_OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")


def test_login_returns_credential_with_cookie(sim, client):
    response = client.get("validate", user=USER, passwd=PASSWORD)
    assert response.status_code == 200
    root = ET.fromstring(response.content)
    assert root.tag == f"{DOMAIN}credential"
    assert re.fullmatch(r"[0-9a-f]{32}", root.findtext("cookie") or "")
    passwd = root.find("passwd")
    assert passwd is not None
    assert passwd.get("expire") == "true"
    assert passwd.get("days") == "60"
    assert "validate" in [e.text for e in root.iter("FunctionCmd")]
    assert "Set-Cookie" not in response.headers


@pytest.mark.parametrize("cookie", [None, "", "0123456789abcdef0123456789abcdef"])
def test_data_commands_need_a_live_cookie(client, cookie):
    params = {} if cookie is None else {"cookie": cookie}
    response = client.get("vforecourtdiagnostics", **params)
    assert response.status_code == 200
    assert fault_of(response) == ("CGIPortal.LoginRequired", MSG_NO_CREDENTIAL)
    root = ET.fromstring(response.content)
    fault = root.find(f"{DOMAIN}Fault")
    assert fault.findtext("faultString") == "CGIPortal Error"


def test_bad_password_is_invalid_credentials(client):
    response = client.get("validate", user=USER, passwd="nope")
    assert response.status_code == 200
    _, message = fault_of(response)
    assert message == "Invalid Credentials"
    assert "<cookie>" not in response.text


def test_forecourt_document_has_documented_names(sim, client):
    client.login()
    response = client.data("vforecourtdiagnostics")
    text = response.text
    assert "<diag:diagnostics " in text
    assert "<diag:peripherals>" in text
    root = ET.fromstring(response.content)
    assert root.tag == f"{DIAG}diagnostics"
    assert ISO_WITH_OFFSET.match(root.get("time"))
    assert root.get("siteId") == sim.stores[0].site_id
    controller = root.find("forecourtDiagnostics/controller")
    assert controller.get("status") == "Online"
    assert controller.get("type") == "controller"
    peripherals = controller.find(f"{DIAG}peripherals")
    types = {d.get("type") for d in peripherals.findall("device")}
    assert types <= {"Tank Level Sensor", "Fuel Price Display"}
    points = controller.findall("fuelingPoint")
    assert [p.get("sysid") for p in points] == [
        fp.sysid for fp in sim.stores[0].fueling_points
    ]
    for device in root.iter("device"):
        assert device.get("status") == "Online"
        assert device.get("isAvailable") == "true"


def test_payment_document_lists_feps_and_pinpads(sim, client):
    client.login()
    root = ET.fromstring(client.data("vpaymentdiagnostics").content)
    assert root.tag == f"{DIAG}diagnostics"
    feps = root.findall("paymentDiagnostics/fepDetail")
    store = sim.stores[0]
    assert [f.get("fepName") for f in feps] == [f.name for f in store.feps]
    assert [f.get("isPrimary") for f in feps].count("true") == 1
    assert {f.findtext("connectionStatus") for f in feps} == {"true"}
    pads = root.findall("paymentDiagnostics/pinpadDetail")
    assert [p.get("popID") for p in pads] == [p.pop_id for p in store.pinpads]
    assert all(p.findtext("workstationName") for p in pads)
    assert all(p.findtext("pinpadType") for p in pads)


def test_pos_document_lists_registers(sim, client):
    client.login()
    root = ET.fromstring(client.data("vposdiagnostics").content)
    terminals = root.findall("posDiagnostics/posTerminal")
    assert [t.get("sysid") for t in terminals] == [
        r.sysid for r in sim.stores[0].registers
    ]
    assert {t.get("status") for t in terminals} == {"Online"}


def test_vdatetime_answers_with_local_time(client):
    client.login()
    root = ET.fromstring(client.data("vdatetime").content)
    assert ISO_WITH_OFFSET.match(root.findtext("sysDT"))


def test_unknown_and_missing_commands_are_faults(client):
    client.login()
    assert (
        fault_of(client.data("vsysteminfo"))[1] == "Permission denied for the function"
    )
    response = client.session.get(client.url, params={"cookie": client.cookie})
    assert fault_of(response)[0] == "CGIPortal.ParseError"


def test_release_credential_ends_the_session(sim, client):
    client.login()
    response = client.data("releaseCredential")
    root = ET.fromstring(response.content)
    assert root.tag == f"{DOMAIN}Response"
    assert len(root) == 0
    assert (
        fault_of(client.data("vforecourtdiagnostics"))[0] == "CGIPortal.LoginRequired"
    )
    counters = sim.counters(sim.stores[0].name)
    assert counters.releases == 1
    assert counters.cookies == 0


def test_post_body_first_line_carries_parameters(sim, client):
    body = f"cmd=validate&user={USER}&passwd=s3cret%26pass%231\n\n"
    response = client.session.post(
        client.url, data=body, headers={"Content-Type": "text/plain"}
    )
    cookie = ET.fromstring(response.content).findtext("cookie")
    assert cookie
    form = client.session.post(
        client.url, data={"cmd": "vposdiagnostics", "cookie": cookie}
    )
    assert ET.fromstring(form.content).find("posDiagnostics") is not None


def test_other_paths_are_404_html(client):
    response = client.session.get(client.url.replace("CGILink", "nothing"))
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("text/html")


def test_keep_alive_reuses_one_connection(sim, client):
    client.login()
    client.data("vforecourtdiagnostics")
    client.data("vpaymentdiagnostics")
    assert sim.counters(sim.stores[0].name).connections == 1


def test_connection_close_is_honoured(sim, client):
    for _ in range(2):
        response = client.session.get(
            client.url, params={"cmd": "vdatetime"}, headers={"Connection": "close"}
        )
        assert response.headers["Connection"] == "close"
    assert sim.counters(sim.stores[0].name).connections == 2


def test_certificate_matches_fingerprint_and_ca(sim):
    store = sim.stores[1].name
    host, port = sim.address(store)
    context = ssl.create_default_context(cafile=str(sim.ca_file))
    with (
        socket.create_connection((host, port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert hashlib.sha256(der).hexdigest() == sim.fingerprint(store)
    assert re.fullmatch(r"[0-9a-f]{64}", sim.fingerprint(store))


def test_counters_count_logins_failures_and_requests(sim, client):
    client.get("validate", user=USER, passwd="wrong")
    client.login()
    client.data("vforecourtdiagnostics")
    client.data("vforecourtdiagnostics")
    client.data("vpaymentdiagnostics")
    counters = sim.counters(sim.stores[0].name)
    assert counters.logins == 1
    assert counters.failed_logins == 1
    assert counters.requests == {
        "validate": 2,
        "vforecourtdiagnostics": 2,
        "vpaymentdiagnostics": 1,
    }
    assert counters.cookies == 1
    other = sim.counters(sim.stores[1].name)
    assert other.requests == {}


def test_each_store_has_its_own_sessions(sim):
    first = Client(sim, sim.stores[0].name)
    second = Client(sim, sim.stores[1].name)
    try:
        cookie = first.login()
        second.cookie = cookie
        assert fault_of(second.data("vposdiagnostics"))[0] == "CGIPortal.LoginRequired"
    finally:
        first.close()
        second.close()
