"""Simulated stores: what equipment each Commander reports when all is well.

A ``SimStore`` is a plain description of one store (its forecourt, payment
links and registers). Faults never change it; the server derives what it
serves from the store plus its active faults (see ``simulator.faults``).
Fleets are deterministic per seed, so a test or a benchmark sees the same
stores every run.
"""

from __future__ import annotations

import csv
import os
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from shared.config import load_commanders

LOYALTY_FEP = "REWARDS 2 GO"
GIFT_FEP = "GIFTNET"

# Brand -> primary card-processor FEP. Phillips 66, Chevron and Exxon/Mobil
# follow the API notes; the others are the simulator's own guess.
BRAND_FEPS: dict[str, str] = {
    "Phillips 66": "Phillips66",
    "Conoco": "Phillips66",
    "76": "Phillips66",
    "Chevron": "Chevron",
    "Texaco": "Chevron",
    "Exxon": "buypass",
    "Mobil": "buypass",
    "BP": "buypass",
    "Shell": "nbs",
    "Valero": "nbs",
    "Sinclair": "nbs",
    "Cenex": "nbs",
    "Unbranded": "nbs",
}
_BRAND_WEIGHTS: tuple[tuple[str, int], ...] = (
    ("Phillips 66", 14),
    ("Conoco", 8),
    ("76", 6),
    ("Chevron", 12),
    ("Texaco", 5),
    ("Exxon", 12),
    ("Mobil", 8),
    ("Shell", 10),
    ("Valero", 7),
    ("Sinclair", 4),
    ("Cenex", 4),
    ("Unbranded", 10),
)
# Region -> IANA time zone of its stores.
REGIONS: tuple[tuple[str, str], ...] = (
    ("North Texas", "America/Chicago"),
    ("Gulf Coast", "America/Chicago"),
    ("Rocky Mountain", "America/Denver"),
    ("Desert Southwest", "America/Phoenix"),
    ("Pacific Northwest", "America/Los_Angeles"),
    ("Great Lakes", "America/Detroit"),
    ("Southeast", "America/New_York"),
)
_REGISTER_TYPES = ("C18", "Topaz", "Ruby2", "C15")
_PINPAD_MODELS = ("MX915", "MX925", "M400")
_DEFAULT_TZ = "America/Chicago"


@dataclass(frozen=True, slots=True)
class FuelingPoint:
    """One fueling point: always a pump, and a card reader (DCR) if fitted."""

    sysid: str
    has_dcr: bool = True


@dataclass(frozen=True, slots=True)
class Register:
    """One POS terminal as ``vposdiagnostics`` lists it."""

    sysid: str
    type: str = "C18"


@dataclass(frozen=True, slots=True)
class PinPad:
    """One PIN pad as ``vpaymentdiagnostics`` lists it."""

    pop_id: str
    workstation: str
    model: str = "MX915"


@dataclass(frozen=True, slots=True)
class FepLink:
    """One payment front-end processor link."""

    name: str
    primary: bool = False


@dataclass(frozen=True, slots=True)
class SimStore:
    """Describe one simulated store and its healthy equipment."""

    name: str
    group: str
    brand: str
    site_id: str
    fueling_points: tuple[FuelingPoint, ...]
    price_displays: tuple[str, ...] = ()
    feps: tuple[FepLink, ...] = ()
    registers: tuple[Register, ...] = ()
    pinpads: tuple[PinPad, ...] = ()
    tank_sensor: bool = True
    timezone: str = _DEFAULT_TZ
    enabled: bool = True
    source_ip: str = ""  # the ip column of the CSV it came from, if any

    @property
    def primary_fep(self) -> FepLink | None:
        """Return the FEP flagged primary, if any."""
        return next((fep for fep in self.feps if fep.primary), None)

    @property
    def loyalty_fep(self) -> FepLink | None:
        """Return the loyalty FEP, if the store has one."""
        wanted = LOYALTY_FEP.lower()
        return next((fep for fep in self.feps if fep.name.lower() == wanted), None)


def primary_fep_for(brand: str) -> str:
    """Return the card-processor FEP name a store of ``brand`` uses."""
    wanted = brand.strip().lower()
    for known, fep in BRAND_FEPS.items():
        if known.lower() == wanted:
            return fep
    return "nbs"


