"""The msgpack codec of the MQTT contract; pure, takes and returns bytes.

A payload is one msgpack map with short keys::

    {"v": 1, "k": "status", "a": agent, "b": boot, "n": seq, "t": sent, "d": body}

``body`` is a map whose keys depend on the kind (see ``_STATUS_KEYS`` and
friends below). Fields equal to their default are left out; devices travel
as ``[id, online]`` or ``[id, online, status]`` lists, FEPs as
``[name, connected, status]``.

Decoding never trusts the payload: size is checked before unpacking, the
unpacker runs with hard limits, and every value is type-checked on the way
into the frozen model classes. Whatever is wrong surfaces as one
``DecodeError`` with a short reason; keys this version does not know are
ignored, so v1 can grow without breaking older readers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeAlias

import msgpack

from shared.errors import DecodeError
from shared.model import (
    SCHEMA_VERSION,
    AgentState,
    CycleSummary,
    Device,
    ErrorType,
    Fep,
    StoreStatus,
)
from shared.topics import is_slug

MAX_PAYLOAD_BYTES = 64 * 1024

Body: TypeAlias = StoreStatus | CycleSummary | AgentState


@dataclass(frozen=True, slots=True)
class Envelope:
    """One decoded payload: who sent it, in which order, and what it says."""

    kind: str  # "status" | "cycle" | "state"
    agent: str
    boot: int  # one run of the agent; seq restarts per boot
    seq: int  # per agent and boot, +1 per message of any kind
    sent: float  # unix time of encoding
    body: Body


# ---------------------------------------------------------------- encoding


def _kind_of(body: Body) -> str:
    if isinstance(body, StoreStatus):
        return "status"
    if isinstance(body, CycleSummary):
        return "cycle"
    if isinstance(body, AgentState):
        return "state"
    raise TypeError(f"cannot encode {type(body).__name__}")


def _device(device: Device) -> list[Any]:
    if device.status:
        return [device.id, device.online, device.status]
    return [device.id, device.online]


def _fep(fep: Fep) -> list[Any]:
    return [fep.name, fep.connected, fep.status]


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    """Set ``key`` unless ``value`` is None or an empty str, list or dict."""
    if value is None or (isinstance(value, str | list | dict) and not value):
        return
    out[key] = value


def _status_map(status: StoreStatus) -> dict[str, Any]:
    out: dict[str, Any] = {
        "s": status.store,
        "i": status.ip,
        "g": status.group,
        "r": status.brand,
        "p": float(status.poll_time),
    }
    if status.cycle:
        out["c"] = status.cycle
    _put(out, "e", status.error_type.value if status.error_type else None)
    _put(out, "m", status.error)
    _put(out, "du", {str(k): float(v) for k, v in status.durations.items()})
    _put(out, "ct", _device(status.controller) if status.controller else None)
    _put(out, "ts", _device(status.tank_sensor) if status.tank_sensor else None)
    for key, devices in (
        ("pu", status.pumps),
        ("dc", status.dcrs),
        ("pd", status.price_displays),
        ("pp", status.pinpads),
        ("rg", status.registers),
    ):
        _put(out, key, [_device(d) for d in devices])
    _put(out, "pf", _fep(status.primary_fep) if status.primary_fep else None)
    _put(out, "lf", _fep(status.loyalty_fep) if status.loyalty_fep else None)
    _put(out, "fe", [_fep(f) for f in status.feps])
    _put(out, "pw", status.password_days)
    return out


def _cycle_map(summary: CycleSummary) -> dict[str, Any]:
    out: dict[str, Any] = {
        "c": summary.cycle,
        "st": float(summary.started),
        "d": float(summary.duration),
        "n": summary.stores,
        "ok": summary.ok,
        "f": summary.failed,
    }
    for key, value in (
        ("x", summary.disabled),
        ("w", summary.workers),
        ("pc", summary.peak_concurrency),
        ("dm", summary.deadline_missed),
    ):
        if value:
            out[key] = value
    _put(out, "e", {str(k): int(v) for k, v in summary.errors.items()})
    return out


def _state_map(state: AgentState) -> dict[str, Any]:
    return {
        "o": state.online,
        "ver": state.version,
        "iv": float(state.interval_seconds),
        "sc": state.store_count,
        "st": float(state.started),
    }


def encode(body: Body, *, agent: str, boot: int, seq: int, sent: float) -> bytes:
    """Encode one status, cycle summary or agent state as a v1 payload."""
    if not is_slug(agent):
        raise ValueError(f"agent id {agent!r} is not a slug ([a-z0-9_-]+)")
    kind = _kind_of(body)
    if isinstance(body, StoreStatus):
        data = _status_map(body)
    elif isinstance(body, CycleSummary):
        data = _cycle_map(body)
    else:
        data = _state_map(body)
    envelope = {
        "v": SCHEMA_VERSION,
        "k": kind,
        "a": agent,
        "b": boot,
        "n": seq,
        "t": float(sent),
        "d": data,
    }
    return msgpack.packb(envelope, use_bin_type=True)


# ---------------------------------------------------------------- decoding


class _Missing(Enum):
    MISSING = 0


MISSING = _Missing.MISSING


def _type_name(value: object) -> str:
    return "nil" if value is None else type(value).__name__


def _as_text(value: object, path: str) -> str:
    if type(value) is not str:
        raise DecodeError(f"{path}: expected a string, got {_type_name(value)}")
    return value


def _as_int(value: object, path: str, minimum: int | None = 0) -> int:
    if type(value) is not int:
        raise DecodeError(f"{path}: expected an integer, got {_type_name(value)}")
    if minimum is not None and value < minimum:
        raise DecodeError(f"{path}: {value} is below {minimum}")
    return value


def _as_float(value: object, path: str) -> float:
    if type(value) not in (float, int):
        raise DecodeError(f"{path}: expected a number, got {_type_name(value)}")
    number = float(value)  # type: ignore[arg-type]  # checked just above
    if not math.isfinite(number):
        raise DecodeError(f"{path}: {number} is not a finite number")
    return number


def _as_bool(value: object, path: str) -> bool:
    if type(value) is not bool:
        raise DecodeError(f"{path}: expected a boolean, got {_type_name(value)}")
    return value


def _as_list(value: object, path: str) -> list[Any]:
    if type(value) is not list:
        raise DecodeError(f"{path}: expected an array, got {_type_name(value)}")
    return value


class _Map:
    """Typed access to one decoded map; failures name the field's path."""

    __slots__ = ("_data", "_path")

    def __init__(self, value: object, path: str) -> None:
        if type(value) is not dict:
            raise DecodeError(f"{path}: expected a map, got {_type_name(value)}")
        self._data: dict[Any, Any] = value
        self._path = path

    def path(self, key: str) -> str:
        return f"{self._path}.{key}" if self._path else key

    def names(self) -> list[Any]:
        return list(self._data)

    def get(self, key: str, default: object = MISSING) -> Any:
        if key in self._data:
            return self._data[key]
        if default is MISSING:
            raise DecodeError(f"{self.path(key)}: missing")
        return default

    def text(self, key: str, default: str | _Missing = MISSING) -> str:
        return _as_text(self.get(key, default), self.path(key))

    def integer(
        self, key: str, default: int | _Missing = MISSING, minimum: int | None = 0
    ) -> int:
        return _as_int(self.get(key, default), self.path(key), minimum)

    def number(self, key: str, default: float | _Missing = MISSING) -> float:
        return _as_float(self.get(key, default), self.path(key))

    def flag(self, key: str, default: bool | _Missing = MISSING) -> bool:
        return _as_bool(self.get(key, default), self.path(key))


