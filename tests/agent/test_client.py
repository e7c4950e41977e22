"""The Commander client against the simulator over real HTTPS."""

from __future__ import annotations

import logging

from shared.config import Credentials, TlsPolicy
from shared.model import ErrorType
from tests.agent.conftest import PASSWORD, USER, FakeClock, commander_for, make_client


def _states(devices) -> dict[str, bool]:
    return {d.id: d.online for d in devices}


def test_poll_reports_every_device_class_as_the_commander_serves_it(sim):
    for index, store in enumerate(sim.stores):
        status = make_client(sim, index).poll()
        truth = sim.expected(store.name)
        assert status.ok, status.error
        assert status.store == store.name
        assert status.controller.online is truth["controller"]
        assert _states(status.pumps) == truth["pumps"]
        assert _states(status.dcrs) == truth["dcrs"]
        assert _states(status.price_displays) == truth["price_displays"]
        assert _states(status.registers) == truth["registers"]
        assert _states(status.pinpads) == truth["pinpads"]
        assert (status.primary_fep.name, status.primary_fep.connected) == truth[
            "primary_fep"
        ]
        if truth["loyalty_fep"] is None:
            assert status.loyalty_fep is None
        else:
            loyalty = (status.loyalty_fep.name, status.loyalty_fep.connected)
            assert loyalty == truth["loyalty_fep"]
        assert set(status.durations) >= {
            "validate",
            "vforecourtdiagnostics",
            "vpaymentdiagnostics",
            "vposdiagnostics",
        }


def test_device_faults_show_in_the_next_poll(sim):
    name = sim.stores[0].name
    client = make_client(sim)
    sim.set_fault("pump_offline", [name], ids=["1"])
    sim.set_fault("fep_disconnected", [name])
    status = client.poll()
    assert status.ok
    assert _states(status.pumps)["1"] is False
    assert status.primary_fep.connected is False
    sim.clear_fault("pump_offline", [name])
    sim.clear_fault("fep_disconnected", [name])
    status = client.poll()
    assert _states(status.pumps)["1"] is True
    assert status.primary_fep.connected is True


def test_undetermined_fep_is_reported_as_unknown(sim):
    name = sim.stores[0].name
    sim.set_fault("fep_undetermined", [name])
    status = make_client(sim).poll()
    assert status.primary_fep.connected is None
    assert status.primary_fep.status.lower() == "undetermined"


def test_controller_offline_takes_its_devices_down(sim):
    name = sim.stores[0].name
    sim.set_fault("controller_offline", [name])
    status = make_client(sim).poll()
    assert status.ok
    assert status.controller.online is False
    assert not any(p.online for p in status.pumps)


def test_cookie_is_reused_across_cycles(sim):
    name = sim.stores[0].name
    client = make_client(sim)
    for cycle in range(5):
        assert client.poll(cycle).ok
    counters = sim.counters(name)
    assert counters.logins == 1
    assert counters.requests["vforecourtdiagnostics"] == 5
    assert counters.requests["vpaymentdiagnostics"] == 5


def test_expired_cookie_means_one_login_and_one_retry(sim):
    name = sim.stores[0].name
    client = make_client(sim)
    assert client.poll().ok
    sim.set_fault("cookie_expired", [name])
    status = client.poll()
    assert status.ok, status.error
    counters = sim.counters(name)
    assert counters.logins == 2
    assert counters.requests["vforecourtdiagnostics"] == 3  # 1 + failed + retry


def test_wrong_password_stops_after_two_failed_logins(sim):
    name = sim.stores[0].name
    clock = FakeClock()
    client = make_client(sim, password="not-the-password-1", clock=clock)
    first, second, third = client.poll(), client.poll(), client.poll()
    assert first.error_type is ErrorType.AUTH
    assert second.error_type is ErrorType.AUTH
    assert third.error_type is ErrorType.LOCKOUT
    assert sim.counters(name).failed_logins == 2
    clock.advance(1799)
    assert client.poll().error_type is ErrorType.LOCKOUT
    assert sim.counters(name).failed_logins == 2
    clock.advance(2)
    assert client.poll().error_type is ErrorType.AUTH  # one try after the cool-down
    assert client.poll().error_type is ErrorType.LOCKOUT
    assert sim.counters(name).failed_logins == 3


def test_changed_credentials_lift_the_login_guard(sim):
    client = make_client(sim, password="not-the-password-1")
    client.poll(), client.poll()
    assert client.poll().error_type is ErrorType.LOCKOUT
    commander = commander_for(sim)
    client.update(
        commander, Credentials(USER, PASSWORD), TlsPolicy(ca_bundle=sim.ca_file)
    )
    assert client.poll().ok


