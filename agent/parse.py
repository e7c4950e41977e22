"""Parse Commander CGILink XML answers into the status model.

Every parser is pure: it takes the response body as ``bytes`` and returns
typed values from ``shared.model``, or raises one of ``shared.errors``. No
I/O happens here; the Commander client fetches, these functions read.

Reading rules (see ``commander-api.md`` sections 2, 3 and 5):

* Bodies are parsed with ``defusedxml`` with DTDs, entity declarations and
  external references all refused, after a size cap. Every XML or defusedxml
  exception becomes a ``ParseError`` in ``_parse_xml`` and nowhere else.
* Element and attribute names are compared by local name, case-insensitively,
  so ``controller``, ``diag:controller`` and ``Controller`` are the same, and
  elements are found anywhere below the root.
* Any element named ``Fault`` makes the document a fault. At login it becomes
  an ``AuthError`` (``CGIPortal.LoginRequired`` stays a ``FaultError``); on
  a data command it becomes ``FaultError`` carrying the ``faultCode``.
* Error messages are short, single-line and secret-free: the credential's
  body is never quoted, and long token-like strings (cookies) are redacted
  from anything quoted from a Commander.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as StdET
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field

import defusedxml
import defusedxml.ElementTree as SafeET

from shared.errors import AuthError, FaultError, ParseError
from shared.model import Device, Fep

logger = logging.getLogger(__name__)

LOGIN_REQUIRED = "CGIPortal.LoginRequired"
OTP_REQUIRED = "CGIPortal.OTPRequired"
MAX_BODY_BYTES = 4 * 1024 * 1024
TANK_SENSOR_ID = "tank_sensor"
CONTROLLER_ID = "controller"

_SNIPPET_CHARS = 80
_SNIPPET_SCAN = 1024
_MESSAGE_CHARS = 160
_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})
_TOKEN = re.compile(r"[A-Za-z0-9+/=_-]{16,}")
_TRAILING_TOKEN = re.compile(r"[A-Za-z0-9+/=_-]+$")
_SPACES = re.compile(r"\s+")
_DECLARED_ENCODING = re.compile(rb"^<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)")
_HTML_START = (b"<!doctype html", b"<html")
_HTML_TITLE = re.compile(rb"<title[^>]*>(.*?)</title", re.IGNORECASE | re.DOTALL)
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_LOCKED_WORDS = ("maximum failed attempts", "has been locked")
_OTP_WORDS = ("one time password", "one-time password")


@dataclass(frozen=True, slots=True)
class Credential:
    """A session from ``cmd=validate``; the cookie never shows in its repr."""

    cookie: str = field(repr=False)
    password_days: int | None = None


@dataclass(frozen=True, slots=True)
class FaultInfo:
    """The three texts of a VFI Fault, as sent (stripped)."""

    code: str
    string: str
    message: str


@dataclass(frozen=True, slots=True)
class Forecourt:
    """What ``vforecourtdiagnostics`` says about the forecourt."""

    controller: Device | None
    pumps: tuple[Device, ...]
    dcrs: tuple[Device, ...]
    price_displays: tuple[Device, ...]
    tank_sensor: Device | None


@dataclass(frozen=True, slots=True)
class Payment:
    """What ``vpaymentdiagnostics`` says about FEP links and PIN pads."""

    primary_fep: Fep | None
    loyalty_fep: Fep | None
    feps: tuple[Fep, ...]
    pinpads: tuple[Device, ...]


# --- public parsers -------------------------------------------------------


def parse_credential(body: bytes, max_bytes: int = MAX_BODY_BYTES) -> Credential:
    """Read the session cookie and password expiry from a ``validate`` answer.

    The root element's name is not relied on (``credential`` and
    ``sapphire`` are both seen); the first ``cookie`` element anywhere is
    the session. ``password_days`` is set only when ``passwd@expire`` is
    true-ish and ``passwd@days`` is an integer (zero or less means expired).
    A fault that refuses the credentials is an ``AuthError`` (locked account
    and OTP are named in the message); any other fault is a ``FaultError``.
    """
    root = _parse_xml(body, max_bytes, quote_body=False)
    fault = _find_fault(root)
    if fault is not None:
        raise _login_fault_error(fault)
    cookie_el = _first(root, "cookie")
    cookie = (cookie_el.text or "").strip() if cookie_el is not None else ""
    if not cookie:
        raise ParseError("login answer has no session cookie")
    return Credential(cookie=cookie, password_days=_password_days(root))


def parse_forecourt(body: bytes, max_bytes: int = MAX_BODY_BYTES) -> Forecourt:
    """Read controller, pumps, DCRs, price signs and tank sensor health.

    The root must be ``diagnostics`` (or ``forecourtDiagnostics``). A valid
    diagnostics document with no ``controller`` element anywhere (no
    forecourt content at all) gives ``controller=None``; fueling points and
    peripherals are still read from wherever they are. No ``fuelingPoint``
    at all is a valid empty forecourt (a new site). Pumps and DCRs are keyed
    by ``fuelingPoint@sysid`` (points without one are skipped, duplicates
    keep the first) and sorted numerically, non-numeric ids last.
    """
    root = _parse_data(body, max_bytes, "forecourtdiagnostics")
    controller_el = _first(root, "controller")
    controller = None if controller_el is None else _controller(controller_el)
    points, loose = _split_forecourt(root)
    pumps, dcrs = _fueling_points(points)
    displays, tank_sensor = _peripherals(loose)
    return Forecourt(controller, pumps, dcrs, displays, tank_sensor)


def parse_payment(
    body: bytes, loyalty_names: Collection[str], max_bytes: int = MAX_BODY_BYTES
) -> Payment:
    """Read FEP links (primary, loyalty, all) and PIN pads.

    ``connectionStatus`` ``true``/``false`` (any case, or ``1``/``0``) sets
    ``Fep.connected``; anything else (``Undetermined``) gives None with the
    text kept in ``Fep.status``. The primary is the first FEP with
    ``isPrimary`` true; the loyalty FEP is the first whose stripped name
    matches one of ``loyalty_names`` case-insensitively.
    """
    if isinstance(loyalty_names, str):
        raise TypeError("loyalty_names must be a collection of names, not one str")
    root = _parse_data(body, max_bytes, "paymentdiagnostics")
    wanted = {name.strip().lower() for name in loyalty_names}
    feps: list[Fep] = []
    primary: Fep | None = None
    for el in _named(root, "fepdetail"):
        fep = _fep(el)
        if fep is None:
            continue
        feps.append(fep)
        if primary is None and _flag(_attr(el, "isPrimary")) is True:
            primary = fep
    loyalty = next((f for f in feps if f.name.lower() in wanted), None)
    pinpads = _keyed(_pinpad(el) for el in _named(root, "pinpaddetail"))
    return Payment(primary, loyalty, tuple(feps), tuple(pinpads))


def parse_pos(body: bytes, max_bytes: int = MAX_BODY_BYTES) -> tuple[Device, ...]:
    """Read each register (``posTerminal@sysid``): online iff status Online.

    Terminals without a sysid are skipped, duplicates keep the first, and
    the result is sorted numerically by id, non-numeric ids last.
    """
    root = _parse_data(body, max_bytes, "posdiagnostics")
    terminals = (_pos_terminal(el) for el in _named(root, "posterminal"))
    return tuple(sorted(_keyed(terminals), key=_id_order))


def parse_fault(body: bytes, max_bytes: int = MAX_BODY_BYTES) -> FaultInfo | None:
    """Return the Fault in a well-formed answer, or None when there is none."""
    return _find_fault(_parse_xml(body, max_bytes, quote_body=True))


# --- XML boundary ---------------------------------------------------------


def _parse_xml(body: bytes, max_bytes: int, *, quote_body: bool) -> StdET.Element:
    """Turn bytes into an element tree; the one place XML errors are mapped."""
    if not isinstance(body, bytes | bytearray | memoryview):
        raise TypeError(f"body must be bytes, not {type(body).__name__}")
    body = bytes(body)
    _check_shape(body, max_bytes)
    body = body.lstrip()
    _check_encoding(body)
    try:
        return SafeET.fromstring(body, forbid_dtd=True)
    except defusedxml.DTDForbidden as exc:
        raise ParseError("XML with a DTD is refused (possible entity attack)") from exc
    except defusedxml.DefusedXmlException as exc:
        raise ParseError("XML with entity or external references is refused") from exc
    except StdET.ParseError as exc:
        reason = f"response is not well-formed XML ({exc})"
        if quote_body:
            reason += f"; body starts {_snippet(body)!r}"
        raise ParseError(reason) from exc
    except (LookupError, ValueError) as exc:  # unknown or multi-byte encoding
        raise ParseError(f"response encoding is not supported ({exc})") from exc


def _check_shape(body: bytes, max_bytes: int) -> None:
    """Reject oversized, empty, blank and HTML bodies before parsing."""
    if len(body) > max_bytes:
        raise ParseError(
            f"response of {len(body)} bytes exceeds the {max_bytes}-byte limit"
        )
    if not body:
        raise ParseError("response body is empty")
    head = body.lstrip()
    if not head:
        raise ParseError("response body is blank (whitespace only)")
    if head[:64].lower().startswith(_HTML_START):
        match = _HTML_TITLE.search(head[:4096])
        title = _snippet(match.group(1)) if match else _snippet(head)
        raise ParseError(f"got an HTML page instead of XML: {title!r}")


def _check_encoding(body: bytes) -> None:
    """Reject bytes that are not UTF-8 when the document claims (or implies) it."""
    if body.startswith(_UTF16_BOMS):
        return
    declared = _DECLARED_ENCODING.match(body)
    if declared and declared.group(1).lower() not in (b"utf-8", b"utf8"):
        return
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = body[exc.start]
        raise ParseError(
            f"response is not valid UTF-8 (byte 0x{bad:02x} at offset {exc.start})"
        ) from exc


def _parse_data(body: bytes, max_bytes: int, section: str) -> StdET.Element:
    """Parse a diagnostics answer: faults raise, a foreign root is refused."""
    root = _parse_xml(body, max_bytes, quote_body=True)
    fault = _find_fault(root)
    if fault is not None:
        raise FaultError(_fault_text(fault), code=_clean(fault.code, _SNIPPET_CHARS))
    if _local(root.tag) not in ("diagnostics", section):
        name = _clean(str(root.tag).rpartition("}")[2], _SNIPPET_CHARS)
        raise ParseError(f"expected a diagnostics document, got root element <{name}>")
    return root


# --- faults ---------------------------------------------------------------


def _find_fault(root: StdET.Element) -> FaultInfo | None:
    """Return the first ``Fault`` element's texts, or None."""
    fault = _first(root, "fault")
    if fault is None:
        return None
    vfi = _first(fault, "vfifault")
    return FaultInfo(
        code=_child_text(fault, "faultcode"),
        string=_child_text(fault, "faultstring"),
        message=_child_text(vfi if vfi is not None else fault, "message"),
    )


