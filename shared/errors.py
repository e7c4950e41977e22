"""The project's closed error tree.

    PosProctorError
    ├── ConfigError            bad file or setting, found at start or reload
    ├── DecodeError            an MQTT payload we cannot trust
    └── CommanderError         one poll of one Commander failed
        ├── AuthError          login refused (wrong user or password, OTP)
        ├── LockoutError       we stopped logging in to protect the account
        ├── CommanderTimeout   no answer within the timeout or cycle deadline
        ├── CommanderUnreachable  TCP connect refused, reset or no route
        ├── TlsError           certificate not trusted or fingerprint mismatch
        ├── HttpError          non-200 answer, or an HTML error page
        ├── FaultError         a VFI Fault that is not about the login
        └── ParseError         empty, truncated, oversized or unexpected XML

Third-party exceptions (requests, XML, msgpack, sockets, paho) become one of
these at exactly one boundary, chained with ``raise ... from``. Messages
never contain a password or a session cookie.
"""

from __future__ import annotations

from shared.model import ErrorType


class PosProctorError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigError(PosProctorError):
    """A configuration file or setting is wrong; the message names where."""


class DecodeError(PosProctorError):
    """An MQTT payload is malformed, oversized or of an unknown version.

    ``reason`` is a short label from a closed set (``empty``, ``oversized``,
    ``malformed``, ``version``, ``kind``, ``schema``, ``topic``) that the
    aggregator uses as a metric label; the message says the details.
    """

    def __init__(self, message: str, reason: str = "schema") -> None:
        super().__init__(message)
        self.reason = reason


class CommanderError(PosProctorError):
    """One poll of one Commander failed; ``error_type`` classifies it."""

    error_type: ErrorType = ErrorType.CONNECTION


class AuthError(CommanderError):
    error_type = ErrorType.AUTH


class LockoutError(CommanderError):
    error_type = ErrorType.LOCKOUT


class CommanderTimeout(CommanderError):
    error_type = ErrorType.TIMEOUT


class CommanderUnreachable(CommanderError):
    error_type = ErrorType.CONNECTION


class TlsError(CommanderError):
    error_type = ErrorType.TLS


class HttpError(CommanderError):
    error_type = ErrorType.HTTP


class FaultError(CommanderError):
    """A VFI Fault answer; ``code`` is its faultCode."""

    error_type = ErrorType.FAULT

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class ParseError(CommanderError):
    error_type = ErrorType.PARSE