def test_locked_account_on_the_commander_is_an_auth_error(sim):
    name = sim.stores[0].name
    sim.set_fault("otp_required", [name])
    status = make_client(sim).poll()
    assert status.error_type is ErrorType.AUTH
    assert "one-time password" in status.error


def test_slow_commander_times_out_within_the_poll_budget(sim):
    name = sim.stores[0].name
    sim.set_fault("slow_response", [name], seconds=3)
    status = make_client(sim, timeout=0.5).poll()
    assert status.error_type is ErrorType.TIMEOUT


def test_refused_connection_is_a_connection_error(sim):
    name = sim.stores[0].name
    sim.set_fault("connection_refused", [name])
    status = make_client(sim).poll()
    assert status.error_type is ErrorType.CONNECTION
    assert "refused" in status.error
    sim.clear_fault("connection_refused", [name])
    assert make_client(sim).poll().ok


def test_http_500_is_an_http_error(sim):
    name = sim.stores[0].name
    client = make_client(sim)
    assert client.poll().ok
    sim.set_fault("http_500", [name])
    status = client.poll()
    assert status.error_type is ErrorType.HTTP
    assert "500" in status.error


def test_fault_on_a_data_command_is_a_fault_error(sim):
    name = sim.stores[0].name
    sim.set_fault(
        "fault_response",
        [name],
        commands=["vforecourtdiagnostics"],
        code="CGIPortal.InternalError",
        message="Internal Error",
    )
    status = make_client(sim).poll()
    assert status.error_type is ErrorType.FAULT
    assert "Internal Error" in status.error


def test_truncated_and_empty_answers_are_parse_errors(sim):
    name = sim.stores[0].name
    sim.set_fault("truncated_xml", [name], commands=["vpaymentdiagnostics"])
    status = make_client(sim).poll()
    assert status.error_type is ErrorType.PARSE
    assert status.controller is not None  # what was read before the failure stays
    sim.clear_fault("truncated_xml", [name])
    sim.set_fault("empty_body", [name], commands=["vforecourtdiagnostics"])
    assert make_client(sim).poll().error_type is ErrorType.PARSE


def test_session_limit_reached_is_reported_not_retried(sim):
    name = sim.stores[0].name
    sim.set_fault("session_limit_reached", [name])
    status = make_client(sim).poll()
    assert not status.ok
    assert sim.counters(name).requests.get("validate", 0) <= 2


def test_unsupported_register_diagnostics_are_skipped_after_one_fault(sim):
    name = sim.stores[0].name
    sim.set_fault(
        "fault_response",
        [name],
        commands=["vposdiagnostics"],
        message="Permission denied for the function",
    )
    client = make_client(sim)
    first, second = client.poll(), client.poll()
    assert first.ok and second.ok
    assert first.registers == ()
    assert sim.counters(name).requests["vposdiagnostics"] == 1


def test_certificate_trust_policies(sim):
    name = sim.stores[0].name
    fingerprint = sim.fingerprint(name)
    assert make_client(sim, tls=TlsPolicy(fingerprint=fingerprint)).poll().ok
    assert make_client(sim, tls=TlsPolicy(insecure=True)).poll().ok
    wrong = TlsPolicy(fingerprint="00" * 32)
    status = make_client(sim, tls=wrong).poll()
    assert status.error_type is ErrorType.TLS
    assert "fingerprint" in status.error
    status = make_client(sim, tls=TlsPolicy()).poll()  # system trust store
    assert status.error_type is ErrorType.TLS
    assert "not trusted" in status.error


def test_release_gives_the_cookie_back(sim):
    name = sim.stores[0].name
    client = make_client(sim)
    assert client.poll().ok
    assert sim.counters(name).cookies == 1
    client.release()
    assert sim.counters(name).releases == 1
    assert sim.counters(name).cookies == 0


def test_password_expiry_is_read_from_the_login_answer(sim):
    status = make_client(sim).poll()
    assert status.password_days == 60


def test_no_secret_reaches_logs_errors_or_status(sim, caplog):
    caplog.set_level(logging.DEBUG)
    name = sim.stores[0].name
    client = make_client(sim)
    seen = [client.poll()]
    cookie = client._cookie  # the test needs the real value to look for it
    assert cookie
    for fault, params in (
        ("cookie_expired", {}),
        ("http_500", {}),
        ("truncated_xml", {}),
        ("slow_response", {"seconds": 2}),
        ("connection_refused", {}),
    ):
        sim.set_fault(fault, [name], **params)
        seen.append(make_client(sim, timeout=0.5).poll())
        seen.append(client.poll())
        if fault != "cookie_expired":
            sim.clear_fault(fault, [name])
    bad = make_client(sim, password="wrong-" + PASSWORD)
    seen += [bad.poll(), bad.poll(), bad.poll()]
    text = caplog.text + "".join(repr(s) for s in seen)
    for secret in (PASSWORD, cookie):
        assert secret not in text
