"""``simulate`` runs as a real process and stops cleanly on SIGINT."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
from click.testing import CliRunner

from simulator.cli import simulate

ROOT = Path(__file__).resolve().parents[2]


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_cli_serves_until_sigint(tmp_path):
    csv_out, ca_out = tmp_path / "commanders.csv", tmp_path / "ca.pem"
    creds = tmp_path / "credentials.yaml"
    creds.write_text("credentials: {username: watcher, password: pw-from-file}\n")
    creds.chmod(0o600)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simulator.cli",
            "--stores",
            "3",
            "--csv-out",
            str(csv_out),
            "--ca-out",
            str(ca_out),
            "--credentials",
            str(creds),
            "--session-policy",
            "evict",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        _wait_for(csv_out, proc)
        rows = list(csv.DictReader(csv_out.open(newline="")))
        assert [r["store"] for r in rows] == ["Store 0001", "Store 0002", "Store 0003"]
        url = f"https://{rows[2]['ip']}:{rows[2]['port']}/cgi-bin/CGILink"
        with requests.Session() as session:
            session.trust_env = False
            response = session.get(
                url,
                params={"cmd": "validate", "user": "watcher", "passwd": "pw-from-file"},
                verify=str(ca_out),
                timeout=5,
            )
        assert "<cookie>" in response.text
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_cli_rejects_a_bad_scenario_with_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("- {at: 5, stores: all, set: meteor_strike}\n")
    result = CliRunner().invoke(simulate, ["--stores", "2", "--scenario", str(bad)])
    assert result.exit_code == 1
    assert "bad.yaml: step 1: unknown fault 'meteor_strike'" in result.output


def test_cli_wants_stores_or_csv_not_both(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("ip,store,group,brand,enabled\n10.0.0.1,A,West,76,true\n")
    result = CliRunner().invoke(simulate, ["--stores", "2", "--csv", str(path)])
    assert result.exit_code == 2
    assert "not both" in result.output
