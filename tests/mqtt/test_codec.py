"""The msgpack codec: round trips, and nothing but DecodeError on bad input."""

from __future__ import annotations

import contextlib
import math

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.codec import MAX_PAYLOAD_BYTES, Envelope, decode, encode
from shared.errors import DecodeError
from shared.model import AgentState, CycleSummary, Device, ErrorType, Fep, StoreStatus
from tests.mqtt.conftest import status, summary

AGENT = "edge-1"


def roundtrip(body, **kw) -> Envelope:
    args = {"agent": AGENT, "boot": 1_700_000_000_000, "seq": 42, "sent": 1.5}
    args.update(kw)
    return decode(encode(body, **args))


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (status("Store 1"), "status"),
        (status("Store 2", ok=False), "status"),
        (StoreStatus("s", "1.2.3.4", "", "", 0.0), "status"),
        (summary(), "cycle"),
        (CycleSummary(0, started=0.0, duration=0.0, stores=0, ok=0, failed=0), "cycle"),
        (AgentState(True, "1.0", 300.0, store_count=4, started=9), "state"),
        (AgentState(online=False), "state"),
    ],
)  # fmt: skip
def test_each_kind_round_trips(body, kind):
    env = roundtrip(body)
    assert env == Envelope(kind, AGENT, 1_700_000_000_000, 42, 1.5, body)
    assert type(env.body.durations if kind == "status" else {}) is dict


def test_decoded_values_have_model_types():
    body = roundtrip(status("Store 1")).body
    assert isinstance(body.pumps, tuple)
    assert isinstance(body.controller, Device)
    assert body.loyalty_fep == Fep("Rewards 2 Go", None)
    assert roundtrip(status("x", ok=False)).body.error_type is ErrorType.TIMEOUT
    assert all(type(v) is float for v in body.durations.values())


def test_payload_is_compact():
    # One realistic store fits well below the payload limit, and far below JSON.
    payload = encode(status("Store 1"), agent=AGENT, boot=1, seq=1, sent=1.0)
    assert len(payload) < 400


# ----------------------------------------------------------- hypothesis models

text = st.text(max_size=20)
finite = st.floats(allow_nan=False, allow_infinity=False)
count = st.integers(min_value=0, max_value=2**63 - 1)
devices = st.lists(st.builds(Device, text, st.booleans(), text), max_size=4).map(tuple)
feps = st.builds(Fep, text, st.none() | st.booleans(), text)

statuses = st.builds(
    StoreStatus,
    store=text,
    ip=text,
    group=text,
    brand=text,
    poll_time=finite,
    cycle=count,
    error_type=st.none() | st.sampled_from(ErrorType),
    error=text,
    durations=st.dictionaries(text, finite, max_size=4),
    controller=st.none() | st.builds(Device, text, st.booleans(), text),
    pumps=devices,
    dcrs=devices,
    price_displays=devices,
    tank_sensor=st.none() | st.builds(Device, text, st.booleans(), text),
    primary_fep=st.none() | feps,
    loyalty_fep=st.none() | feps,
    feps=st.lists(feps, max_size=3).map(tuple),
    pinpads=devices,
    registers=devices,
    password_days=st.none() | st.integers(-(2**63), 2**63 - 1),
)
cycles = st.builds(
    CycleSummary,
    cycle=count,
    started=finite,
    duration=finite,
    stores=count,
    ok=count,
    failed=count,
    disabled=count,
    errors=st.dictionaries(text, count, max_size=4),
    workers=count,
    peak_concurrency=count,
    deadline_missed=count,
)
states = st.builds(
    AgentState,
    online=st.booleans(),
    version=text,
    interval_seconds=finite,
    store_count=count,
    started=finite,
)


@settings(max_examples=150, deadline=None)
@given(body=statuses | cycles | states, seq=count, boot=count, sent=finite)
def test_any_model_value_round_trips_equal(body, seq, boot, sent):
    env = roundtrip(body, seq=seq, boot=boot, sent=sent)
    assert env.body == body
    assert (env.seq, env.boot, env.sent) == (seq, boot, sent)


# ----------------------------------------------------------- malformed payloads


