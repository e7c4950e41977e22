"""The little HTTP/1.1 the simulator speaks: parse a request head, write a reply.

Just enough for CGI-style GET and POST with Content-Length and keep-alive;
no chunked bodies, no pipelining guarantees beyond in-order answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

MAX_BODY = 1024 * 1024
XML_TYPE = "application/xml; charset=UTF-8"
HTML_TYPE = "text/html; charset=iso-8859-1"
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Request Entity Too Large",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
}


class BadRequest(Exception):
    """The request cannot be understood; answer ``status`` and close."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


@dataclass(frozen=True, slots=True)
class RequestHead:
    """A parsed request line and headers (names lowercased)."""

    method: str
    path: str
    query: str
    keep_alive: bool
    content_length: int


def parse_head(head: bytes) -> RequestHead:
    """Parse the bytes up to and including the blank line after the headers."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(400, "malformed request line")
    method, target, version = parts
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise BadRequest(501, "chunked request bodies are not supported")
    length = _content_length(headers.get("content-length", "0"))
    url = urlsplit(target)
    return RequestHead(
        method, url.path, url.query, _keep_alive(version, headers), length
    )


def _content_length(value: str) -> int:
    if not value.isdigit():
        raise BadRequest(400, "bad Content-Length")
    length = int(value)
    if length > MAX_BODY:
        raise BadRequest(413, "request body too large")
    return length


def _keep_alive(version: str, headers: dict[str, str]) -> bool:
    tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    if version == "HTTP/1.0":
        return "keep-alive" in tokens
    return "close" not in tokens


def request_params(query: str, body: bytes) -> dict[str, str]:
    """Merge query parameters with those on the body's first line.

    The body form line may end with a blank line and an XML document
    (commander-api.md 1.2); query parameters win on a clash.
    """
    params = _first_values(query)
    if body:
        line = body.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "replace")
        if "=" in line and not line.lstrip().startswith("<"):
            for name, value in _first_values(line).items():
                params.setdefault(name, value)
    return params


def _first_values(text: str) -> dict[str, str]:
    parsed = parse_qs(text, keep_blank_values=True, errors="replace")
    return {name: values[0] for name, values in parsed.items()}


def response_head(
    status: int, content_type: str, length: int, keep_alive: bool
) -> bytes:
    """Build the status line and headers of a reply."""
    reason = _REASONS.get(status, "Unknown")
    connection = "keep-alive" if keep_alive else "close"
    return (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Server: Apache\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {length}\r\n"
        f"Connection: {connection}\r\n\r\n"
    ).encode("latin-1")


def reason(status: int) -> str:
    """Return the reason phrase for ``status``."""
    return _REASONS.get(status, "Unknown")
