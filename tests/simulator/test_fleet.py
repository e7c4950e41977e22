"""Generated and CSV-based fleets, and the commanders.csv the simulator writes."""

from __future__ import annotations

import csv

from simulator import fleet_from_csv, generate_fleet
from simulator.fleet import BRAND_FEPS, LOYALTY_FEP
from tests.simulator.conftest import Client, fault_of


def test_same_seed_same_fleet_other_seed_other_fleet():
    assert generate_fleet(30, seed=4) == generate_fleet(30, seed=4)
    assert generate_fleet(30, seed=4) != generate_fleet(30, seed=5)


def test_generated_fleet_is_varied_and_realistic():
    stores = generate_fleet(200, seed=1)
    assert stores[0].name == "Store 0001"
    assert stores[199].name == "Store 0200"
    assert len({s.site_id for s in stores}) == 200
    assert len({s.group for s in stores}) >= 4
    assert len({s.brand for s in stores}) >= 8
    for store in stores:
        assert 4 <= len(store.fueling_points) <= 16
        assert 0 <= len(store.price_displays) <= 3
        assert 1 <= len(store.registers) <= 4
        assert len(store.pinpads) == len(store.registers)
        assert store.primary_fep.name == BRAND_FEPS[store.brand]
        assert all(d.startswith("Channel ") for d in store.price_displays)
    with_loyalty = [s for s in stores if s.loyalty_fep is not None]
    assert 0 < len(with_loyalty) < len(stores)
    assert all(s.loyalty_fep.name == LOYALTY_FEP for s in with_loyalty)
    no_dcr = [s for s in stores if not all(fp.has_dcr for fp in s.fueling_points)]
    assert 0 < len(no_dcr) < len(stores)
    assert any(s.tank_sensor for s in stores)


def test_brand_decides_the_card_processor():
    assert BRAND_FEPS["Phillips 66"] == BRAND_FEPS["76"] == "Phillips66"
    assert BRAND_FEPS["Texaco"] == "Chevron"
    assert BRAND_FEPS["Exxon"] == BRAND_FEPS["Mobil"] == "buypass"
    assert BRAND_FEPS["Unbranded"] == "nbs"


def test_fleet_from_first_version_csv(tmp_path):
    path = tmp_path / "commanders.csv"
    path.write_text(
        "ip,store,group,brand,enabled\n"
        "10.1.0.5,Ridge Road,North Texas,Chevron,true\n"
        "10.1.0.6,Main St,Gulf Coast,Exxon,false\n"
    )
    stores = fleet_from_csv(path)
    assert [(s.name, s.group, s.brand, s.enabled) for s in stores] == [
        ("Ridge Road", "North Texas", "Chevron", True),
        ("Main St", "Gulf Coast", "Exxon", False),
    ]
    assert stores[0].primary_fep.name == "Chevron"
    assert stores[1].source_ip == "10.1.0.6"
    assert fleet_from_csv(path) == stores


def test_write_csv_lists_every_store_with_its_port(make_sim, tmp_path):
    sim = make_sim(5)
    path = tmp_path / "commanders.csv"
    sim.write_csv(path, agent="edge-1")
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["store"] for r in rows] == [s.name for s in sim.stores]
    for row, store in zip(rows, sim.stores, strict=True):
        assert (row["ip"], int(row["port"])) == sim.address(store.name)
        assert (row["group"], row["brand"]) == (store.group, store.brand)
        assert row["enabled"] == "true"
        assert row["agent"] == "edge-1"


def test_csv_fleet_is_served(make_sim, tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("ip,store,group,brand,enabled\n10.9.9.9,Depot,West,76,yes\n")
    sim = make_sim(stores=fleet_from_csv(path))
    client = Client(sim, "Depot")
    client.login()
    assert "Phillips66" in client.data("vpaymentdiagnostics").text
    assert fault_of(client.data("vdatetime")) is None
    client.close()


def test_a_bigger_fleet_starts_with_the_same_stores():
    assert generate_fleet(50, seed=3)[:10] == generate_fleet(10, seed=3)
