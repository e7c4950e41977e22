"""The poll loop: cycles, deadlines, inventory reloads and state-change logs."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

from agent.poller import Poller
from agent.sinks import MemorySink
from shared.config import load_config
from shared.model import ErrorType
from tests.agent.conftest import PASSWORD


def make_poller(config_path: Path) -> tuple[Poller, MemorySink]:
    sink = MemorySink()
    poller = Poller(load_config(config_path), sink)
    poller.load_inventory()
    return poller, sink


def test_a_cycle_reports_every_store_once_and_sums_up(fleet):
    sim, config = fleet
    poller, sink = make_poller(config)
    summary = poller.run_cycle()
    assert sorted(s.store for s in sink.statuses) == sorted(s.name for s in sim.stores)
    assert all(s.ok for s in sink.statuses)
    assert all(s.cycle == 1 for s in sink.statuses)
    assert summary.stores == 6 and summary.ok == 6 and summary.failed == 0
    assert 1 <= summary.peak_concurrency <= 4
    assert sink.summaries == [summary]
    poller.close()


def test_a_stuck_store_is_a_timeout_and_never_holds_the_cycle(fleet):
    sim, config = fleet
    slow = sim.stores[0].name
    sim.set_fault("slow_response", [slow], seconds=30)
    poller, sink = make_poller(config)
    summary = poller.run_cycle()
    by_store = {s.store: s for s in sink.statuses}
    assert by_store[slow].error_type is ErrorType.TIMEOUT
    assert summary.ok == 5 and summary.failed == 1
    assert summary.errors == {"timeout": 1}
    assert summary.duration < 10  # the 30 s answer was not waited for
    poller.close()


def test_a_removed_store_is_forgotten_and_an_added_one_polled(fleet, tmp_path):
    sim, config = fleet
    poller, sink = make_poller(config)
    poller.run_cycle()
    csv = tmp_path / "commanders.csv"
    lines = csv.read_text().splitlines()
    header, first, rest = lines[0], lines[1], lines[2:]
    csv.write_text("\n".join([header, *rest]) + "\n")
    poller.reload_if_changed()
    removed_store = sim.stores[0].name
    assert sink.removed == [removed_store]
    sink.statuses.clear()
    poller.run_cycle()
    assert removed_store not in {s.store for s in sink.statuses}
    csv.write_text("\n".join([header, first, *rest]) + "\n")
    os.utime(csv, ns=(1, 1))  # a rewrite within the same second still counts
    poller.reload_if_changed()
    sink.statuses.clear()
    poller.run_cycle()
    assert removed_store in {s.store for s in sink.statuses}
    poller.close()


def test_a_broken_inventory_edit_keeps_the_previous_one(fleet, tmp_path, caplog):
    _, config = fleet
    poller, sink = make_poller(config)
    csv = tmp_path / "commanders.csv"
    good = csv.read_text()
    csv.write_text(good.replace("127.0.0.1", "127.0.0.300", 1))
    with caplog.at_level(logging.ERROR):
        poller.reload_if_changed()
    assert "commanders.csv:2" in caplog.text
    assert "127.0.0.300" in caplog.text
    poller.run_cycle()
    assert len(sink.statuses) == 6 and all(s.ok for s in sink.statuses)
    assert sink.removed == []
    poller.close()


def test_state_changes_are_logged_once_not_every_cycle(fleet, caplog):
    sim, config = fleet
    name = sim.stores[1].name
    poller, _ = make_poller(config)
    caplog.set_level(logging.INFO, logger="agent.poller")
    poller.run_cycle()
    sim.set_fault("http_500", [name])
    poller.run_cycle()
    poller.run_cycle()
    sim.clear_fault("http_500", [name])
    poller.run_cycle()
    poller.run_cycle()
    down = [r for r in caplog.records if "store down" in r.getMessage()]
    back = [r for r in caplog.records if "store back" in r.getMessage()]
    cycles = [r for r in caplog.records if "cycle done" in r.getMessage()]
    assert len(down) == 1 and name in down[0].getMessage()
    assert down[0].levelno == logging.WARNING
    assert len(back) == 1 and name in back[0].getMessage()
    assert len(cycles) == 5
    poller.close()


def test_run_keeps_a_cadence_and_stops_on_the_event(fleet):
    _, config = fleet
    poller, sink = make_poller(config)  # interval 3 s
    stop = threading.Event()
    thread = threading.Thread(target=poller.run, args=(stop,), daemon=True)
    thread.start()
    try:
        deadline = threading.Event()
        while len(sink.summaries) < 2 and not deadline.wait(0.1):
            pass
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    starts = [s.started for s in sink.summaries]
    assert len(starts) >= 2
    assert 2.5 <= starts[1] - starts[0] <= 4.0
    poller.close()


def test_agent_command_prints_json_lines_for_one_cycle(fleet):
    _, config = fleet
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "shared.cli",
            "agent",
            "--config",
            str(config),
            "--output",
            "-",
            "--once",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = [r["kind"] for r in records]
    assert kinds.count("status") == 6 and kinds[-1] == "cycle"
    assert all(r["error_type"] is None for r in records if r["kind"] == "status")
    assert PASSWORD not in result.stdout + result.stderr
    assert "cycle done" in result.stderr