def _fault_text(fault: FaultInfo) -> str:
    """Say what a fault on a data command was, in one short line."""
    words = fault.message or fault.string or "no message"
    return _clean(f"Commander fault {fault.code or '(no code)'}: {words}")


def _login_fault_error(fault: FaultInfo) -> FaultError | AuthError:
    """Classify a fault answered to ``validate``.

    Refusals of the user's credentials (wrong password, locked account, a
    one-time password needed, or ``LoginRequired`` answered to a login) are
    ``AuthError``s, which the client counts towards its login guard. Any
    other fault (a full session table, an internal error) is a
    ``FaultError``: retrying later with the same password is safe.
    """
    lowered = f"{fault.message} {fault.string}".lower()
    if fault.code == OTP_REQUIRED or any(w in lowered for w in _OTP_WORDS):
        return AuthError(
            "login refused: the Commander requires a one-time password for this user"
        )
    if any(word in lowered for word in _LOCKED_WORDS):
        return AuthError(
            "login refused: the account is locked on the Commander "
            "(maximum failed attempts reached)"
        )
    words = fault.message or fault.string or fault.code or "no reason given"
    if fault.code == LOGIN_REQUIRED or "invalid credentials" in lowered:
        return AuthError(_clean(f"login refused: {words}"))
    return FaultError(_clean(f"login failed: {words}"), code=fault.code)


