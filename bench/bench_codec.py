"""Size and speed of the msgpack status payload, against JSON of the same data.

Run from the repo root: ``python -m bench.bench_codec [--seconds 0.5]``.
Prints a table, then one JSON object with the figures on the last line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Callable

import msgpack

from shared.codec import decode, encode
from shared.model import Device, Fep, StoreStatus

AGENT = "edge-1"
BOOT = 1_700_000_000_000


def big_store() -> StoreStatus:
    """Return a 12-fueling-point store with displays, FEPs, PIN pads, registers."""
    return StoreStatus(
        store="Main Street 1042",
        ip="10.20.30.40",
        group="north-east",
        brand="Shell",
        poll_time=1_700_000_000.123,
        cycle=1234,
        durations={
            "login": 0.412,
            "vforecourtdiagnostics": 0.733,
            "vpaymentdiagnostics": 0.521,
            "vposdiagnostics": 0.388,
        },
        controller=Device("controller", True, "Online"),
        pumps=tuple(
            Device(str(i), i != 7, "Online" if i != 7 else "Offline")
            for i in range(1, 13)
        ),
        dcrs=tuple(Device(str(i), True, "Online") for i in range(1, 13)),
        price_displays=tuple(Device(f"sign-{i}", True, "Online") for i in range(1, 3)),
        tank_sensor=Device("tls-450", True, "Online"),
        primary_fep=Fep("Chase Paymentech", True, "Connected"),
        loyalty_fep=Fep("Rewards 2 Go", True, "Connected"),
        feps=(
            Fep("Chase Paymentech", True, "Connected"),
            Fep("Rewards 2 Go", True, "Connected"),
        ),
        pinpads=tuple(Device(f"pinpad-{i}", True, "Online") for i in range(1, 4)),
        registers=tuple(Device(f"reg-{i}", True, "Online") for i in range(1, 4)),
        password_days=37,
    )


def rate(work: Callable[[], object], seconds: float) -> float:
    """Return how many calls of ``work`` run per second, over ``seconds``."""
    calls, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(100):
            work()
        calls += 100
        now = time.perf_counter()
        if now >= deadline:
            return calls / (now - start)


def measure(seconds: float) -> dict[str, float]:
    status = big_store()
    payload = encode(status, agent=AGENT, boot=BOOT, seq=1, sent=time.time())
    same_map = msgpack.unpackb(payload)
    envelope = {**same_map, "d": dataclasses.asdict(status)}
    json_map = len(json.dumps(same_map, separators=(",", ":")).encode())
    json_asdict = len(json.dumps(envelope).encode())

    def enc() -> bytes:
        return encode(status, agent=AGENT, boot=BOOT, seq=1, sent=1.0)

    return {
        "msgpack_bytes": len(payload),
        "json_same_map_bytes": json_map,
        "json_asdict_bytes": json_asdict,
        "ratio_vs_json_same_map": round(json_map / len(payload), 2),
        "ratio_vs_json_asdict": round(json_asdict / len(payload), 2),
        "encode_per_second": round(rate(enc, seconds)),
        "decode_per_second": round(rate(lambda: decode(payload), seconds)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.5, help="per timing")
    figures = measure(parser.parse_args().seconds)
    print("StoreStatus: 12 fueling points, 2 signs, 2 FEPs, 3 PIN pads, 3 registers")
    print(f"{'format':<34}{'bytes':>8}{'x msgpack':>11}")
    print(f"{'msgpack (v1 payload)':<34}{figures['msgpack_bytes']:>8}{1.0:>11.2f}")
    for label, key, ratio in (
        (
            "json.dumps, same short-key map",
            "json_same_map_bytes",
            "ratio_vs_json_same_map",
        ),
        ("json.dumps, dataclasses.asdict", "json_asdict_bytes", "ratio_vs_json_asdict"),
    ):
        print(f"{label:<34}{figures[key]:>8}{figures[ratio]:>11.2f}")
    print(f"encode: {figures['encode_per_second']:,} /s   "
          f"decode: {figures['decode_per_second']:,} /s")  # fmt: skip
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
