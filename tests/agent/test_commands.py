"""The user-facing commands as real processes: check, probe, run and demo."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from csv import DictReader

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support.ports import free_port

CLI = [sys.executable, "-m", "shared.cli"]


def posproctor(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def _samples(url: str, name: str) -> list:
    text = requests.get(url, timeout=5).text
    return [
        sample
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def _wait_for(check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
        except requests.RequestException:
            result = None
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_check_summarises_a_valid_configuration(fleet):
    _, config = fleet
    result = posproctor("check", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout
    assert "6 enabled, 0 disabled" in result.stdout


def test_check_reports_a_bad_file_in_one_line_and_fails(fleet, tmp_path):
    _, config = fleet
    csv = tmp_path / "commanders.csv"
    csv.write_text(csv.read_text().replace("true", "maybe", 1))
    result = posproctor("check", "--config", str(config))
    assert result.returncode == 2
    assert "commanders.csv:2" in result.stderr
    assert "Traceback" not in result.stderr


def test_probe_prints_the_store_and_its_raw_xml(fleet):
    sim, config = fleet
    host, port = sim.address(sim.stores[0].name)
    result = posproctor("probe", f"{host}:{port}", "--config", str(config), "--raw")
    assert result.returncode == 0, result.stderr
    assert sim.stores[0].name in result.stdout
    assert "--- vforecourtdiagnostics" in result.stdout
    assert "<fuelingPoint" in result.stdout
    assert "cookie" not in result.stdout.lower()


def test_probe_of_an_unreachable_commander_fails_with_one_line(fleet):
    _, config = fleet
    port = free_port()
    result = posproctor("probe", f"127.0.0.1:{port}", "--config", str(config))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: connection")


def test_run_serves_the_fleet_on_metrics_and_stops_cleanly(fleet):
    _, config = fleet
    port = free_port()
    with config.open("a") as out:
        out.write(f"aggregator:\n  listen: 127.0.0.1:{port}\n")
    proc = subprocess.Popen(
        [*CLI, "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        found = _wait_for(lambda: len(_samples(url, "posproctor_scrape_success")) == 6)
        assert found
        up = _samples(url, "posproctor_agent_up")
        assert [s.value for s in up] == [1.0]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "embedded agent+aggregator stopped" in err


def test_demo_shows_fleet_health_and_cleans_up_on_ctrl_c(tmp_path):
    port = free_port()
    screen = tmp_path / "screen.txt"
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    with screen.open("w") as out:
        proc = subprocess.Popen(
            [*CLI, "demo", "--stores", "12", "--port", str(port), "--interval", "2"],
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        _wait_for(lambda: len(_samples(url, "posproctor_scrape_success")) == 12)
        _wait_for(lambda: "stores needing attention" in screen.read_text())
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    shown = screen.read_text()
    assert "POSProctor demo: 12 simulated stores" in shown
    assert "device class" in shown and "pumps" in shown
    assert f"http://127.0.0.1:{port}/metrics" in shown
    assert not list(tmp_path.glob("posproctor-demo-*"))


def test_demo_names_a_busy_port_instead_of_a_traceback(tmp_path):
    port = free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        result = posproctor("demo", "--stores", "3", "--port", str(port))
    assert result.returncode == 2
    assert "choose another with --port" in result.stderr
    assert "Traceback" not in result.stderr


def test_simulate_serves_stores_a_probe_can_read(tmp_path):
    csv, ca = tmp_path / "commanders.csv", tmp_path / "ca.pem"
    proc = subprocess.Popen(
        [
            *CLI,
            "simulate",
            "--stores",
            "2",
            "--password",
            "Sim-pass-1",
            "--csv-out",
            str(csv),
            "--ca-out",
            str(ca),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(lambda: csv.exists() and ca.exists())
        (tmp_path / "credentials.yaml").write_text(
            'credentials:\n  username: monitor\n  password: "Sim-pass-1"\n'
        )
        (tmp_path / "credentials.yaml").chmod(0o600)
        config = tmp_path / "config.yaml"
        config.write_text(f"tls:\n  ca_bundle: {ca}\n")
        row = next(DictReader(csv.open()))
        address = f"{row['ip']}:{row['port']}"
        result = posproctor("probe", address, "--config", str(config), "--json")
        assert result.returncode == 0, result.stderr
        assert '"error_type": null' in result.stdout
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert proc.returncode == 0
