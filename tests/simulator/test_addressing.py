"""Loopback-per-store mode: each store on its own 127.10.x.y address."""

from __future__ import annotations

import csv

import pytest

from shared.config import load_commanders
from simulator.server import loopback_address
from tests.simulator.conftest import Client, fault_of
from tests.support.ports import free_port


def test_loopback_addresses_skip_zero_and_broadcast():
    assert loopback_address(0) == "127.10.0.1"
    assert loopback_address(249) == "127.10.0.250"
    assert loopback_address(250) == "127.10.1.1"


def test_each_store_gets_its_own_address_and_certificate(make_sim, tmp_path):
    port = free_port("127.10.0.1")
    sim = make_sim(3, loopback_per_store=True, loopback_port=port)
    addresses = [sim.address(s.name) for s in sim.stores]
    assert addresses == [(f"127.10.0.{i}", port) for i in (1, 2, 3)]
    assert len({sim.fingerprint(s.name) for s in sim.stores}) == 3
    for store in sim.stores:
        client = Client(sim, store.name)  # verifies the IP SAN against the CA
        client.login()
        assert fault_of(client.data("vforecourtdiagnostics")) is None
        client.close()
    path = tmp_path / "commanders.csv"
    sim.write_csv(path)
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["ip"] for r in rows] == ["127.10.0.1", "127.10.0.2", "127.10.0.3"]
    assert {r["port"] for r in rows} == {str(port)}
    inventory = load_commanders(path)
    assert [c.base_url for c in inventory.commanders] == [
        sim.base_url(s.name) for s in sim.stores
    ]


def test_connection_refused_in_loopback_mode(make_sim):
    port = free_port("127.10.0.1")
    sim = make_sim(2, loopback_per_store=True, loopback_port=port)
    store = sim.stores[1].name
    sim.set_fault("connection_refused", [store])
    client = Client(sim, store)
    with pytest.raises(Exception, match=r"refused|Connection"):
        client.login()
    sim.clear_fault("connection_refused", [store])
    client.login()
    client.close()


def test_fixed_base_port_numbers_stores_in_order(make_sim):
    base = free_port()
    sim = make_sim(1, base_port=base)
    assert sim.address(sim.stores[0].name) == ("127.0.0.1", base)


def test_restart_keeps_addresses(make_sim):
    sim = make_sim(2)
    before = [sim.address(s.name) for s in sim.stores]
    sim.stop()
    sim.start()
    assert [sim.address(s.name) for s in sim.stores] == before
    client = Client(sim, sim.stores[1].name)
    client.login()
    client.close()
