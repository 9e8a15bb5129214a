"""A real SMTP server on 127.0.0.1 (aiosmtpd) that writes each accepted message to a ``.eml``
file: the mail sink of the demo and of the tests. It can be told to refuse given recipients
with a 4xx or 5xx reply (always or for the first N attempts) and supports STARTTLS, implicit
TLS and AUTH, so delivery can be exercised end to end without mocking smtplib.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import Any, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

__all__ = ["Delivery", "SmtpSink"]

_REPLIES = {
    4: "4.3.0 Temporarily unable to accept mail, try again later",
    5: "5.1.1 Mailbox unavailable",
}


@dataclass(frozen=True)
class Delivery:
    """One accepted message: its envelope and the file holding its bytes."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    path: Path


@dataclass
class _Rule:
    code: int
    remaining: int | None  # None: forever
    stage: str  # "rcpt" or "data"


class _EphemeralPortController(Controller):
    """A Controller bound to port 0 that learns the port the OS picked before connecting."""

    def _trigger_server(self) -> None:
        server = cast(asyncio.Server, self.server)
        self.port = server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        reply = self._sink._refusal(address, "rcpt")
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        for address in envelope.rcpt_tos:
            reply = self._sink._refusal(address, "data")
            if reply is not None:
                return reply
        self._sink._store(envelope.mail_from, tuple(envelope.rcpt_tos), envelope.original_content)
        return "250 2.0.0 Message accepted for delivery"


class SmtpSink:
    """An aiosmtpd server writing each accepted message to ``directory`` as ``NNNNNN.eml``.

    ``tls``: a server SSL context offered via STARTTLS (required before MAIL when
    ``credentials`` are set); ``implicit_tls``: serve TLS from the first byte (SMTPS) instead.
    ``credentials``: ``(user, password)`` that AUTH PLAIN/LOGIN must present.
    """

    def __init__(
        self,
        directory: Path,
        *,
        tls: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.credentials = credentials
        self._lock = threading.Lock()
        self._rules: dict[str, _Rule] = {}
        self._deliveries: list[Delivery] = []
        self.attempts: dict[str, int] = {}  # RCPT TO commands seen per recipient
        kwargs: dict[str, Any] = {}
        if tls is not None and implicit_tls:
            kwargs["ssl_context"] = tls
        elif tls is not None:
            kwargs["tls_context"] = tls
        if credentials is not None:
            kwargs["authenticator"] = self._authenticate
            kwargs["auth_require_tls"] = tls is not None
        self._controller = _EphemeralPortController(
            _Handler(self), hostname="127.0.0.1", port=0, **kwargs
        )

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return self._controller.port

    def start(self) -> SmtpSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- scripting failures --------------------------------------------------------------------

    def fail(
        self, recipient: str, code: int, *, times: int | None = None, stage: str = "rcpt"
    ) -> None:
        """Answer ``code`` (4xx or 5xx) to ``recipient`` at ``stage`` (``rcpt``: its RCPT TO;
        ``data``: the end of DATA), for the next ``times`` attempts or, if None, always."""
        if not 400 <= code < 600 or stage not in ("rcpt", "data"):
            raise ValueError("code must be 4xx or 5xx and stage 'rcpt' or 'data'")
        with self._lock:
            self._rules[recipient.lower()] = _Rule(code, times, stage)

    def _refusal(self, address: str, stage: str) -> str | None:
        key = address.lower()
        with self._lock:
            if stage == "rcpt":
                self.attempts[key] = self.attempts.get(key, 0) + 1
            rule = self._rules.get(key)
            if rule is None or rule.stage != stage:
                return None
            if rule.remaining is not None:
                if rule.remaining <= 0:
                    return None
                rule.remaining -= 1
            return f"{rule.code} {_REPLIES[rule.code // 100]}"

    def _authenticate(  # aiosmtpd calls authenticators synchronously
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        expected = self.credentials
        ok = (
            expected is not None
            and isinstance(auth_data, LoginPassword)
            and (auth_data.login.decode(), auth_data.password.decode()) == expected
        )
        return AuthResult(success=ok, handled=False)

    # --- what arrived --------------------------------------------------------------------------

    def _store(self, mail_from: str, rcpt_tos: tuple[str, ...], content: bytes) -> None:
        with self._lock:
            path = self.directory / f"{len(self._deliveries) + 1:06d}.eml"
            partial = path.with_suffix(".part")
            partial.write_bytes(content)
            partial.rename(path)  # readers never see half a message
            self._deliveries.append(Delivery(mail_from, rcpt_tos, path))

    def deliveries(self) -> list[Delivery]:
        """Accepted messages, oldest first."""
        with self._lock:
            return list(self._deliveries)

    def messages(self) -> list[EmailMessage]:
        """Accepted messages parsed back from their files, oldest first."""
        return [
            email.message_from_bytes(d.path.read_bytes(), policy=email.policy.default)
            for d in self.deliveries()
        ]
