"""What the parsers promise beyond single fixtures: limits, secrecy, robustness."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent import parse
from shared.errors import CommanderError, FaultError, ParseError
from shared.model import Device

FIXTURES = Path(__file__).parent / "fixtures"
COOKIE = "7c41d09ab2e54f3d8a6b19e0c5f2a7d3"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def every_parser() -> list:
    return [
        parse.parse_forecourt,
        lambda body: parse.parse_payment(body, ["rewards 2 go"]),
        parse.parse_pos,
        parse.parse_credential,
        parse.parse_fault,
    ]


def test_credential_repr_hides_the_cookie() -> None:
    credential = parse.parse_credential(fixture("credential_passwd_days.xml"))
    assert credential.cookie == COOKIE
    assert COOKIE not in repr(credential)
    assert COOKIE not in str(credential)
    assert "password_days=12" in repr(credential)


def test_default_limit_is_four_mebibytes() -> None:
    doc = fixture("pos_normal.xml")
    padded = doc + b" " * (parse.MAX_BODY_BYTES - len(doc))
    assert len(padded) == 4 * 1024 * 1024
    assert [d.id for d in parse.parse_pos(padded)] == ["101", "102", "110"]
    for run in every_parser():
        with pytest.raises(ParseError, match="4194305 bytes exceeds the 4194304-byte"):
            run(padded + b" ")


def test_external_entity_never_reads_a_local_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("launch-code-5551")
    body = (
        f'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "{secret.as_uri()}">]>'
        "<diagnostics><posDiagnostics>"
        '<posTerminal sysid="&x;" status="Online"/><cookie>&x;</cookie>'
        "</posDiagnostics></diagnostics>"
    ).encode()
    for run in every_parser():
        with pytest.raises(ParseError) as caught:
            run(body)
        assert "launch-code" not in str(caught.value)


def test_external_dtd_without_entities_is_refused() -> None:
    body = b'<!DOCTYPE diagnostics SYSTEM "http://192.0.2.9/evil.dtd"><diagnostics/>'
    with pytest.raises(ParseError, match="DTD"):
        parse.parse_pos(body)


def test_long_fault_message_is_cut_and_kept_on_one_line() -> None:
    words = "Internal\nError " * 500
    body = (
        "<Response><Fault><faultCode>CGIPortal.InternalError</faultCode>"
        f"<detail><vfiFault><message>{words}</message></vfiFault></detail>"
        "</Fault></Response>"
    ).encode()
    with pytest.raises(FaultError) as caught:
        parse.parse_forecourt(body)
    message = str(caught.value)
    assert message.startswith("Commander fault CGIPortal.InternalError: Internal Error")
    assert len(message) <= 160
    assert "\n" not in message
    assert caught.value.code == "CGIPortal.InternalError"


def test_cookie_echoed_in_a_login_fault_is_redacted() -> None:
    body = (
        "<Response><Fault><faultCode>CGIPortal.DeviceNotRegisterd</faultCode>"
        f"<detail><vfiFault><message>Device for {COOKIE} is not registered"
        "</message></vfiFault></detail></Fault></Response>"
    ).encode()
    with pytest.raises(FaultError) as caught:
        parse.parse_credential(body)
    assert COOKIE not in str(caught.value)
    assert "is not registered" in str(caught.value)


def test_broken_credential_never_quotes_its_body() -> None:
    body = f"<credential><cookie>{COOKIE}</cookie><passwd days='3".encode()
    with pytest.raises(ParseError) as caught:
        parse.parse_credential(body)
    assert "not well-formed" in str(caught.value)
    assert COOKIE[:8] not in str(caught.value)


def test_data_parser_quotes_only_a_short_clean_snippet() -> None:
    body = b"Proxy Error\r\n\t\x1b[31m" + b"upstream timed out " * 300
    with pytest.raises(ParseError) as caught:
        parse.parse_payment(body, ["rewards 2 go"])
    message = str(caught.value)
    assert "body starts 'Proxy Error ?[31mupstream timed out upstream" in message
    assert message.endswith("...'")
    assert "\x1b" not in message
    assert len(message) < 200


def test_leading_whitespace_and_utf8_bom_are_accepted() -> None:
    expected = parse.parse_pos(fixture("pos_normal.xml"))
    assert parse.parse_pos(b"\r\n  " + fixture("pos_normal.xml")) == expected
    assert parse.parse_pos(b"\xef\xbb\xbf" + fixture("pos_normal.xml")) == expected


def test_declared_latin1_document_is_read() -> None:
    body = (
        b'<?xml version="1.0" encoding="ISO-8859-1"?>'
        b'<diagnostics><posTerminal sysid="Caf\xe9" status="Online"/></diagnostics>'
    )
    assert parse.parse_pos(body) == (Device("Café", True, "Online"),)


def test_bytearray_and_memoryview_bodies_are_accepted() -> None:
    body = fixture("pos_offline.xml")
    expected = parse.parse_pos(body)
    assert parse.parse_pos(bytearray(body)) == expected
    assert parse.parse_pos(memoryview(body)) == expected


def test_text_instead_of_bytes_is_a_programming_error() -> None:
    with pytest.raises(TypeError, match="bytes"):
        parse.parse_pos(fixture("pos_normal.xml").decode())  # type: ignore[arg-type]


def test_one_loyalty_name_as_a_plain_str_is_a_programming_error() -> None:
    with pytest.raises(TypeError, match="loyalty_names"):
        parse.parse_payment(fixture("payment_normal.xml"), "rewards 2 go")


def test_login_required_code_is_exported_for_the_client() -> None:
    with pytest.raises(FaultError) as caught:
        parse.parse_pos(fixture("pos_fault_login_required.xml"))
    assert caught.value.code == parse.LOGIN_REQUIRED


XMLISH = st.lists(
    st.sampled_from(
        [
            b"<",
            b">",
            b"/>",
            b"</",
            b"diagnostics",
            b"controller",
            b"fuelingPoint",
            b' sysid="1"',
            b" status='Online'",
            b"Fault",
            b"cookie",
            b"<!DOCTYPE",
            b"&amp;",
            b"&x;",
            b"<?xml version='1.0' encoding='utf-16'?>",
            b"\xff",
            b"\x00",
            b" ",
        ]
    ),
    max_size=30,
).map(b"".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=200), XMLISH))
def test_any_bytes_give_a_value_or_a_commander_error(body: bytes) -> None:
    for run in every_parser():
        try:
            run(body)
        except CommanderError as exc:
            assert "\n" not in str(exc)


@pytest.mark.timeout(30)
def test_deeply_nested_fueling_points_are_read_in_one_pass() -> None:
    depth = 40_000
    point = b'<fuelingPoint sysid="7"><device type="Pump" status="Online"/>'
    body = b"<diagnostics>" + point * depth + b"</fuelingPoint>" * depth
    forecourt = parse.parse_forecourt(body + b"</diagnostics>")
    assert forecourt.pumps == (Device("7", True, "Online"),)
    assert forecourt.controller is None