def _to_device(value: object, path: str) -> Device:
    items = _as_list(value, path)
    if len(items) not in (2, 3):
        raise DecodeError(f"{path}: expected [id, online, status?]")
    status = _as_text(items[2], f"{path}[2]") if len(items) == 3 else ""
    return Device(
        id=_as_text(items[0], f"{path}[0]"),
        online=_as_bool(items[1], f"{path}[1]"),
        status=status,
    )


def _to_fep(value: object, path: str) -> Fep:
    items = _as_list(value, path)
    if len(items) != 3:
        raise DecodeError(f"{path}: expected [name, connected, status]")
    connected = None if items[1] is None else _as_bool(items[1], f"{path}[1]")
    return Fep(
        name=_as_text(items[0], f"{path}[0]"),
        connected=connected,
        status=_as_text(items[2], f"{path}[2]"),
    )


def _devices(data: _Map, key: str) -> tuple[Device, ...]:
    path = data.path(key)
    items = _as_list(data.get(key, []), path)
    return tuple(_to_device(item, f"{path}[{i}]") for i, item in enumerate(items))


def _optional_device(data: _Map, key: str) -> Device | None:
    value = data.get(key, None)
    return None if value is None else _to_device(value, data.path(key))


def _optional_fep(data: _Map, key: str) -> Fep | None:
    value = data.get(key, None)
    return None if value is None else _to_fep(value, data.path(key))


def _durations(data: _Map, key: str) -> dict[str, float]:
    table = _Map(data.get(key, {}), data.path(key))
    return {
        _as_text(name, table.path("<key>")): table.number(name)
        for name in table.names()
    }


