"""Session cookies, the session cap and the account lockout."""

from __future__ import annotations

import pytest

from shared.config import Credentials, CredentialSet
from simulator import Simulator, generate_fleet
from simulator.xmlgen import MSG_LOCKED
from tests.simulator.conftest import PASSWORD, USER, Client, fault_of


def test_lockout_after_consecutive_failures(make_sim, clock):
    sim = make_sim(1, lockout_threshold=3, lockout_seconds=600)
    store = sim.stores[0].name
    client = Client(sim, store)
    messages = [
        fault_of(client.get("validate", user=USER, passwd="bad"))[1] for _ in range(3)
    ]
    assert messages == ["Invalid Credentials", "Invalid Credentials", MSG_LOCKED]
    # While locked even the right password fails.
    assert fault_of(client.get("validate", user=USER, passwd=PASSWORD))[1] == MSG_LOCKED
    assert sim.expected(store)["error_type"] == "auth"
    assert sim.counters(store).failed_logins == 4
    clock.advance(601)
    client.login()
    assert sim.expected(store)["error_type"] is None
    client.close()


def test_success_resets_the_failure_count(make_sim):
    sim = make_sim(1, lockout_threshold=2)
    client = Client(sim, sim.stores[0].name)
    for _ in range(3):
        client.get("validate", user=USER, passwd="bad")
        client.login()
    client.close()


def test_session_limit_refuse_keeps_existing_cookies(make_sim):
    sim = make_sim(1, session_limit=3, session_policy="refuse")
    store = sim.stores[0].name
    client = Client(sim, store)
    cookies = [client.login() for _ in range(3)]
    assert fault_of(client.get("validate", user=USER, passwd=PASSWORD)) is not None
    client.cookie = cookies[0]
    assert fault_of(client.data("vdatetime")) is None
    counters = sim.counters(store)
    assert (counters.cookies, counters.peak_cookies, counters.logins) == (3, 3, 3)
    client.close()


def test_session_limit_evict_drops_least_recently_used(make_sim, clock):
    sim = make_sim(1, session_limit=3, session_policy="evict")
    client = Client(sim, sim.stores[0].name)
    cookies = []
    for _ in range(3):
        cookies.append(client.login())
        clock.advance(1)
    client.cookie = cookies[0]
    client.data("vdatetime")  # now cookies[1] is the least recently used
    clock.advance(1)
    client.login()
    client.cookie = cookies[1]
    assert fault_of(client.data("vdatetime"))[0] == "CGIPortal.LoginRequired"
    for cookie in (cookies[0], cookies[2]):
        client.cookie = cookie
        assert fault_of(client.data("vdatetime")) is None
    client.close()


def test_idle_ttl_slides_with_use(make_sim, clock):
    sim = make_sim(1, cookie_ttl=900)
    client = Client(sim, sim.stores[0].name)
    client.login()
    for _ in range(3):
        clock.advance(899)
        assert fault_of(client.data("vdatetime")) is None
    clock.advance(901)
    assert fault_of(client.data("vdatetime"))[0] == "CGIPortal.LoginRequired"
    assert sim.counters(sim.stores[0].name).cookies == 0
    client.close()


def test_password_days_are_reported(make_sim):
    sim = make_sim(1, password_days=5)
    client = Client(sim, sim.stores[0].name)
    response = client.get("validate", user=USER, passwd=PASSWORD)
    assert 'days="5"' in response.text
    assert sim.expected(sim.stores[0].name)["password_days"] == 5
    client.close()


def test_wrong_username_fails(sim, client):
    assert fault_of(client.get("validate", user="admin", passwd=PASSWORD))[1] == (
        "Invalid Credentials"
    )


@pytest.mark.parametrize("bad", [{"session_policy": "drop"}, {"cookie_ttl": 0}])
def test_bad_settings_fail_early(make_sim, bad):
    with pytest.raises(ValueError):
        make_sim(1, **bad)


def test_credentials_overrides_per_group_and_store(make_sim):
    stores = generate_fleet(4, seed=1)
    assert [s.group for s in stores[:3]] == ["Great Lakes"] * 2 + ["North Texas"]
    creds = CredentialSet(
        Credentials("monitor", "default-pw"),
        groups={"North Texas": Credentials("region", "group-pw")},
        stores={"Store 0002": Credentials("local", "store-pw")},
    )
    sim = make_sim(stores=stores, credentials=creds)
    logins = {
        "Store 0001": ("monitor", "default-pw"),
        "Store 0002": ("local", "store-pw"),
        "Store 0003": ("region", "group-pw"),
    }
    for store, (user, password) in logins.items():
        client = Client(sim, store)
        client.login(user=user, password=password)
        assert fault_of(client.get("validate", user=USER, passwd=PASSWORD))
        client.close()


def test_faults_set_before_start_apply_at_start(clock):
    sim = Simulator(generate_fleet(1), clock=clock)
    sim.set_fault("connection_refused")
    sim.set_fault("pump_offline", ids=["1"])
    with sim:
        assert sim.expected(sim.stores[0].name)["pumps"]["1"] is False
        client = Client(sim, sim.stores[0].name)
        with pytest.raises(Exception, match=r"refused|Connection"):
            client.login()
        sim.clear_fault("connection_refused")
        client.login(user="monitor", password="monitor-pass")
        client.close()
