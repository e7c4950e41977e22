"""Scenario files: steps apply at their time; mistakes are named clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.errors import ConfigError
from simulator import Scenario, generate_fleet

DEMO = Path(__file__).resolve().parents[2] / "deploy" / "demo-scenario.yaml"


def test_steps_apply_at_their_time_and_repeat(make_sim, clock, tmp_path):
    path = tmp_path / "outage.yaml"
    path.write_text(
        "repeat_every: 600\n"
        "steps:\n"
        "  - {at: 60, stores: ['Store 0002'], set: controller_offline}\n"
        "  - {at: 300, stores: all, clear: controller_offline}\n"
        "  - {at: 100, stores: all, set: fep_disconnected}\n"
        "  - {at: 200, stores: all, clear: fep_disconnected}\n"
    )
    sim = make_sim(3, scenario=Scenario.load(path))
    assert sim.run_due_steps() == 0
    clock.advance(59)
    assert sim.run_due_steps() == 0
    assert sim.expected("Store 0002")["controller"] is True
    clock.advance(1)
    assert sim.run_due_steps() == 1
    assert sim.expected("Store 0002")["controller"] is False
    assert sim.expected("Store 0001")["controller"] is True
    clock.advance(240)  # t=300: the fep steps at 100 and 200 and the clear at 300
    assert sim.run_due_steps() == 3
    assert sim.expected("Store 0002")["controller"] is True
    assert sim.expected("Store 0003")["primary_fep"][1] is True
    clock.advance(360)  # t=660: the cycle repeats
    assert sim.run_due_steps() == 1
    assert sim.expected("Store 0002")["controller"] is False


def test_steps_select_by_group(make_sim, clock):
    scenario = Scenario.from_data(
        [{"at": 0, "groups": ["Southeast"], "set": "loyalty_disconnected"}], "inline"
    )
    stores = generate_fleet(10, seed=1)
    sim = make_sim(stores=stores, scenario=scenario)
    sim.run_due_steps()
    for store in stores:
        loyalty = sim.expected(store.name)["loyalty_fep"]
        if loyalty is not None:
            assert loyalty[1] is (store.group != "Southeast")


def test_scenario_runs_by_itself_on_the_clock(make_sim):
    scenario = Scenario.from_data(
        [{"at": 0, "stores": "all", "set": "fep_disconnected"}], "inline"
    )
    sim = make_sim(1, scenario=scenario, clock=lambda: 5.0)
    # The periodic tick applies the step without being asked; requests also do.
    from tests.simulator.conftest import Client

    client = Client(sim, sim.stores[0].name)
    client.login()
    assert "<connectionStatus>false</connectionStatus>" in (
        client.data("vpaymentdiagnostics").text
    )
    client.close()


BAD = [
    ("- {at: 10, stores: all, set: pumps_on_fire}", "step 1: unknown fault"),
    ("- {stores: all, set: controller_offline}", "step 1: at must be"),
    ("- {at: 1, set: controller_offline}", "step 1: needs stores"),
    ("- {at: 1, stores: all, set: a, clear: b}", "step 1: give exactly one"),
    (
        "- {at: 1, stores: all, set: controller_offline}\n"
        "- {at: 2, stores: all, set: slow_response, params: {seconds: fast}}",
        "step 2: seconds must be",
    ),
    (
        "- {at: 1, stores: all, set: pump_offline, params: {ids: ['1'], count: 2}}",
        "step 1: fault 'pump_offline': give ids or count",
    ),
    (
        "repeat_every: 60\nsteps:\n  - {at: 90, stores: all, set: cookie_expired}",
        "step 1: at 90 is not below repeat_every 60",
    ),
    (
        "- {at: 1, stores: all, set: controller_offline, when: now}",
        "unknown key 'when'",
    ),
    ("steps: [", ":1: "),
    ("", "expected a non-empty list of steps"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_bad_scenario_files_say_where(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        Scenario.load(path)
    assert str(path) in str(caught.value)
    assert message in str(caught.value)


def test_unknown_store_or_group_is_named(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(
        "- {at: 1, stores: ['Store 0001'], set: controller_offline}\n"
        "- {at: 2, groups: [Atlantis], set: controller_offline}\n"
    )
    scenario = Scenario.load(path)
    with pytest.raises(ConfigError, match=r"step 2: unknown group 'Atlantis'"):
        scenario.check(generate_fleet(3))
    path.write_text("- {at: 1, stores: ['Store 0009'], set: controller_offline}\n")
    with pytest.raises(
        ConfigError, match=r"s.yaml: step 1: unknown store 'Store 0009'"
    ):
        Scenario.load(path).check(generate_fleet(3))


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        Scenario.load(tmp_path / "none.yaml")


def test_demo_scenario_fits_the_default_fleet(make_sim, clock):
    scenario = Scenario.load(DEMO)
    assert scenario.repeat_every == 600
    sim = make_sim(stores=generate_fleet(12, seed=1), scenario=scenario)
    clock.advance(300)
    sim.run_due_steps()
    broken = {
        "Store 0001": lambda e: e["pumps"]["3"] is False,
        "Store 0005": lambda e: e["price_displays"]["Channel 2"] is False,
        "Store 0006": lambda e: list(e["dcrs"].values()).count(False) == 2,
        "Store 0002": lambda e: e["loyalty_fep"][1] is False,
        "Store 0008": lambda e: e["primary_fep"][1] is False,
        "Store 0003": lambda e: e["controller"] is False,
        "Store 0010": lambda e: e["error_type"] == "connection",
        "Store 0009": lambda e: e["slow_seconds"] == 45,
        "Store 0004": lambda e: e["primary_fep"][1] is None,
    }
    for store, check in broken.items():
        assert check(sim.expected(store)), store
    clock.advance(300)
    sim.run_due_steps()
    for store in broken:
        assert sim.faults(store) == {}, store
