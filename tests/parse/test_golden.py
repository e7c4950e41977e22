"""Golden fixtures: every XML file in fixtures/ against the .json beside it.

A ``.json`` names the parser (``forecourt``, ``payment``, ``pos``,
``credential``, ``fault`` or ``all``), optional ``loyalty_names`` and
``max_bytes``, and either the full ``result`` or the expected ``error``
(class, fault code, words its message must contain).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent import parse
from shared import errors

FIXTURES = Path(__file__).parent / "fixtures"
CASES = sorted(FIXTURES.glob("*.xml"))
# The session cookie used in every credential fixture; no error may show it.
COOKIE = "7c41d09ab2e54f3d8a6b19e0c5f2a7d3"

Parser = Callable[[bytes], Any]


def parsers_for(spec: dict[str, Any]) -> dict[str, Parser]:
    limit = {"max_bytes": spec["max_bytes"]} if "max_bytes" in spec else {}
    names = spec.get("loyalty_names", ["rewards 2 go"])
    every: dict[str, Parser] = {
        "forecourt": lambda body: parse.parse_forecourt(body, **limit),
        "payment": lambda body: parse.parse_payment(body, names, **limit),
        "pos": lambda body: parse.parse_pos(body, **limit),
        "credential": lambda body: parse.parse_credential(body, **limit),
        "fault": lambda body: parse.parse_fault(body, **limit),
    }
    if spec["parser"] == "all":
        return every
    return {spec["parser"]: every[spec["parser"]]}


def as_plain(value: Any) -> Any:
    """Turn parser output into the JSON shape the fixtures are written in."""
    if isinstance(value, tuple):
        return [as_plain(item) for item in value]
    if dataclasses.is_dataclass(value):
        return json.loads(json.dumps(dataclasses.asdict(value)))
    return value


def load(case: Path) -> tuple[bytes, dict[str, Any]]:
    return case.read_bytes(), json.loads(case.with_suffix(".json").read_text())


def test_every_fixture_has_an_expectation() -> None:
    assert len(CASES) >= 50
    missing = [c.name for c in CASES if not c.with_suffix(".json").exists()]
    assert missing == []


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_fixture(case: Path) -> None:
    body, spec = load(case)
    for name, run in parsers_for(spec).items():
        if "result" in spec:
            assert as_plain(run(body)) == spec["result"], name
            continue
        expected = spec["error"]
        error_class = getattr(errors, expected["type"])
        with pytest.raises(error_class) as caught:
            run(body)
        assert type(caught.value) is error_class, name
        message = str(caught.value)
        for words in expected["contains"]:
            assert words in message, (name, message)
        if "code" in expected:
            assert caught.value.code == expected["code"]
        assert COOKIE not in message
        assert "root:" not in message  # nothing read from /etc/passwd
        assert len(message) <= 200
        assert "\n" not in message
