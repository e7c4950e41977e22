"""Timed fault scenarios: a YAML list of steps that set and clear faults.

    repeat_every: 600          # optional; every `at` must be below it
    steps:
      - {at: 60, stores: ["Store 0003"], set: controller_offline}
      - {at: 90, groups: [Gulf Coast], set: slow_response, params: {seconds: 40}}
      - {at: 300, stores: all, clear: controller_offline}

A bare list of steps is also accepted (no repeat). ``at`` counts seconds from
the simulator's start on its (injectable) clock. Every mistake is a
``ConfigError`` naming the file and the step (1-based).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any

import yaml

from shared.errors import ConfigError
from simulator.faults import check_params
from simulator.fleet import SimStore

_STEP_KEYS = {"at", "set", "clear", "stores", "groups", "group", "params"}


@dataclass(frozen=True, slots=True)
class Step:
    """Set or clear one fault on some stores at one time."""

    index: int  # 1-based position in the file
    at: float
    fault: str
    clear: bool = False
    stores: tuple[str, ...] | None = None  # None: every store
    groups: tuple[str, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)

    def targets(self, stores: Sequence[SimStore]) -> list[str]:
        """Return the names of the stores this step selects, in fleet order."""
        if self.stores is None:
            return [store.name for store in stores]
        wanted = set(self.stores)
        return [s.name for s in stores if s.name in wanted or s.group in self.groups]


@dataclass(frozen=True, slots=True)
class Scenario:
    """A validated list of steps, optionally repeating."""

    steps: tuple[Step, ...]
    repeat_every: float | None = None
    source: str = "scenario"

    @classmethod
    def load(cls, path: Path) -> Scenario:
        """Read and validate a scenario file."""
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
            problem = getattr(exc, "problem", None) or "not valid YAML"
            raise ConfigError(f"{where}: {problem}") from exc
        return cls.from_data(data, str(path))

    @classmethod
    def from_data(cls, data: Any, source: str = "scenario") -> Scenario:
        """Validate already-parsed YAML (a list, or a mapping with ``steps``)."""
        repeat = None
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - {"steps", "repeat_every"})
            if unknown:
                raise ConfigError(f"{source}: unknown key {unknown[0]!r}")
            repeat = _repeat(data.get("repeat_every"), source)
            data = data.get("steps")
        if not isinstance(data, list) or not data:
            raise ConfigError(f"{source}: expected a non-empty list of steps")
        steps = tuple(
            _step(raw, index, f"{source}: step {index}", repeat)
            for index, raw in enumerate(data, start=1)
        )
        return cls(tuple(sorted(steps, key=lambda s: (s.at, s.index))), repeat, source)

    def check(self, stores: Sequence[SimStore]) -> None:
        """Fail if a step names a store or group the fleet does not have."""
        names = {store.name for store in stores}
        groups = {store.group for store in stores}
        for step in self.steps:
            where = f"{self.source}: step {step.index}"
            for name in step.stores or ():
                if name not in names:
                    raise ConfigError(f"{where}: unknown store {name!r}")
            for group in step.groups:
                if group not in groups:
                    raise ConfigError(f"{where}: unknown group {group!r}")

    def timeline(self) -> Iterator[tuple[float, Step]]:
        """Yield (offset, step) in time order, forever if it repeats."""
        if self.repeat_every is None:
            yield from ((step.at, step) for step in self.steps)
            return
        for cycle in count():
            base = cycle * self.repeat_every
            yield from ((base + step.at, step) for step in self.steps)


def _repeat(value: Any, source: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"{source}: repeat_every must be a number > 0, got {value!r}")
    return float(value)


def _step(raw: Any, index: int, where: str, repeat: float | None) -> Step:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {raw!r}")
    unknown = sorted(set(raw) - _STEP_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}")
    at = _at(raw.get("at"), where, repeat)
    fault, clear = _action(raw, where)
    stores, groups = _selector(raw, where)
    params = raw.get("params") or {}
    if not isinstance(params, Mapping):
        raise ConfigError(f"{where}: params must be a mapping, got {params!r}")
    if clear and params:
        raise ConfigError(f"{where}: clear takes no params")
    try:
        params = check_params(fault, params)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    return Step(index, at, fault, clear, stores, groups, params)


def _at(value: Any, where: str, repeat: float | None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{where}: at must be seconds >= 0, got {value!r}")
    if repeat is not None and value >= repeat:
        raise ConfigError(f"{where}: at {value} is not below repeat_every {repeat:g}")
    return float(value)


def _action(raw: Mapping[str, Any], where: str) -> tuple[str, bool]:
    if ("set" in raw) == ("clear" in raw):
        raise ConfigError(f"{where}: give exactly one of set or clear")
    fault = raw.get("set", raw.get("clear"))
    if not isinstance(fault, str) or not fault:
        raise ConfigError(f"{where}: expected a fault name, got {fault!r}")
    return fault, "clear" in raw


def _selector(
    raw: Mapping[str, Any], where: str
) -> tuple[tuple[str, ...] | None, tuple[str, ...]]:
    stores = raw.get("stores")
    groups = raw.get("groups", raw.get("group"))
    if "groups" in raw and "group" in raw:
        raise ConfigError(f"{where}: give groups or group, not both")
    if stores is None and groups is None:
        raise ConfigError(f"{where}: needs stores (names or 'all') or groups")
    if stores == "all":
        if groups is not None:
            raise ConfigError(f"{where}: stores 'all' already selects every group")
        return None, ()
    return _names(stores, "stores", where), _names(groups, "groups", where)


def _names(value: Any, key: str, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}: {key} must be a list of names, got {value!r}")
    if not all(isinstance(item, str | int) for item in value):
        raise ConfigError(f"{where}: {key} must be a list of names, got {value!r}")
    return tuple(str(item) for item in value)


class ScenarioRunner:
    """Tell which steps fall due as the clock moves on."""

    def __init__(self, scenario: Scenario, start: float) -> None:
        self._start = start
        self._timeline = scenario.timeline()
        self._next = next(self._timeline, None)

    def due(self, now: float) -> list[Step]:
        """Return the steps due by ``now`` that were not returned before."""
        steps = []
        while self._next is not None and self._start + self._next[0] <= now:
            steps.append(self._next[1])
            self._next = next(self._timeline, None)
        return steps

    def pending(self, now: float) -> bool:
        """Tell cheaply whether ``due(now)`` would return anything."""
        return self._next is not None and self._start + self._next[0] <= now
