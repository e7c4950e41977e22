"""Fixtures for the simulator tests: a fake clock and an HTTPS client."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator

import pytest
import requests

from simulator import Simulator, generate_fleet

DIAG = "{urn:vfi-sapphire:diagnostics.2017-01-17}"
DOMAIN = "{urn:vfi-sapphire:np.domain.2001-07-01}"
USER, PASSWORD = "monitor", "s3cret&pass#1"


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Client:
    """A requests session against one simulated store, trusting the sim's CA."""

    def __init__(self, sim: Simulator, store: str) -> None:
        self.url = sim.base_url(store) + "/cgi-bin/CGILink"
        self.session = requests.Session()
        self.session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
        self.session.verify = str(sim.ca_file)
        self.cookie: str | None = None

    def get(self, cmd: str, timeout: float = 5.0, **params: str) -> requests.Response:
        return self.session.get(
            self.url, params={"cmd": cmd, **params}, timeout=timeout
        )

    def login(self, user: str = USER, password: str = PASSWORD, **extra: str) -> str:
        response = self.get("validate", user=user, passwd=password, **extra)
        match = re.search(r"<cookie>([0-9a-f]{32})</cookie>", response.text)
        assert match, f"login failed: {response.text}"
        self.cookie = match.group(1)
        return self.cookie

    def data(self, cmd: str, **params: str) -> requests.Response:
        return self.get(cmd, cookie=self.cookie or "", **params)

    def close(self) -> None:
        self.session.close()


def fault_of(response: requests.Response) -> tuple[str, str] | None:
    """Return (faultCode, message) if the body is a VFI Fault."""
    root = ET.fromstring(response.content)
    fault = root.find(f"{DOMAIN}Fault")
    if fault is None:
        return None
    message = fault.find(f"detail/{DOMAIN}vfiFault/{DOMAIN}message")
    return fault.findtext("faultCode") or "", (
        message.text if message is not None else ""
    ) or ""


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_sim(clock, tmp_path) -> Iterator[Callable[..., Simulator]]:
    """Start simulators (stopped at the end) with the fake clock by default."""
    started: list[Simulator] = []

    def make(n: int = 2, **options) -> Simulator:
        options.setdefault("clock", clock)
        options.setdefault("username", USER)
        options.setdefault("password", PASSWORD)
        stores = options.pop("stores", None) or generate_fleet(n, seed=7)
        sim = Simulator(stores, **options)
        sim.start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.stop()


@pytest.fixture
def sim(make_sim) -> Simulator:
    return make_sim()


@pytest.fixture
def client(sim) -> Iterator[Client]:
    c = Client(sim, sim.stores[0].name)
    yield c
    c.close()
