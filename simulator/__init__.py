"""Simulated Verifone Commanders for tests, benchmarks, demos and rehearsals."""

from simulator.commander import StoreCounters
from simulator.faults import FAULTS
from simulator.fleet import SimStore, fleet_from_csv, generate_fleet
from simulator.scenario import Scenario
from simulator.server import Simulator

__all__ = [
    "FAULTS",
    "Scenario",
    "SimStore",
    "Simulator",
    "StoreCounters",
    "fleet_from_csv",
    "generate_fleet",
]
