"""credentials.yaml: the default login, overrides, and keeping passwords secret."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from shared.config import Commander, load_credentials
from shared.errors import ConfigError

SECRET = "Sup3r-Secret-pw"


def write(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "credentials.yaml"
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_credentials(write(tmp_path, text))
    return str(caught.value)


def commander(store: str, group: str) -> Commander:
    return Commander("10.0.0.1", store, group, "Shell", True, "https://10.0.0.1")


def test_first_version_form_loads(tmp_path):
    creds = load_credentials(
        write(tmp_path, f"credentials:\n  username: monitor\n  password: {SECRET}\n")
    )
    login = creds.for_commander(commander("Store 1", "West"))
    assert (login.username, login.password) == ("monitor", SECRET)


def test_overrides_resolve_store_then_group_then_default(tmp_path):
    creds = load_credentials(
        write(
            tmp_path,
            "credentials: {username: monitor, password: default-pw}\n"
            "groups:\n"
            "  West: {password: west-pw}\n"
            "  East: {username: east-user, password: east-pw}\n"
            "stores:\n"
            "  Store 12: {username: s12-user, password: s12-pw}\n"
            "  12: {password: twelve-pw}\n",
        )
    )
    west_store = creds.for_commander(commander("Store 12", "West"))
    west_other = creds.for_commander(commander("Store 13", "West"))
    east = creds.for_commander(commander("Store 14", "East"))
    elsewhere = creds.for_commander(commander("Store 15", "North"))
    numbered = creds.for_commander(commander("12", "North"))
    assert (west_store.username, west_store.password) == ("s12-user", "s12-pw")
    assert (west_other.username, west_other.password) == ("monitor", "west-pw")
    assert (east.username, east.password) == ("east-user", "east-pw")
    assert (elsewhere.username, elsewhere.password) == ("monitor", "default-pw")
    assert numbered.password == "twelve-pw"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("credentials:\n  username: monitor\n", "credentials.password: missing"),
        (f"credentials:\n  password: {SECRET}\n", "credentials.username: missing"),
        ("other: 1\n", "credentials: missing"),
        ("", "credentials: missing"),
        ("credentials:\n", "credentials: missing"),
        (
            f"credentials: {{username: u, password: {SECRET}}}\n"
            "groups:\n  West: {}\n",
            "groups.West.password: missing",
        ),
        (
            f"credentials: {{username: u, password: {SECRET}}}\n"
            "stores:\n  Store 1: {username: x}\n",
            "stores.Store 1.password: missing",
        ),
        ("- just\n- a list\n", "expected a mapping"),
    ],
)
def test_errors_name_the_key_path(tmp_path, text, problem):
    message = error_of(tmp_path, text)
    assert f"{tmp_path / 'credentials.yaml'}: {problem}" in message


@pytest.mark.parametrize(
    "text",
    [
        f"credentials:\n  username: monitor\n  password: [{SECRET}]\n",
        f"credentials: {SECRET}\n",
        f"credentials: {{username: u, password: p}}\nstores:\n  S1: {SECRET}\n",
        f"credentials: {{username: u, password: p}}\ngroups:\n  G: [{SECRET}]\n",
        "credentials:\n  username: monitor\n  password: 12345678\n",
        f"credentials:\n  username: monitor\n  password: {SECRET}\n  password: other\n",
        f'credentials:\n  username: monitor\n  password: "{SECRET}\n',
    ],
)
def test_password_never_appears_in_an_error(tmp_path, text):
    message = error_of(tmp_path, text)
    assert "credentials" in message
    assert SECRET not in message
    assert "12345678" not in message


def test_password_never_appears_in_repr(tmp_path):
    creds = load_credentials(
        write(
            tmp_path,
            f"credentials: {{username: u, password: {SECRET}}}\n"
            f"groups: {{G: {{password: {SECRET}}}}}\n"
            f"stores: {{S: {{password: {SECRET}}}}}\n",
        )
    )
    assert SECRET not in repr(creds)
    assert SECRET not in str(creds)
    assert SECRET not in repr(creds.default)


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    message = error_of(
        tmp_path, f"credentials:\n  username: monitor\n  password: {SECRET}\n oops\n"
    )
    assert message.startswith(f"{tmp_path / 'credentials.yaml'}:4: ")
    assert SECRET not in message


def test_duplicate_key_is_an_error(tmp_path):
    message = error_of(
        tmp_path,
        "credentials: {username: u, password: p}\n"
        "stores:\n  S1: {password: a}\n"
        "stores:\n  S2: {password: b}\n",
    )
    assert ":4: key 'stores' appears twice" in message


def test_file_open_to_others_warns_with_chmod_advice(tmp_path, caplog):
    path = write(tmp_path, "credentials: {username: u, password: p}\n", mode=0o644)
    with caplog.at_level(logging.WARNING, logger="shared.config"):
        load_credentials(path)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert str(path) in warnings[0].getMessage()
    assert "chmod 600" in warnings[0].getMessage()


def test_private_file_does_not_warn(tmp_path, caplog):
    path = write(tmp_path, "credentials: {username: u, password: p}\n")
    with caplog.at_level(logging.WARNING, logger="shared.config"):
        creds = load_credentials(path)
    assert caplog.records == []
    assert creds.warnings == ()


def test_unknown_key_warns_without_the_value(tmp_path, caplog):
    path = write(
        tmp_path, f"credentials: {{username: u, password: p, pasword: {SECRET}}}\n"
    )
    with caplog.at_level(logging.WARNING, logger="shared.config"):
        load_credentials(path)
    assert "credentials.pasword: unknown key" in caplog.text
    assert SECRET not in caplog.text