# --- forecourt ------------------------------------------------------------


def _controller(el: StdET.Element) -> Device:
    status = _attr(el, "status")
    return Device(CONTROLLER_ID, online=_is_online(status), status=status)


def _split_forecourt(
    root: StdET.Element,
) -> tuple[list[tuple[str, list[StdET.Element]]], list[StdET.Element]]:
    """Return (sysid, devices) per fueling point, and devices outside any point.

    One pass over the tree; a device belongs to its nearest enclosing
    fueling point, so nested or odd placements stay linear in the body size.
    """
    points: list[tuple[StdET.Element, list[StdET.Element]]] = []
    owned: dict[int, list[StdET.Element]] = {}
    loose: list[StdET.Element] = []
    stack: list[tuple[StdET.Element, StdET.Element | None]] = [(root, None)]
    while stack:
        el, point = stack.pop()
        name = _local(el.tag)
        if name == "fuelingpoint":
            owned[id(el)] = []
            points.append((el, owned[id(el)]))
        elif name == "device":
            (loose if point is None else owned[id(point)]).append(el)
        inner = el if name == "fuelingpoint" else point
        stack.extend((child, inner) for child in reversed(el))
    return [(_attr(p, "sysid"), devices) for p, devices in points], loose


def _fueling_points(
    points: list[tuple[str, list[StdET.Element]]],
) -> tuple[tuple[Device, ...], tuple[Device, ...]]:
    """Return pumps and DCRs keyed by sysid; points without one are skipped."""
    pumps: dict[str, Device] = {}
    dcrs: dict[str, Device] = {}
    skipped = 0
    for sysid, devices in points:
        if not sysid:
            skipped += 1
            continue
        for dev in devices:
            kind = _attr(dev, "type").lower()
            target = pumps if kind == "pump" else dcrs if kind == "dcr" else None
            if target is not None and sysid not in target:
                target[sysid] = _device(dev, sysid)
    if skipped:
        logger.debug("skipped fueling points without sysid count=%d", skipped)
    return _sorted(pumps), _sorted(dcrs)


