"""A small simulated fleet over real HTTPS, and clients that trust it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.client import ClientSettings, CommanderClient
from shared.config import Commander, Credentials, TlsPolicy
from simulator import Simulator, generate_fleet

USER = "monitor"
PASSWORD = "Pw-for-tests-7781"


class FakeClock:
    """A monotonic clock tests move by hand."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(generate_fleet(4, seed=7), username=USER, password=PASSWORD) as s:
        yield s


def commander_for(sim: Simulator, index: int = 0) -> Commander:
    store = sim.stores[index]
    host, _ = sim.address(store.name)
    return Commander(
        ip=host,
        store=store.name,
        group=store.group,
        brand=store.brand,
        enabled=True,
        base_url=sim.base_url(store.name),
    )


def make_client(
    sim: Simulator,
    index: int = 0,
    *,
    password: str = PASSWORD,
    tls: TlsPolicy | None = None,
    timeout: float = 5.0,
    clock=None,
    cooldown: float = 1800.0,
) -> CommanderClient:
    kwargs = {"clock": clock} if clock is not None else {}
    return CommanderClient(
        commander_for(sim, index),
        Credentials(USER, password),
        tls or TlsPolicy(ca_bundle=sim.ca_file),
        ClientSettings(timeout=timeout, lockout_cooldown=cooldown),
        **kwargs,
    )


def write_config(folder: Path, sim: Simulator, **agent: object) -> Path:
    sim.write_csv(folder / "commanders.csv")
    creds = folder / "credentials.yaml"
    creds.write_text(f'credentials:\n  username: {USER}\n  password: "{PASSWORD}"\n')
    creds.chmod(0o600)
    settings = {"workers": 4, "start_jitter_seconds": 0, **agent}
    lines = "".join(f"  {k}: {v}\n" for k, v in settings.items())
    config = folder / "config.yaml"
    config.write_text(
        "scrape_interval_minutes: 0.05\n"
        "timeout_seconds: 1\n"
        f"tls:\n  ca_bundle: {sim.ca_file}\n"
        f"agent:\n{lines}"
    )
    return config


@pytest.fixture
def fleet(tmp_path):
    with Simulator(generate_fleet(6, seed=3), username=USER, password=PASSWORD) as sim:
        yield sim, write_config(tmp_path, sim)