def good_map(kind: str = "status") -> dict:
    body = {"status": status("Store 1"), "cycle": summary(), "state": AgentState(True)}
    return msgpack.unpackb(encode(body[kind], agent=AGENT, boot=1, seq=1, sent=1.0))


def with_(path: str, value, kind: str = "status") -> bytes:
    """A good payload with one field (``d.pu`` style path) set, or removed."""
    data = good_map(kind)
    *parents, last = path.split(".")
    target = data
    for key in parents:
        target = target[key]
    if value is REMOVE:
        del target[last]
    else:
        target[last] = value
    return msgpack.packb(data)


REMOVE = object()
GOOD = msgpack.packb(good_map())

MALFORMED = {
    "empty": (b"", "empty payload"),
    "oversized": (GOOD + b"\x00" * MAX_PAYLOAD_BYTES, "exceeds"),
    "reserved byte": (b"\xc1", "not valid msgpack"),
    "truncated": (GOOD[:-3], "not valid msgpack"),
    "trailing data": (GOOD + b"\xc0", "not valid msgpack"),
    "bad utf-8": (b"\xa2\xff\xfe", "not valid msgpack"),
    "array as map key": (b"\x81\x90\x00", "not valid msgpack"),
    "huge array header": (b"\xdd\xff\xff\xff\xff", "not valid msgpack"),
    "deep nesting": (b"\x91" * 5000 + b"\xc0", "not valid msgpack"),
    "not a map": (msgpack.packb([1, 2, 3]), "expected a map"),
    "nil": (msgpack.packb(None), "expected a map"),
    "ext type": (msgpack.packb(msgpack.ExtType(5, b"xx")), "expected a map"),
    "no version": (with_("v", REMOVE), "v: missing"),
    "version 2": (with_("v", 2), "unknown schema version 2"),
    "version as text": (with_("v", "1"), "v: expected an integer"),
    "version as bool": (with_("v", True), "v: expected an integer"),
    "unknown kind": (with_("k", "metrics"), "unknown kind"),
    "kind missing": (with_("k", REMOVE), "k: missing"),
    "agent not slug": (with_("a", "Edge 1"), "not a slug"),
    "agent as int": (with_("a", 7), "a: expected a string"),
    "negative seq": (with_("n", -1), "n: -1 is below 0"),
    "seq as bool": (with_("n", True), "n: expected an integer"),
    "seq as float": (with_("n", 1.0), "n: expected an integer"),
    "boot missing": (with_("b", REMOVE), "b: missing"),
    "sent NaN": (with_("t", math.nan), "not a finite number"),
    "sent inf": (with_("t", math.inf), "not a finite number"),
    "sent as text": (with_("t", "now"), "t: expected a number"),
    "sent as bool": (with_("t", False), "t: expected a number"),
    "body missing": (with_("d", REMOVE), "d: missing"),
    "body as list": (with_("d", [1]), "d: expected a map"),
    "store missing": (with_("d.s", REMOVE), "d.s: missing"),
    "store as int": (with_("d.s", 5), "d.s: expected a string"),
    "poll time text": (with_("d.p", "12:00"), "d.p: expected a number"),
    "poll time -inf": (with_("d.p", -math.inf), "not a finite number"),
    "cycle negative": (with_("d.c", -3), "below 0"),
    "duration text": (with_("d.du", {"x": "fast"}), "d.du.x: expected a number"),
    "duration bin key": (with_("d.du", {b"x": 1.0}), "expected a string"),
    "durations list": (with_("d.du", [1.0]), "d.du: expected a map"),
    "pumps map": (with_("d.pu", {"1": True}), "d.pu: expected an array"),
    "pump id int": (with_("d.pu", [[1, True]]), "d.pu[0][0]: expected a string"),
    "pump online text": (with_("d.pu", [["1", "yes"]]), "expected a boolean"),
    "pump online int": (with_("d.pu", [["1", 1]]), "expected a boolean"),
    "pump too short": (with_("d.pu", [["1"]]), "expected [id, online"),
    "pump too long": (with_("d.pu", [["1", True, "", ""]]), "expected [id, online"),
    "pump nested garbage": (with_("d.pu", [[["1"], {"a": None}]]), "expected a string"),
    "controller scalar": (with_("d.ct", 1), "d.ct: expected an array"),
    "error type unknown": (with_("d.e", "gremlins"), "unknown error type"),
    "error type int": (with_("d.e", 3), "d.e: expected a string"),
    "fep connected text": (with_("d.pf", ["x", "maybe", ""]), "expected a boolean"),
    "fep short": (with_("d.pf", ["x", True]), "expected [name, connected"),
    "password days float": (with_("d.pw", 1.5), "d.pw: expected an integer"),
    "cycle error count negative": (
        with_("d.e", {"auth": -1}, "cycle"),
        "below 0",
    ),
    "cycle error count float": (
        with_("d.e", {"auth": 1.0}, "cycle"),
        "expected an integer",
    ),
    "cycle ok missing": (with_("d.ok", REMOVE, "cycle"), "d.ok: missing"),
    "state online missing": (with_("d.o", REMOVE, "state"), "d.o: missing"),
    "state online int": (with_("d.o", 1, "state"), "d.o: expected a boolean"),
    "state count bool": (with_("d.sc", True, "state"), "d.sc: expected an integer"),
}


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_payload_is_a_decode_error_with_a_reason(name):
    payload, reason = MALFORMED[name]
    with pytest.raises(
        DecodeError, match=reason.replace("[", r"\[").replace("(", r"\(")
    ):
        decode(payload)


