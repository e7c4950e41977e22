"""Fault names, their parameters, and what a store looks like under them.

Pure code: the server keeps each store's active faults as a mapping of fault
name to resolved parameters and asks ``build_view`` what to serve. Both the
XML served and ``expected()`` come from the same ``StoreView``, so they
cannot disagree.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from simulator.fleet import SimStore

DATA_COMMANDS = ("vforecourtdiagnostics", "vpaymentdiagnostics", "vposdiagnostics")
COMMANDS = ("validate", *DATA_COMMANDS, "vdatetime", "releaseCredential")

Params = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """One fault: what it does and which parameters it takes."""

    summary: str
    params: tuple[str, ...] = ()
    one_shot: bool = False  # acts once when set; nothing to clear


_DEVICE_PARAMS = ("ids", "count", "mode")
_SELECT_PARAMS = ("ids", "count")

FAULTS: dict[str, FaultSpec] = {
    "pump_offline": FaultSpec("pumps go offline (ids or count)", _DEVICE_PARAMS),
    "dcr_offline": FaultSpec("card readers go offline (ids or count)", _DEVICE_PARAMS),
    "price_display_offline": FaultSpec(
        "price signs go offline (ids or count)", _DEVICE_PARAMS
    ),
    "tank_sensor_offline": FaultSpec("the tank level sensor goes offline", ("mode",)),
    "pinpad_offline": FaultSpec("PIN pads disconnect (ids or count)", _SELECT_PARAMS),
    "register_offline": FaultSpec(
        "registers go offline (ids or count)", _SELECT_PARAMS
    ),
    "controller_offline": FaultSpec("the forecourt controller and its devices go down"),
    "fep_disconnected": FaultSpec("the primary card-processor link is down"),
    "fep_undetermined": FaultSpec("the primary link reports 'Undetermined'"),
    "loyalty_disconnected": FaultSpec("the loyalty link is down"),
    "slow_response": FaultSpec(
        "answers wait `seconds` longer", ("seconds", "commands")
    ),
    "connection_refused": FaultSpec("the store stops listening (TCP refused)"),
    "http_500": FaultSpec("Apache answers 500 with an HTML page", ("commands",)),
    "fault_response": FaultSpec(
        "data commands answer with a VFI Fault", ("commands", "code", "message")
    ),
    "truncated_xml": FaultSpec("the body is cut mid-document", ("commands", "mode")),
    "empty_body": FaultSpec("HTTP 200 with an empty body", ("commands",)),
    "cookie_expired": FaultSpec("every session cookie is dropped now", one_shot=True),
    "wrong_credentials": FaultSpec(
        "the store accepts a different password", ("password",)
    ),
    "session_limit_reached": FaultSpec("other clients hold every session slot"),
    "otp_required": FaultSpec("login asks for a one-time password", ("otp",)),
}

_DEVICE_MODES = ("offline", "unavailable")
_TRUNCATE_MODES = ("body", "connection")


def check_params(fault: str, params: Params) -> dict[str, Any]:
    """Return ``params`` normalised, or raise ValueError saying what is wrong."""
    spec = FAULTS.get(fault)
    if spec is None:
        raise ValueError(f"unknown fault {fault!r} (known: {', '.join(FAULTS)})")
    unknown = sorted(set(params) - set(spec.params))
    if unknown:
        allowed = ", ".join(spec.params) or "none"
        raise ValueError(
            f"fault {fault!r} takes no parameter {unknown[0]!r} (allowed: {allowed})"
        )
    clean = {name: _CHECKS[name](value) for name, value in params.items()}
    modes = _TRUNCATE_MODES if fault == "truncated_xml" else _DEVICE_MODES
    if "mode" in clean and clean["mode"] not in modes:
        raise ValueError(
            f"fault {fault!r}: mode must be one of {', '.join(modes)}; "
            f"got {clean['mode']!r}"
        )
    if "ids" in clean and "count" in clean:
        raise ValueError(f"fault {fault!r}: give ids or count, not both")
    return clean


def _check_ids(value: Any) -> tuple[str, ...]:
    if isinstance(value, str | int):
        value = [value]
    if not isinstance(value, list | tuple) or not value:
        raise ValueError(f"ids must be a non-empty list, got {value!r}")
    return tuple(str(item) for item in value)


def _check_count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"count must be a whole number >= 1, got {value!r}")
    return value


def _check_seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"seconds must be a number >= 0, got {value!r}")
    return float(value)


def _check_commands(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not value:
        raise ValueError(f"commands must be a non-empty list, got {value!r}")
    unknown = [item for item in value if item not in COMMANDS]
    if unknown:
        raise ValueError(
            f"unknown command {unknown[0]!r} (known: {', '.join(COMMANDS)})"
        )
    return tuple(str(item) for item in value)


def _check_text(value: Any) -> str:
    if not isinstance(value, str | int) or isinstance(value, bool) or value == "":
        raise ValueError(f"expected a non-empty string, got {value!r}")
    return str(value)


_CHECKS = {
    "ids": _check_ids,
    "count": _check_count,
    "mode": _check_text,
    "seconds": _check_seconds,
    "commands": _check_commands,
    "code": _check_text,
    "message": _check_text,
    "password": _check_text,
    "otp": _check_text,
}


def resolve(
    fault: str, params: Params, store: SimStore, rng: random.Random
) -> dict[str, Any]:
    """Fix the random choices and defaults of ``fault`` for one store."""
    resolved = dict(params)
    ids = _device_ids(fault, store)
    if ids is not None:
        if "ids" in resolved:
            resolved["ids"] = tuple(i for i in resolved["ids"] if i in ids)
        else:
            count = min(resolved.pop("count", 1), len(ids))
            resolved["ids"] = tuple(sorted(rng.sample(ids, count), key=_id_order))
    return resolved


def _id_order(value: str) -> tuple[int, str]:
    return (int(value), "") if value.isdigit() else (1 << 30, value)


def _device_ids(fault: str, store: SimStore) -> list[str] | None:
    """Return the ids a device fault chooses from, or None for other faults."""
    if fault == "pump_offline":
        return [fp.sysid for fp in store.fueling_points]
    if fault == "dcr_offline":
        return [fp.sysid for fp in store.fueling_points if fp.has_dcr]
    if fault == "price_display_offline":
        return list(store.price_displays)
    if fault == "pinpad_offline":
        return [pad.pop_id for pad in store.pinpads]
    if fault == "register_offline":
        return [till.sysid for till in store.registers]
    return None


def commands_hit(params: Params, command: str, default: Sequence[str]) -> bool:
    """Tell whether a transport fault with ``params`` applies to ``command``."""
    return command in params.get("commands", default)


@dataclass(frozen=True, slots=True)
class DeviceState:
    """What the Commander says of one device."""

    id: str
    status: str = "Online"
    available: bool = True

    @property
    def healthy(self) -> bool:
        return self.status == "Online" and self.available


@dataclass(frozen=True, slots=True)
class PointState:
    """One fueling point: its pump and, if fitted, its DCR."""

    sysid: str
    pump: DeviceState
    dcr: DeviceState | None


@dataclass(frozen=True, slots=True)
class FepState:
    """One FEP link; ``connection`` is the text of ``connectionStatus``."""

    name: str
    primary: bool
    connection: str = "true"

    @property
    def connected(self) -> bool | None:
        return {"true": True, "false": False}.get(self.connection)


@dataclass(frozen=True, slots=True)
class PinPadState:
    pop_id: str
    workstation: str
    model: str
    connected: bool = True


@dataclass(frozen=True, slots=True)
class RegisterState:
    sysid: str
    type: str
    status: str = "Online"


@dataclass(frozen=True, slots=True)
class StoreView:
    """Everything the diagnostics commands report for one store right now."""

    controller: DeviceState
    points: tuple[PointState, ...]
    tank_sensor: DeviceState | None
    price_displays: tuple[DeviceState, ...]
    feps: tuple[FepState, ...]
    pinpads: tuple[PinPadState, ...]
    registers: tuple[RegisterState, ...]


_OFF = DeviceState("", "Offline", False)
_UNAVAILABLE = DeviceState("", "Online", False)


def _state(device_id: str, down: bool, mode: str = "offline") -> DeviceState:
    if not down:
        return DeviceState(device_id)
    template = _UNAVAILABLE if mode == "unavailable" else _OFF
    return DeviceState(device_id, template.status, template.available)


def _down_ids(faults: Mapping[str, Params], fault: str) -> tuple[set[str], str]:
    params = faults.get(fault)
    if params is None:
        return set(), "offline"
    return set(params.get("ids", ())), params.get("mode", "offline")


def build_view(store: SimStore, faults: Mapping[str, Params]) -> StoreView:
    """Apply ``faults`` (name -> resolved params) to ``store``."""
    dead = "controller_offline" in faults
    return StoreView(
        controller=_state("", dead),
        points=_points(store, faults, dead),
        tank_sensor=_tank(store, faults, dead),
        price_displays=_displays(store, faults, dead),
        feps=_feps(store, faults),
        pinpads=_pinpads(store, faults),
        registers=_registers(store, faults),
    )


def _points(
    store: SimStore, faults: Mapping[str, Params], dead: bool
) -> tuple[PointState, ...]:
    pumps, pump_mode = _down_ids(faults, "pump_offline")
    dcrs, dcr_mode = _down_ids(faults, "dcr_offline")
    return tuple(
        PointState(
            fp.sysid,
            _state(fp.sysid, dead or fp.sysid in pumps, pump_mode),
            _state(fp.sysid, dead or fp.sysid in dcrs, dcr_mode)
            if fp.has_dcr
            else None,
        )
        for fp in store.fueling_points
    )


def _tank(
    store: SimStore, faults: Mapping[str, Params], dead: bool
) -> DeviceState | None:
    if not store.tank_sensor:
        return None
    params = faults.get("tank_sensor_offline")
    mode = params.get("mode", "offline") if params is not None else "offline"
    return _state("", dead or params is not None, mode)


def _displays(
    store: SimStore, faults: Mapping[str, Params], dead: bool
) -> tuple[DeviceState, ...]:
    down, mode = _down_ids(faults, "price_display_offline")
    return tuple(
        _state(name, dead or name in down, mode) for name in store.price_displays
    )


def _feps(store: SimStore, faults: Mapping[str, Params]) -> tuple[FepState, ...]:
    loyalty = store.loyalty_fep
    states = []
    for fep in store.feps:
        connection = "true"
        if fep.primary and "fep_disconnected" in faults:
            connection = "false"
        elif fep.primary and "fep_undetermined" in faults:
            connection = "Undetermined"
        elif fep is loyalty and "loyalty_disconnected" in faults:
            connection = "false"
        states.append(FepState(fep.name, fep.primary, connection))
    return tuple(states)


def _pinpads(store: SimStore, faults: Mapping[str, Params]) -> tuple[PinPadState, ...]:
    down, _ = _down_ids(faults, "pinpad_offline")
    return tuple(
        PinPadState(pad.pop_id, pad.workstation, pad.model, pad.pop_id not in down)
        for pad in store.pinpads
    )


def _registers(
    store: SimStore, faults: Mapping[str, Params]
) -> tuple[RegisterState, ...]:
    down, _ = _down_ids(faults, "register_offline")
    return tuple(
        RegisterState(
            till.sysid, till.type, "Offline" if till.sysid in down else "Online"
        )
        for till in store.registers
    )


def expected_devices(view: StoreView) -> dict[str, Any]:
    """Return the device truth a correct poller reports for ``view``."""
    primary = next((fep for fep in view.feps if fep.primary), None)
    loyalty = next(
        (fep for fep in view.feps if fep.name.lower() == "rewards 2 go"), None
    )
    return {
        "controller": view.controller.healthy,
        "pumps": {p.sysid: p.pump.healthy for p in view.points},
        "dcrs": {p.sysid: p.dcr.healthy for p in view.points if p.dcr is not None},
        "price_displays": {d.id: d.healthy for d in view.price_displays},
        "tank_sensor": None if view.tank_sensor is None else view.tank_sensor.healthy,
        "primary_fep": None if primary is None else (primary.name, primary.connected),
        "loyalty_fep": None if loyalty is None else (loyalty.name, loyalty.connected),
        "feps": {fep.name: fep.connected for fep in view.feps},
        "registers": {r.sysid: r.status == "Online" for r in view.registers},
        "pinpads": {p.pop_id: p.connected for p in view.pinpads},
    }


# What a poll cannot do without; vposdiagnostics is optional to the poller.
_POLL_COMMANDS = ("validate", "vforecourtdiagnostics", "vpaymentdiagnostics")


def expected_error(
    faults: Mapping[str, Params], locked: bool, evict: bool
) -> str | None:
    """Return the ``ErrorType`` value a poll meets under ``faults``, or None.

    Assumes the client's timeout is longer than any ``slow_response``; the
    caller reports the delay separately.
    """
    if "connection_refused" in faults:
        return "connection"
    login_blocked = (
        locked
        or "wrong_credentials" in faults
        or "otp_required" in faults
        or ("session_limit_reached" in faults and not evict)
    )
    if login_blocked:
        return "auth"
    for fault, error in (
        ("http_500", "http"),
        ("fault_response", "fault"),
        ("truncated_xml", "parse"),
        ("empty_body", "parse"),
    ):
        params = faults.get(fault)
        if params is not None and set(params.get("commands", DATA_COMMANDS)) & set(
            _POLL_COMMANDS
        ):
            return error
    return None
