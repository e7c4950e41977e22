"""config.yaml: defaults, every section's checks, paths, secrets and warnings."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from shared.config import (
    MQTT_PASSWORD_ENV,
    Commander,
    Config,
    TlsPolicy,
    load_config,
)
from shared.errors import ConfigError

SECRET = "Mqtt-Secret-pw"
FINGERPRINT = "ab" * 32


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Config:
    return load_config(write(tmp_path, text), env=env or {})


def error_of(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, env)
    return str(caught.value)


def commander(store: str, group: str) -> Commander:
    return Commander("10.0.0.1", store, group, "Shell", True, "https://10.0.0.1")


def test_no_file_means_all_defaults():
    config = load_config(None, env={})
    assert config == Config(path=None)
    assert config.interval_seconds == 300.0
    assert config.mqtt.password is None


def test_empty_file_means_all_defaults_next_to_the_file(tmp_path):
    config = load(tmp_path, "")
    assert config.scrape_interval_minutes == 5.0
    assert config.loyalty_names == ("rewards 2 go",)
    assert config.agent.commanders_file == tmp_path / "commanders.csv"
    assert config.agent.credentials_file == tmp_path / "credentials.yaml"
    assert config.path == tmp_path / "config.yaml"


def test_first_version_file_loads(tmp_path):
    config = load(
        tmp_path,
        "scrape_interval_minutes: 6\n"
        "timeout_seconds: 30\n"
        "loyalty_program:\n  names: ['  Rewards 2 Go ', FuelPerks]\n",
    )
    assert config.interval_seconds == 360.0
    assert config.timeout_seconds == 30.0
    assert config.loyalty_names == ("rewards 2 go", "fuelperks")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("timeout_seconds: abc", "timeout_seconds: expected a number > 0, got 'abc'"),
        ("timeout_seconds: 0", "timeout_seconds: expected a number > 0, got 0"),
        (
            "scrape_interval_minutes: -1",
            "scrape_interval_minutes: expected a number > 0",
        ),
        ("scrape_interval_minutes: true", "expected a number > 0, got True"),
        ("loyalty_program: {names: rewards}", "loyalty_program.names: expected a list"),
        ("loyalty_program: [a]", "loyalty_program: expected a mapping"),
        ("agent: {id: Edge 1}", "agent.id: expected an id of a-z"),
        (
            "agent: {workers: 0}",
            "agent.workers: expected a whole number from 1 to 1000",
        ),
        ("agent: {workers: 1001}", "agent.workers: expected a whole number from 1"),
        ("agent: {workers: 2.5}", "agent.workers: expected a whole number"),
        ("agent: {lockout_cooldown_minutes: 0}", "agent.lockout_cooldown_minutes"),
        ("agent: {start_jitter_seconds: -1}", "agent.start_jitter_seconds: expected"),
        ("agent: {password_warning_days: -1}", "agent.password_warning_days: expected"),
        ("agent: {max_response_bytes: 1000}", "agent.max_response_bytes: expected"),
        ("agent: {commanders_file: 7}", "agent.commanders_file: expected a file path"),
        ("mqtt: {port: 0}", "mqtt.port: expected a whole number from 1 to 65535"),
        ("mqtt: {protocol: 3.1}", "mqtt.protocol: expected 5 or 3.1.1, got 3.1"),
        ("mqtt: {keepalive: 4}", "mqtt.keepalive: expected a whole number from 5"),
        ("mqtt: {keepalive: 3601}", "mqtt.keepalive: expected a whole number"),
        ("mqtt: {host: ''}", "mqtt.host: expected a non-empty string"),
        ("mqtt: {ca_file: nowhere.pem}", "mqtt.ca_file: file "),
        ("aggregator: {id: 'Central!'}", "aggregator.id: expected an id"),
        (
            "aggregator: {stale_after_intervals: 0.5}",
            "aggregator.stale_after_intervals",
        ),
        (
            "aggregator: {agents: [edge-1, Edge 2]}",
            "aggregator.agents: expected a list",
        ),
        (
            "aggregator: {max_stores: 0}",
            "aggregator.max_stores: expected a whole number",
        ),
        ("aggregator: {listen: localhost}", "aggregator.listen: expected HOST:PORT"),
        (
            "aggregator: {listen: '0.0.0.0:8000', listen_port: 9000}",
            "aggregator.listen: set listen or listen_host/listen_port, not both",
        ),
        ("tls: {insecure: 'yes'}", "tls.insecure: expected true or false, got 'yes'"),
        ("tls: {fingerprint: 'AB:CD'}", "tls.fingerprint: expected a quoted SHA-256"),
        ("tls: {ca_bundle: missing.pem}", "tls.ca_bundle: file "),
        (
            f"tls: {{fingerprint: '{FINGERPRINT}', insecure: true}}",
            "tls: choose one of ca_bundle, fingerprint, insecure",
        ),
        (
            "tls: {groups: {West: {fingerprint: '"
            + FINGERPRINT
            + "', insecure: true}}}",
            "tls.groups.West: choose one of",
        ),
        ("tls: {stores: {S1: {insecure: 1}}}", "tls.stores.S1.insecure: expected true"),
        ("syslog: [1, 2]", "syslog: expected a mapping"),
        ("- a list", "expected a mapping of settings"),
    ],
)
def test_bad_value_names_file_key_and_problem(tmp_path, text, problem):
    message = error_of(tmp_path, text)
    assert message.startswith(str(tmp_path / "config.yaml"))
    assert problem in message


def test_every_bad_key_is_reported_at_once(tmp_path):
    message = error_of(
        tmp_path,
        "timeout_seconds: abc\nagent: {workers: 0}\nmqtt: {keepalive: 1}\n",
    )
    assert len(message.splitlines()) == 3


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    message = error_of(tmp_path, "timeout_seconds: 30\nagent:\n  id: [edge\n")
    assert message.startswith(f"{tmp_path / 'config.yaml'}:4: expected ',' or ']'")


def test_yaml_syntax_error_line_is_the_bad_line(tmp_path):
    message = error_of(tmp_path, "timeout_seconds: 30\n\nagent:\n\tid: x\n")
    assert message.startswith(f"{tmp_path / 'config.yaml'}:4: ")


@pytest.mark.parametrize(
    ("value", "protocol"),
    [
        ("5", "5"),
        ("5.0", "5"),
        ("'5'", "5"),
        ("3.1.1", "3.1.1"),
        ("'3.1.1'", "3.1.1"),
        ("311", "3.1.1"),
        ("MQTTv311", "3.1.1"),
    ],
)
def test_mqtt_protocol_spellings(tmp_path, value, protocol):
    assert load(tmp_path, f"mqtt: {{protocol: {value}}}").mqtt.protocol == protocol


def test_mqtt_password_file_is_read_and_stripped(tmp_path):
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "mqtt.txt").write_text(f"  {SECRET}\n")
    config = load(tmp_path, "mqtt: {username: edge-1, password_file: secrets/mqtt.txt}")
    assert config.mqtt.password == SECRET
    assert SECRET not in repr(config)


def test_mqtt_password_from_environment_only_when_the_file_gives_none(tmp_path):
    env = {MQTT_PASSWORD_ENV: "from-env"}
    assert load(tmp_path, "mqtt: {username: u}", env).mqtt.password == "from-env"
    assert load(tmp_path, "", env).mqtt.password == "from-env"
    assert load_config(None, env=env).mqtt.password == "from-env"
    given = load(tmp_path, f"mqtt: {{password: {SECRET}}}", env)
    assert given.mqtt.password == SECRET


def test_mqtt_password_and_password_file_together_is_an_error(tmp_path):
    (tmp_path / "pw.txt").write_text("other")
    message = error_of(tmp_path, f"mqtt: {{password: {SECRET}, password_file: pw.txt}}")
    assert "mqtt.password: set password or password_file, not both" in message
    assert SECRET not in message


@pytest.mark.parametrize(
    "text",
    [
        "mqtt: {password: 12345678}",
        "mqtt: {password: [Mqtt-Secret-pw]}",
        "mqtt: Mqtt-Secret-pw",
    ],
)
def test_mqtt_password_never_appears_in_an_error(tmp_path, text):
    message = error_of(tmp_path, text)
    assert "mqtt" in message
    assert SECRET not in message
    assert "12345678" not in message


def test_empty_password_file_is_an_error(tmp_path):
    (tmp_path / "pw.txt").write_text("\n")
    message = error_of(tmp_path, "mqtt: {password_file: pw.txt}")
    assert "mqtt.password_file: file" in message
    assert "is empty" in message


def test_mqtt_tls_files_resolve_and_default_port_8883(tmp_path):
    for name in ("ca.pem", "edge.crt", "edge.key"):
        (tmp_path / name).write_text("x")
    config = load(
        tmp_path, "mqtt: {ca_file: ca.pem, cert_file: edge.crt, key_file: edge.key}"
    )
    assert config.mqtt.ca_file == tmp_path / "ca.pem"
    assert config.mqtt.cert_file == tmp_path / "edge.crt"
    assert config.mqtt.key_file == tmp_path / "edge.key"
    assert config.mqtt.port == 8883


def test_mqtt_cert_without_key_is_an_error(tmp_path):
    (tmp_path / "ca.pem").write_text("x")
    (tmp_path / "edge.crt").write_text("x")
    message = error_of(tmp_path, "mqtt: {ca_file: ca.pem, cert_file: edge.crt}")
    assert "mqtt.cert_file: set cert_file and key_file together" in message


def test_aggregator_listen_forms(tmp_path):
    assert (
        load(tmp_path, "aggregator: {listen: '127.0.0.1:9100'}").aggregator.listen_port
        == 9100
    )
    v6 = load(tmp_path, "aggregator: {listen: '[::1]:9100'}").aggregator
    assert (v6.listen_host, v6.listen_port) == ("::1", 9100)
    split = load(tmp_path, "aggregator: {listen_host: 127.0.0.2, listen_port: 0}")
    assert (split.aggregator.listen_host, split.aggregator.listen_port) == (
        "127.0.0.2",
        0,
    )


def test_tls_fingerprint_is_stored_lowercase_without_colons(tmp_path):
    spaced = ":".join(["AB"] * 32)
    assert load(tmp_path, f"tls: {{fingerprint: '{spaced}'}}").tls.default == TlsPolicy(
        fingerprint=FINGERPRINT
    )


def test_tls_overrides_resolve_store_then_group_then_default(tmp_path):
    (tmp_path / "west-ca.pem").write_text("x")
    config = load(
        tmp_path,
        "tls:\n"
        f"  fingerprint: '{FINGERPRINT}'\n"
        "  groups:\n"
        "    West: {ca_bundle: west-ca.pem}\n"
        "  stores:\n"
        "    Store 12: {insecure: true}\n",
    )
    tls = config.tls
    assert tls.for_commander(commander("Store 12", "West")).insecure is True
    assert tls.for_commander(commander("Store 13", "West")).ca_bundle == (
        tmp_path / "west-ca.pem"
    )
    assert tls.for_commander(commander("Store 14", "East")).fingerprint == FINGERPRINT
    assert config.insecure_scopes() == ["store Store 12"]


def test_insecure_scopes_list_every_scope(tmp_path):
    config = load(
        tmp_path,
        "tls:\n  insecure: true\n  groups: {west: {insecure: true}}\n"
        "  stores: {Store 1: {insecure: false}}\n",
    )
    assert config.insecure_scopes() == ["global", "group west"]
    assert load(tmp_path, "").insecure_scopes() == []


def test_relative_paths_resolve_against_the_config_folder(tmp_path, monkeypatch):
    folder = tmp_path / "etc"
    folder.mkdir()
    (folder / "ca.pem").write_text("x")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    path = write(
        folder,
        "agent:\n  commanders_file: inv/commanders.csv\n"
        "  credentials_file: /abs/credentials.yaml\n"
        "tls: {ca_bundle: ca.pem}\n",
    )
    config = load_config(path, env={})
    assert config.agent.commanders_file == folder / "inv" / "commanders.csv"
    assert config.agent.credentials_file == Path("/abs/credentials.yaml")
    assert config.tls.default.ca_bundle == folder / "ca.pem"


def test_unknown_keys_warn_once_each_naming_file_and_key(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="shared.config"):
        config = load(
            tmp_path,
            "timeout_second: 30\nagent: {id: edge-1, wrokers: 4}\n"
            "tls: {stores: {S1: {pin: x}}}\n",
        )
    messages = [r.getMessage() for r in caplog.records if r.name == "shared.config"]
    assert len(messages) == 3
    assert all(str(tmp_path / "config.yaml") in m for m in messages)
    assert any("timeout_second: unknown key" in m for m in messages)
    assert any("agent.wrokers: unknown key" in m and "'workers'" in m for m in messages)
    assert any("tls.stores.S1.pin: unknown key" in m for m in messages)
    assert config.agent.id == "edge-1"
    assert len(config.warnings) == 3


def test_reserved_sections_are_accepted_silently(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="shared.config"):
        load(tmp_path, "syslog: {udp_port: 5514, anything: [1]}\nspool: {max_mb: 5}\n")
    assert caplog.records == []


def test_loading_insecure_tls_logs_nothing(tmp_path, caplog):
    with caplog.at_level(logging.DEBUG, logger="shared.config"):
        load(tmp_path, "tls: {insecure: true}")
    assert caplog.records == []
