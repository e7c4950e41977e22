"""End-to-end harness: simulator, real Mosquitto, agent and aggregator processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from simulator import Simulator, generate_fleet
from tests.conftest import BROKER_USERS
from tests.support.mosquitto import Broker
from tests.support.ports import free_port

SIM_USER, SIM_PASSWORD = "monitor", "E2e-commander-pw9"


def wait_until(
    check: Callable[[], object], timeout: float = 30.0, what: str = ""
) -> object:
    """Poll ``check`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
        except (requests.RequestException, AssertionError, KeyError) as exc:
            last_error, result = exc, None
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what or check}: {last_error}")


@dataclass
class Proc:
    """A posproctor command running as a real process, its log in a file."""

    args: list[str]
    log_path: Path
    proc: subprocess.Popen | None = None

    def start(self) -> Proc:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "shared.cli", *self.args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        log.close()
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code, self.proc = self.proc.returncode, None
        return code

    def log(self) -> str:
        return (
            self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        )


@dataclass
class Site:
    """Everything one end-to-end test runs, and how to read /metrics."""

    root: Path
    sim: Simulator
    broker: Broker
    metrics_port: int = field(default_factory=free_port)
    procs: list[Proc] = field(default_factory=list)

    def agent_config(
        self, agent: str, *, user: str | None = None, interval_s: float = 3.0
    ) -> Path:
        folder = self.root / f"agent-{agent}"
        folder.mkdir(exist_ok=True)
        self.sim.write_csv(folder / "commanders.csv", agent=agent)
        creds = folder / "credentials.yaml"
        creds.write_text(
            f'credentials:\n  username: {SIM_USER}\n  password: "{SIM_PASSWORD}"\n'
        )
        creds.chmod(0o600)
        user = user or agent
        config = folder / "config.yaml"
        config.write_text(
            f"scrape_interval_minutes: {interval_s / 60}\n"
            "timeout_seconds: 2\n"
            f"tls:\n  ca_bundle: {self.sim.ca_file}\n"
            f"agent:\n  id: {agent}\n  workers: 8\n  start_jitter_seconds: 0\n"
            f"mqtt:\n  host: 127.0.0.1\n  port: {self.broker.tls_port}\n"
            f"  ca_file: {self.broker.ca_file}\n  username: {user}\n"
            f'  password: "{BROKER_USERS[user]}"\n'
        )
        return config

    def aggregator_config(self, stale_after_intervals: float = 2.0) -> Path:
        config = self.root / "aggregator.yaml"
        config.write_text(
            f"mqtt:\n  host: 127.0.0.1\n  port: {self.broker.tls_port}\n"
            f"  ca_file: {self.broker.ca_file}\n  username: aggregator\n"
            f'  password: "{BROKER_USERS["aggregator"]}"\n'
            f"aggregator:\n  id: e2e\n  listen: 127.0.0.1:{self.metrics_port}\n"
            f"  stale_after_intervals: {stale_after_intervals}\n"
        )
        return config

    def run(self, name: str, *args: str) -> Proc:
        proc = Proc(list(args), self.root / f"{name}.log").start()
        self.procs.append(proc)
        return proc

    def start_agent(self, agent: str = "edge-1", **kwargs: object) -> Proc:
        return self.run(
            agent, "agent", "--config", str(self.agent_config(agent, **kwargs))
        )

    def start_aggregator(self, **kwargs: object) -> Proc:
        config = self.aggregator_config(**kwargs)
        return self.run("aggregator", "aggregator", "--config", str(config))

    def metrics(self) -> dict[str, list]:
        """Return samples by metric name from a real HTTP GET of /metrics."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        text = requests.get(url, timeout=5).text
        samples: dict[str, list] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples.setdefault(sample.name, []).append(sample)
        return samples

    def value(self, name: str, **labels: str) -> float | None:
        for sample in self.metrics().get(name, []):
            if all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
        return None


@pytest.fixture
def site(tmp_path, broker) -> Iterator[Site]:
    fleet = generate_fleet(5, seed=11)
    with Simulator(fleet, username=SIM_USER, password=SIM_PASSWORD) as sim:
        running = Site(tmp_path, sim, broker)
        try:
            yield running
        finally:
            for proc in running.procs:
                proc.stop()