def _peripherals(
    loose: list[StdET.Element],
) -> tuple[tuple[Device, ...], Device | None]:
    """Return price displays (by id) and the tank sensor."""
    displays: dict[str, Device] = {}
    tank: Device | None = None
    skipped = 0
    for dev in loose:
        kind = _attr(dev, "type").lower()
        if kind == "fuel price display":
            dev_id = _attr(dev, "id")
            if not dev_id:
                skipped += 1
            elif dev_id not in displays:
                displays[dev_id] = _device(dev, dev_id)
        elif kind == "tank level sensor" and tank is None:
            tank = _device(dev, _attr(dev, "id") or TANK_SENSOR_ID)
    if skipped:
        logger.debug("skipped price displays without id count=%d", skipped)
    return tuple(displays.values()), tank


def _device(el: StdET.Element, dev_id: str) -> Device:
    """Healthy iff status is Online and isAvailable is not false-ish."""
    status = _attr(el, "status")
    available = _attr(el, "isAvailable")
    usable = available == "" or available.lower() in _TRUE
    return Device(dev_id, online=_is_online(status) and usable, status=status)


# --- payment and POS ------------------------------------------------------


def _fep(el: StdET.Element) -> Fep | None:
    name = _attr(el, "fepName")
    if not name:
        logger.debug("skipped fepDetail without fepName")
        return None
    status = _child_text(el, "connectionstatus")
    return Fep(name, connected=_flag(status), status=status)


