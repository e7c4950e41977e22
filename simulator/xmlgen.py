"""Render the Commander's XML answers (see commander-api.md, sections 2 and 3).

Pure functions from values to bytes, written with string templates rather
than a DOM because the benchmark renders thousands of documents a minute
on a shared core. Every text and attribute value is escaped.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from xml.sax.saxutils import escape, quoteattr
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from simulator.faults import DeviceState, StoreView

DIAG_NS = "urn:vfi-sapphire:diagnostics.2017-01-17"
DOMAIN_NS = "urn:vfi-sapphire:np.domain.2001-07-01"
VS_NS = "urn:vfi-sapphire:vs.2001-10-01"
PROLOG = '<?xml version="1.0" encoding="UTF-8"?>\n'

LOGIN_REQUIRED = "CGIPortal.LoginRequired"
PORTAL_ERROR = "CGIPortal Error"
MSG_NO_CREDENTIAL = "No Credential for the User. Please login to get the Credential"
MSG_INVALID = "Invalid Credentials"
MSG_LOCKED = "Maximum failed attempts reached. Your Account has been locked"
MSG_OTP = "One Time Password required"
MSG_DENIED = "Permission denied for the function"
MSG_SESSIONS = (
    "Maximum number of credentials in use"  # invented: the cap is undocumented
)

FUNCTIONS = (
    "validate",
    "vforecourtdiagnostics",
    "vpaymentdiagnostics",
    "vposdiagnostics",
    "vdatetime",
    "releaseCredential",
)


def local_time(timezone: str, now: datetime | None = None) -> str:
    """Return ISO-8601 local time with offset, e.g. ``2025-03-04T09:15:27-06:00``."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    moment = now.astimezone(zone) if now is not None else datetime.now(zone)
    return moment.isoformat(timespec="seconds")


def credential(cookie: str, site_id: str, password_days: int) -> bytes:
    """Render a successful ``validate`` answer."""
    expire = "true" if password_days > 0 else "false"
    funcs = "".join(f"    <FunctionCmd>{name}</FunctionCmd>\n" for name in FUNCTIONS)
    return (
        f"{PROLOG}"
        f'<domain:credential xmlns:domain="{DOMAIN_NS}" xmlns:vs="{VS_NS}">\n'
        f"  <cookie>{cookie}</cookie>\n"
        f"  <vs:site>{escape(site_id)}</vs:site>\n"
        f'  <passwd expire="{expire}" days="{password_days}"/>\n'
        f"  <funcList>\n{funcs}  </funcList>\n"
        "</domain:credential>\n"
    ).encode()


def fault(code: str, message: str, fault_string: str = PORTAL_ERROR) -> bytes:
    """Render a ``VFI:Response/VFI:Fault`` document."""
    return (
        f"{PROLOG}"
        f'<VFI:Response xmlns:VFI="{DOMAIN_NS}">\n'
        "  <VFI:Fault>\n"
        f"    <faultCode>{escape(code)}</faultCode>\n"
        f"    <faultString>{escape(fault_string)}</faultString>\n"
        "    <detail>\n"
        f'      <x:vfiFault xmlns:x="{DOMAIN_NS}">\n'
        f"        <x:message>{escape(message)}</x:message>\n"
        "      </x:vfiFault>\n"
        "    </detail>\n"
        "  </VFI:Fault>\n"
        "</VFI:Response>\n"
    ).encode()


def empty_response() -> bytes:
    """Render the empty ``VFI:Response`` that means success."""
    return f'{PROLOG}<VFI:Response xmlns:VFI="{DOMAIN_NS}"/>\n'.encode()


def _diagnostics(time: str, site_id: str, inner: Iterable[str]) -> bytes:
    body = "".join(inner)
    return (
        f"{PROLOG}"
        f'<diag:diagnostics xmlns:diag="{DIAG_NS}" '
        f"time={quoteattr(time)} siteId={quoteattr(site_id)}>\n"
        f"{body}"
        "</diag:diagnostics>\n"
    ).encode()