@pytest.mark.parametrize(
    ("payload", "label"),
    [
        (b"", "empty"),
        (GOOD + b"\x00" * MAX_PAYLOAD_BYTES, "oversized"),
        (b"\xc1", "malformed"),
        (msgpack.packb([1, 2, 3]), "schema"),
    ],
)
def test_decode_errors_carry_a_reason_label_for_metrics(payload, label):
    with pytest.raises(DecodeError) as caught:
        decode(payload)
    assert caught.value.reason == label


def test_unknown_extra_keys_are_ignored():
    data = good_map()
    data["zz"] = {"future": [1, 2]}
    data["d"]["new_device_class"] = [["x", True]]
    assert decode(msgpack.packb(data)).body == status("Store 1")


def test_payload_limit_is_checked_before_unpacking():
    with pytest.raises(DecodeError, match="exceeds 100"):
        decode(GOOD, max_bytes=100)
    assert decode(GOOD, max_bytes=len(GOOD)).body == status("Store 1")


def test_encode_refuses_a_bad_agent_id():
    with pytest.raises(ValueError, match="slug"):
        encode(summary(), agent="Edge 1", boot=1, seq=1, sent=1.0)


# ----------------------------------------------------------- fuzzing decode

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=10)
    | st.binary(max_size=10)
)
nested = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.text(max_size=4) | st.binary(max_size=3), inner, max_size=4
        )
    ),
    max_leaves=20,
)
BODY_KEYS = ["s", "i", "g", "r", "p", "c", "e", "m", "du", "ct", "pu", "pf", "fe",
             "pw", "st", "d", "n", "ok", "f", "x", "o", "ver", "iv", "sc"]  # fmt: skip
envelopes = st.fixed_dictionaries(
    {
        "v": st.just(1) | nested,
        "k": st.sampled_from(["status", "cycle", "state"]),
        "a": st.just(AGENT) | nested,
        "b": st.just(1) | nested,
        "n": st.just(1) | nested,
        "t": st.just(1.0) | nested,
        "d": st.dictionaries(st.sampled_from(BODY_KEYS), nested, max_size=12),
    }
)


def decode_or_decode_error(payload: bytes) -> None:
    """Decode; a DecodeError is fine, any other exception fails the test."""
    with contextlib.suppress(DecodeError):
        decode(payload)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_decode_error(payload):
    decode_or_decode_error(payload)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nested | envelopes)
def test_random_structures_raise_only_decode_error(value):
    decode_or_decode_error(msgpack.packb(value, use_bin_type=True))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mangled_good_payloads_raise_only_decode_error(data):
    payload = bytearray(encode(status("Store 1"), agent=AGENT, boot=1, seq=1, sent=1.0))
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(payload) - 1))
        payload[index] = data.draw(st.integers(0, 255))
    decode_or_decode_error(bytes(payload))
