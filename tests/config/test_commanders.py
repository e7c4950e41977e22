"""commanders.csv: what a user sees when the file is right, and when it is not."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from shared.config import load_commanders
from shared.errors import ConfigError

HEADER = "ip,store,group,brand,enabled"


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "commanders.csv"
    if isinstance(text, str):
        text = text.encode()
    path.write_bytes(text)
    return path


def error_of(tmp_path: Path, text: str | bytes) -> str:
    with pytest.raises(ConfigError) as caught:
        load_commanders(write(tmp_path, text))
    return str(caught.value)


def test_first_version_file_loads_every_row_in_order(tmp_path):
    path = write(
        tmp_path,
        f"{HEADER}\n"
        "192.168.1.100,Store 001,North,Chevron,true\n"
        "192.168.1.101,Store 002,North,Shell,false\n",
    )
    inventory = load_commanders(path)
    first, second = inventory.commanders
    assert (first.ip, first.store, first.group, first.brand) == (
        "192.168.1.100",
        "Store 001",
        "North",
        "Chevron",
    )
    assert first.enabled and not second.enabled
    assert first.base_url == "https://192.168.1.100"
    assert first.agent is None
    assert (first.line, second.line) == (2, 3)
    assert inventory.path == path
    assert inventory.enabled() == (first,)
    assert inventory.counts() == {True: 1, False: 1}


def test_for_agent_keeps_unassigned_rows_and_its_own(tmp_path):
    inventory = load_commanders(
        write(
            tmp_path,
            f"{HEADER},agent\n"
            "10.0.0.1,A,g,b,true,\n"
            "10.0.0.2,B,g,b,true,edge-1\n"
            "10.0.0.3,C,g,b,true,edge-2\n"
            "10.0.0.4,D,g,b,false,edge-1\n",
        )
    )
    assert [c.store for c in inventory.for_agent("edge-1")] == ["A", "B"]
    assert [c.store for c in inventory.for_agent("edge-2")] == ["A", "C"]


@pytest.mark.parametrize(
    ("row", "base_url"),
    [
        ("10.0.0.5,S,g,b,true,8443,", "https://10.0.0.5:8443"),
        ("fd00::5,S,g,b,true,,", "https://[fd00::5]"),
        ("fd00::5,S,g,b,true,8443,", "https://[fd00::5]:8443"),
        ("10.0.0.5,S,g,b,true,,https://10.0.0.5:8443/", "https://10.0.0.5:8443"),
        ("10.0.0.5,S,g,b,true,,HTTP://cmdr.example:8080", "http://cmdr.example:8080"),
    ],
)
def test_base_url_comes_from_port_or_url(tmp_path, row, base_url):
    inventory = load_commanders(write(tmp_path, f"{HEADER},port,url\n{row}\n"))
    assert inventory.commanders[0].base_url == base_url


@pytest.mark.parametrize(
    "word", ["true", "TRUE", "Yes", "1", "on", "false", "No", "0", "OFF"]
)
def test_enabled_accepts_the_usual_words(tmp_path, word):
    inventory = load_commanders(write(tmp_path, f"{HEADER}\n10.0.0.1,S,g,b,{word}\n"))
    assert inventory.commanders[0].enabled is (
        word.lower() in {"true", "yes", "1", "on"}
    )


def test_bom_crlf_blank_lines_spaces_and_header_case(tmp_path):
    text = (
        "\ufeff Enabled , IP,Store ,BRAND, group\r\n"
        "\r\n"
        " yes , 10.0.0.1 , Store 1 , Shell , West \r\n"
        "   \r\n"
        ",,,,\r\n"
        "no,10.0.0.2,Store 2,BP,East\r\n"
    )
    inventory = load_commanders(write(tmp_path, text.encode("utf-8")))
    first, second = inventory.commanders
    assert (first.ip, first.store, first.group, first.brand, first.enabled) == (
        "10.0.0.1",
        "Store 1",
        "West",
        "Shell",
        True,
    )
    assert (first.line, second.line) == (3, 6)
    assert second.enabled is False


def test_errors_use_the_line_an_editor_shows(tmp_path):
    message = error_of(
        tmp_path, f"{HEADER}\r\n\r\n10.0.0.1,S,g,b,true\r\n\r\nx,T,g,b,1\r\n"
    )
    assert message == "{}:5: ip 'x' is not an IP address".format(
        tmp_path / "commanders.csv"
    )


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("10.0.0.300,S,g,b,true,,,", "ip '10.0.0.300' is not an IP address"),
        (",S,g,b,true,,,", "ip is empty"),
        ("10.0.0.1,,g,b,true,,,", "store is empty"),
        ("10.0.0.1,!!,g,b,true,,,", "store '!!' has no letters or digits"),
        ("10.0.0.1,S,,b,true,,,", "group is empty"),
        ("10.0.0.1,S,g,,true,,,", "brand is empty"),
        ("10.0.0.1,S,g,b,maybe,,,", "enabled 'maybe' is not one of"),
        ("10.0.0.1,S,g,b,,,,", "enabled '' is not one of"),
        ("10.0.0.1,S,g,b,true,Edge 1,,", "agent 'Edge 1' is not an agent id"),
        ("10.0.0.1,S,g,b,true,,0,", "port '0' is not a number from 1 to 65535"),
        ("10.0.0.1,S,g,b,true,,70000,", "port '70000' is not a number"),
        ("10.0.0.1,S,g,b,true,,https,", "port 'https' is not a number"),
        (
            "10.0.0.1,S,g,b,true,,8443,https://10.0.0.1",
            "url and port are both set",
        ),
        ("10.0.0.1,S,g,b,true,,,ftp://10.0.0.1", "must look like https://HOST"),
        ("10.0.0.1,S,g,b,true,,,10.0.0.1:8443", "must look like https://HOST"),
        ("10.0.0.1,S,g,b,true,,,https://", "must look like https://HOST"),
        ("10.0.0.1,S,g,b,true,,,https://h/cgi-bin", "must not have a path or query"),
        ("10.0.0.1,S,g,b,true,,,https://h/?a=1", "must not have a path or query"),
        ("10.0.0.1,S,g,b,true,,,https://h:99999", "bad host or port"),
        ("10.0.0.1,S,g,b,true,,,https://h:0", "port outside 1-65535"),
        ("10.0.0.1,S,g,b,true,,", "7 cells, but the header has 8"),
        ("10.0.0.1,S,g,b,true,,,,", "9 cells, but the header has 8"),
    ],
)
def test_bad_row_is_reported_with_file_line_and_problem(tmp_path, row, problem):
    text = f"{HEADER},agent,port,url\n10.9.9.9,Good,g,b,true,,,\n{row}\n"
    message = error_of(tmp_path, text)
    assert message.startswith(f"{tmp_path / 'commanders.csv'}:3: ")
    assert problem in message


def test_url_with_a_password_never_shows_it(tmp_path):
    message = error_of(
        tmp_path,
        f"{HEADER},url\n10.0.0.1,S,g,b,true,https://admin:Hunter2pw@10.0.0.1\n",
    )
    assert "must not hold a user name or password" in message
    assert "Hunter2pw" not in message


def test_every_bad_row_is_reported_at_once(tmp_path):
    message = error_of(
        tmp_path,
        f"{HEADER}\n"
        "10.0.0.1,A,g,b,true\n"
        "10.0.0.300,B,g,b,true\n"
        "10.0.0.3,C,,b,true\n"
        "10.0.0.4,D,g,b,sometimes\n"
        "10.0.0.5,E,g,b\n",
    )
    lines = message.splitlines()
    assert [line.split(": ", 1)[0].rsplit(":", 1)[1] for line in lines] == [
        "3",
        "4",
        "5",
        "6",
    ]


def test_store_slug_clash_names_both_lines(tmp_path):
    message = error_of(
        tmp_path,
        f"{HEADER}\n10.0.0.1,Store 12,g,b,true\n10.0.0.2,store-12,g,b,false\n",
    )
    assert ":3: store 'store-12' clashes with 'Store 12' on line 2" in message


def test_same_store_twice_names_both_lines(tmp_path):
    message = error_of(
        tmp_path, f"{HEADER}\n10.0.0.1,Store 12,g,b,true\n10.0.0.2,Store 12,g,b,true\n"
    )
    assert ":3: store 'Store 12' is already on line 2" in message


def test_duplicate_agent_and_ip_names_both_lines(tmp_path):
    message = error_of(
        tmp_path,
        f"{HEADER},agent\n10.0.0.1,A,g,b,true,edge-1\n10.0.0.1,B,g,b,true,edge-1\n",
    )
    assert ":3: ip 10.0.0.1 (agent edge-1) is already on line 2" in message


def test_duplicate_ip_without_agent_is_an_error(tmp_path):
    message = error_of(
        tmp_path, f"{HEADER}\n10.0.0.1,A,g,b,true\n10.0.0.1,B,g,b,true\n"
    )
    assert ":3: ip 10.0.0.1" in message
    assert "already on line 2" in message


def test_same_ip_under_different_agents_is_fine(tmp_path):
    inventory = load_commanders(
        write(
            tmp_path,
            f"{HEADER},agent\n"
            "10.0.0.1,A,g,b,true,edge-1\n"
            "10.0.0.1,B,g,b,true,edge-2\n"
            "10.0.0.1,C,g,b,true,\n",
        )
    )
    assert len(inventory.commanders) == 3


def test_missing_column_is_named(tmp_path):
    message = error_of(tmp_path, "ip,store,group,enabled\n10.0.0.1,S,g,true\n")
    assert ":1: missing column 'brand'" in message


def test_column_given_twice_is_an_error(tmp_path):
    message = error_of(tmp_path, f"{HEADER},IP\n10.0.0.1,S,g,b,true,10.0.0.1\n")
    assert "column 'ip' appears twice" in message


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "no stores"),
        ("\r\n\r\n", "no stores"),
        (f"{HEADER}\n", "no stores"),
        (f"{HEADER}\n\n\n", "no stores"),
    ],
)
def test_empty_file_or_header_only_has_no_stores(tmp_path, text, problem):
    message = error_of(tmp_path, text)
    assert str(tmp_path / "commanders.csv") in message
    assert problem in message


def test_undecodable_bytes_name_file_and_line(tmp_path):
    data = f"{HEADER}\n10.0.0.1,Caf".encode() + b"\xe9,g,b,true\n"
    message = error_of(tmp_path, data)
    assert f"{tmp_path / 'commanders.csv'}:2:" in message
    assert "UTF-8" in message


def test_missing_file_names_it(tmp_path):
    with pytest.raises(ConfigError, match=r"commanders\.csv: cannot read"):
        load_commanders(tmp_path / "commanders.csv")


def test_unknown_column_is_a_warning_not_an_error(tmp_path, caplog):
    path = write(tmp_path, f"{HEADER},region_manager\n10.0.0.1,S,g,b,true,Ann\n")
    with caplog.at_level(logging.WARNING, logger="shared.config"):
        inventory = load_commanders(path)
    assert len(inventory.commanders) == 1
    assert "unknown column 'region_manager'" in caplog.text
    assert inventory.warnings


def test_same_ip_on_different_ports_is_two_commanders(tmp_path):
    path = tmp_path / "commanders.csv"
    path.write_text(
        f"{HEADER},port\n10.0.0.1,A,g,b,true,4001\n10.0.0.1,B,g,b,true,4002\n"
    )
    inventory = load_commanders(path)
    assert [c.base_url for c in inventory.commanders] == [
        "https://10.0.0.1:4001",
        "https://10.0.0.1:4002",
    ]


def test_same_ip_and_port_twice_is_an_error(tmp_path):
    message = error_of(
        tmp_path,
        f"{HEADER},port\n10.0.0.1,A,g,b,true,4001\n10.0.0.1,B,g,b,true,4001\n",
    )
    assert ":3: ip 10.0.0.1 port 4001 (no agent) is already on line 2" in message