def _device(kind: str, state: DeviceState, indent: str, with_id: bool) -> str:
    ident = f"id={quoteattr(state.id)} " if with_id else ""
    available = "true" if state.available else "false"
    return (
        f"{indent}<device {ident}type={quoteattr(kind)} "
        f'status="{state.status}" isAvailable="{available}"/>\n'
    )


def forecourt(view: StoreView, site_id: str, time: str) -> bytes:
    """Render a ``vforecourtdiagnostics`` answer."""
    lines = [
        "  <forecourtDiagnostics>\n",
        f'    <controller status="{view.controller.status}" type="controller">\n',
        "      <diag:peripherals>\n",
    ]
    pad = "        "
    if view.tank_sensor is not None:
        lines.append(_device("Tank Level Sensor", view.tank_sensor, pad, False))
    lines.extend(
        _device("Fuel Price Display", d, pad, True) for d in view.price_displays
    )
    lines.append("      </diag:peripherals>\n")
    for point in view.points:
        lines.append(f"      <fuelingPoint sysid={quoteattr(point.sysid)}>\n")
        lines.append(_device("Pump", point.pump, pad, False))
        if point.dcr is not None:
            lines.append(_device("DCR", point.dcr, pad, False))
        lines.append("      </fuelingPoint>\n")
    lines.append("    </controller>\n  </forecourtDiagnostics>\n")
    return _diagnostics(time, site_id, lines)


def payment(view: StoreView, site_id: str, time: str) -> bytes:
    """Render a ``vpaymentdiagnostics`` answer."""
    lines = ["  <paymentDiagnostics>\n"]
    for fep in view.feps:
        primary = "true" if fep.primary else "false"
        lines.append(
            f'    <fepDetail fepName={quoteattr(fep.name)} isPrimary="{primary}">\n'
            f"      <connectionStatus>{fep.connection}</connectionStatus>\n"
            "    </fepDetail>\n"
        )
    for pad in view.pinpads:
        lines.append(
            f"    <pinpadDetail popID={quoteattr(pad.pop_id)}>\n"
            f"      <workstationName>{escape(pad.workstation)}</workstationName>\n"
            f"      <connectionStatus>{'true' if pad.connected else 'false'}"
            "</connectionStatus>\n"
            f"      <pinpadType>{escape(pad.model)}</pinpadType>\n"
            "    </pinpadDetail>\n"
        )
    lines.append("  </paymentDiagnostics>\n")
    return _diagnostics(time, site_id, lines)


def pos(view: StoreView, site_id: str, time: str) -> bytes:
    """Render a ``vposdiagnostics`` answer."""
    lines = ["  <posDiagnostics>\n"]
    lines.extend(
        f"    <posTerminal sysid={quoteattr(till.sysid)} type={quoteattr(till.type)} "
        f'status="{till.status}"/>\n'
        for till in view.registers
    )
    lines.append("  </posDiagnostics>\n")
    return _diagnostics(time, site_id, lines)


def datetime_answer(time: str, timezone: str) -> bytes:
    """Render a ``vdatetime`` answer."""
    return (
        f"{PROLOG}"
        f'<domain:sysDateTime xmlns:domain="{DOMAIN_NS}">\n'
        f"  <sysDT>{escape(time)}</sysDT>\n"
        f"  <sysTzId>{escape(timezone)}</sysTzId>\n"
        "</domain:sysDateTime>\n"
    ).encode()


def html_error(status: int, reason: str, detail: str) -> bytes:
    """Render an Apache-style HTML error page."""
    return (
        '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n'
        f"<html><head>\n<title>{status} {escape(reason)}</title>\n</head><body>\n"
        f"<h1>{escape(reason)}</h1>\n<p>{escape(detail)}</p>\n"
        "<hr>\n<address>Apache Server</address>\n</body></html>\n"
    ).encode()