def generate_fleet(n: int, seed: int = 1) -> list[SimStore]:
    """Make ``n`` varied stores, the same ones for the same seed.

    Each store is drawn from its own seeded generator, so the first ten
    stores of a 50-store fleet are the ten stores of a 10-store fleet.
    """
    if n < 1:
        raise ValueError(f"a fleet needs at least one store, got {n}")
    brands = [brand for brand, _ in _BRAND_WEIGHTS]
    weights = [weight for _, weight in _BRAND_WEIGHTS]
    used: set[str] = set()
    stores = []
    for index in range(n):
        rng = random.Random(f"{seed}:{index}")  # noqa: S311 - made-up stores
        group, timezone = REGIONS[rng.randrange(len(REGIONS))]
        site_id = str(rng.randrange(1000, 100000))
        while site_id in used:
            site_id = str(rng.randrange(1000, 100000))
        used.add(site_id)
        stores.append(
            _equip(
                rng,
                name=f"Store {index + 1:04d}",
                group=group,
                brand=rng.choices(brands, weights)[0],
                site_id=site_id,
                timezone=timezone,
            )
        )
    return stores


def fleet_from_csv(path: Path) -> list[SimStore]:
    """Make one store per row of a ``commanders.csv``, equipment seeded by name."""
    stores = []
    for row in load_commanders(Path(path)).commanders:
        rng = random.Random(f"{row.store}|{row.brand}")  # noqa: S311 - not secret
        timezone = dict(REGIONS).get(row.group, _DEFAULT_TZ)
        stores.append(
            _equip(
                rng,
                name=row.store,
                group=row.group,
                brand=row.brand,
                site_id=str(rng.randrange(1000, 100000)),
                timezone=timezone,
                enabled=row.enabled,
                source_ip=row.ip,
            )
        )
    return stores


def _equip(
    rng: random.Random,
    *,
    name: str,
    group: str,
    brand: str,
    site_id: str,
    timezone: str,
    enabled: bool = True,
    source_ip: str = "",
) -> SimStore:
    """Draw one store's equipment from ``rng``."""
    feps = [FepLink(primary_fep_for(brand), primary=True)]
    if rng.random() < 0.45:
        feps.append(FepLink(LOYALTY_FEP))
    if rng.random() < 0.2:
        feps.append(FepLink(GIFT_FEP))
    tills = rng.randint(1, 4)
    return SimStore(
        name=name,
        group=group,
        brand=brand,
        site_id=site_id,
        fueling_points=_fueling_points(rng),
        price_displays=tuple(f"Channel {i}" for i in range(1, rng.randint(0, 3) + 1)),
        feps=tuple(feps),
        registers=tuple(
            Register(str(101 + i), rng.choice(_REGISTER_TYPES)) for i in range(tills)
        ),
        pinpads=tuple(
            PinPad(str(101 + i), f"REGISTER {i + 1}", rng.choice(_PINPAD_MODELS))
            for i in range(tills)
        ),
        tank_sensor=rng.random() < 0.95,
        timezone=timezone,
        enabled=enabled,
        source_ip=source_ip,
    )


def _fueling_points(rng: random.Random) -> tuple[FuelingPoint, ...]:
    """Draw 4-16 fueling points; some stores have no DCRs, some only on a few."""
    count = rng.choice((4, 6, 8, 8, 10, 12, 12, 16))
    layout = rng.random()
    if layout < 0.1:  # an old site: no card readers in the dispensers
        return tuple(FuelingPoint(str(i), has_dcr=False) for i in range(1, count + 1))
    bare = 2 if layout < 0.3 and count >= 8 else 0  # diesel island without DCRs
    return tuple(
        FuelingPoint(str(i), has_dcr=i <= count - bare) for i in range(1, count + 1)
    )


@dataclass(frozen=True, slots=True)
class CsvRow:
    """One line of a ``commanders.csv`` written for a running simulator."""

    ip: str
    store: str
    group: str
    brand: str
    enabled: bool
    port: int | None = None


def write_commanders_csv(
    path: Path, rows: Iterable[CsvRow], agent: str | None = None
) -> None:
    """Write ``rows`` as a ``commanders.csv``, atomically (write then rename)."""
    rows = list(rows)
    columns = ["ip", "store", "group", "brand", "enabled"]
    if any(row.port is not None for row in rows):
        columns.append("port")
    if agent is not None:
        columns.append("agent")
    path = Path(path)
    temp = path.with_name(f".{path.name}.tmp")
    with temp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(_csv_cells(row, columns, agent))
    os.replace(temp, path)


def _csv_cells(row: CsvRow, columns: Sequence[str], agent: str | None) -> list[str]:
    cells = [row.ip, row.store, row.group, row.brand, str(row.enabled).lower()]
    if "port" in columns:
        cells.append(str(row.port or ""))
    if agent is not None:
        cells.append(agent)
    return cells