def _counts(data: _Map, key: str) -> dict[str, int]:
    table = _Map(data.get(key, {}), data.path(key))
    return {
        _as_text(name, table.path("<key>")): table.integer(name)
        for name in table.names()
    }


def _error_type(data: _Map, key: str) -> ErrorType | None:
    value = data.get(key, None)
    if value is None:
        return None
    text = _as_text(value, data.path(key))
    try:
        return ErrorType(text)
    except ValueError:
        raise DecodeError(
            f"{data.path(key)}: unknown error type {text[:40]!r}"
        ) from None


def _password_days(data: _Map) -> int | None:
    value = data.get("pw", None)
    return None if value is None else _as_int(value, data.path("pw"), minimum=None)


def _to_status(data: _Map) -> StoreStatus:
    return StoreStatus(
        store=data.text("s"),
        ip=data.text("i"),
        group=data.text("g"),
        brand=data.text("r"),
        poll_time=data.number("p"),
        cycle=data.integer("c", 0),
        error_type=_error_type(data, "e"),
        error=data.text("m", ""),
        durations=_durations(data, "du"),
        controller=_optional_device(data, "ct"),
        pumps=_devices(data, "pu"),
        dcrs=_devices(data, "dc"),
        price_displays=_devices(data, "pd"),
        tank_sensor=_optional_device(data, "ts"),
        primary_fep=_optional_fep(data, "pf"),
        loyalty_fep=_optional_fep(data, "lf"),
        feps=tuple(
            _to_fep(item, f"{data.path('fe')}[{i}]")
            for i, item in enumerate(_as_list(data.get("fe", []), data.path("fe")))
        ),
        pinpads=_devices(data, "pp"),
        registers=_devices(data, "rg"),
        password_days=_password_days(data),
    )


def _to_cycle(data: _Map) -> CycleSummary:
    return CycleSummary(
        cycle=data.integer("c"),
        started=data.number("st"),
        duration=data.number("d"),
        stores=data.integer("n"),
        ok=data.integer("ok"),
        failed=data.integer("f"),
        disabled=data.integer("x", 0),
        errors=_counts(data, "e"),
        workers=data.integer("w", 0),
        peak_concurrency=data.integer("pc", 0),
        deadline_missed=data.integer("dm", 0),
    )


def _to_state(data: _Map) -> AgentState:
    return AgentState(
        online=data.flag("o"),
        version=data.text("ver", ""),
        interval_seconds=data.number("iv", 0.0),
        store_count=data.integer("sc", 0),
        started=data.number("st", 0.0),
    )


_BODY_READERS: dict[str, Callable[[_Map], Body]] = {
    "status": _to_status,
    "cycle": _to_cycle,
    "state": _to_state,
}


def _unpack(payload: bytes, max_bytes: int) -> object:
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise DecodeError(
            f"payload is {type(payload).__name__}, not bytes", "malformed"
        )
    if len(payload) == 0:
        raise DecodeError("empty payload", "empty")
    if len(payload) > max_bytes:
        raise DecodeError(
            f"payload of {len(payload)} bytes exceeds {max_bytes}", "oversized"
        )
    try:
        return msgpack.unpackb(
            payload,
            raw=False,
            strict_map_key=True,
            max_str_len=max_bytes,
            max_bin_len=max_bytes,
            max_array_len=max_bytes,
            max_map_len=max_bytes // 2,
            max_ext_len=max_bytes,
        )
    except (msgpack.UnpackException, ValueError, TypeError, OverflowError) as exc:
        # Covers ExtraData, FormatError, StackError, limits and bad UTF-8.
        raise DecodeError(
            f"not valid msgpack: {type(exc).__name__}", "malformed"
        ) from exc


def decode(payload: bytes, max_bytes: int = MAX_PAYLOAD_BYTES) -> Envelope:
    """Decode a v1 payload into an ``Envelope``, or raise ``DecodeError``."""
    top = _Map(_unpack(payload, max_bytes), "")
    version = top.integer("v", minimum=None)
    if version != SCHEMA_VERSION:
        raise DecodeError(f"unknown schema version {version}", "version")
    kind = top.text("k")
    reader = _BODY_READERS.get(kind)
    if reader is None:
        raise DecodeError(f"unknown kind {kind[:40]!r}", "kind")
    agent = top.text("a")
    if not is_slug(agent):
        raise DecodeError(f"agent {agent[:40]!r} is not a slug")
    return Envelope(
        kind=kind,
        agent=agent,
        boot=top.integer("b"),
        seq=top.integer("n"),
        sent=top.number("t"),
        body=reader(_Map(top.get("d"), "d")),
    )