def _pinpad(el: StdET.Element) -> Device | None:
    pop_id = _attr(el, "popID")
    if not pop_id:
        logger.debug("skipped pinpadDetail without popID")
        return None
    status = _child_text(el, "connectionstatus")
    return Device(pop_id, online=_flag(status) is True, status=status)


def _pos_terminal(el: StdET.Element) -> Device | None:
    sysid = _attr(el, "sysid")
    if not sysid:
        logger.debug("skipped posTerminal without sysid")
        return None
    status = _attr(el, "status")
    return Device(sysid, online=_is_online(status), status=status)


# --- small helpers --------------------------------------------------------


def _local(tag: object) -> str:
    """Return an element or attribute name without namespace, lowercased."""
    if not isinstance(tag, str):  # comments and processing instructions
        return ""
    return tag.rpartition("}")[2].rpartition(":")[2].lower()


def _named(root: StdET.Element, name: str) -> Iterator[StdET.Element]:
    """Yield every element at or below ``root`` with local name ``name``."""
    return (el for el in root.iter() if _local(el.tag) == name)


def _first(root: StdET.Element, name: str) -> StdET.Element | None:
    return next(_named(root, name), None)


def _attr(el: StdET.Element, name: str) -> str:
    """Return an attribute's stripped value by local name, any case; '' if absent."""
    wanted = name.lower()
    for key, value in el.attrib.items():
        if _local(key) == wanted:
            return value.strip()
    return ""


def _child_text(el: StdET.Element, name: str) -> str:
    """Return the stripped text of the first descendant named ``name``."""
    found = _first(el, name)
    return (found.text or "").strip() if found is not None else ""


def _flag(text: str) -> bool | None:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    return None


def _is_online(status: str) -> bool:
    return status.lower() == "online"


def _keyed(devices: Iterable[Device | None]) -> list[Device]:
    """Drop Nones and keep the first device of each id, in order."""
    seen: dict[str, Device] = {}
    for dev in devices:
        if dev is not None and dev.id not in seen:
            seen[dev.id] = dev
    return list(seen.values())


def _id_order(dev: Device) -> tuple[int, int, str]:
    if dev.id.isascii() and dev.id.isdigit():
        return (0, int(dev.id), dev.id)
    return (1, 0, dev.id)


def _sorted(devices: dict[str, Device]) -> tuple[Device, ...]:
    return tuple(sorted(devices.values(), key=_id_order))


def _password_days(root: StdET.Element) -> int | None:
    passwd = _first(root, "passwd")
    if passwd is None or _flag(_attr(passwd, "expire")) is not True:
        return None
    try:
        return int(_attr(passwd, "days"))
    except ValueError:
        return None


def _clean(text: str, limit: int = _MESSAGE_CHARS) -> str:
    """Make text safe to put in a message: one line, printable, no tokens."""
    text = _TOKEN.sub(_redact, _SPACES.sub(" ", text).strip())
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return "".join(c if c.isprintable() else "?" for c in text)


def _redact(match: re.Match[str]) -> str:
    """Hide a long token that mixes letters and digits (a cookie, a key)."""
    token = match.group(0)
    has_digit = any(c.isdigit() for c in token)
    has_alpha = any(c.isalpha() for c in token)
    return "[redacted]" if has_digit and has_alpha else token


def _snippet(raw: bytes) -> str:
    """Return at most ~80 sanitised characters from the start of a body."""
    head = raw[:_SNIPPET_SCAN].decode("utf-8", "replace")
    if len(raw) > _SNIPPET_SCAN:  # never show the cut-off stub of a token
        head = _TRAILING_TOKEN.sub("", head)
    return _clean(head, _SNIPPET_CHARS)
