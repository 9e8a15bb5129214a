"""Sending digests over SMTP, with retries, and classifying failures.

Hierarchy::

    DeliveryError               root; ``retriable`` says whether trying again can help
    ├── TransientDeliveryError  RETRY later: 4xx replies, connection refused/reset/closed,
    │                           timeouts, TLS failures, and authentication or session problems
    │                           (a bad password is not the message's fault: never dead-letter
    │                           every job because of it)
    └── PermanentDeliveryError  do NOT retry this message: a 5xx reply to this message's
                                MAIL FROM / RCPT TO / DATA, or its recipient refused for good;
                                the job belongs in the dead-letter topic

Every error carries the SMTP ``stage`` (connect, tls, auth, mail, rcpt, data), the reply
``code`` (None for network errors) and the server's ``reply``. ``DeliveryError`` is a
:class:`~streamtable.errors.StreamTableError` whose message is not loggable (a server's reply may
quote the recipient's address).

:class:`SmtpSender` keeps one connection open across messages (reconnecting once when a reused
connection turns out to be closed); it is not thread-safe: use one per thread.
:func:`deliver_with_retry` retries transient failures with exponential backoff and jitter.

Example::

    with SmtpSender("smtp.example.com", 587, security="starttls",
                    username="digest", password="...") as sender:
        result = deliver_with_retry(sender, message)
        if result.status is DeliveryStatus.PERMANENT_FAILURE:
            dead_letter(job, result.reason)
"""

from __future__ import annotations

import contextlib
import enum
import random
import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import TYPE_CHECKING, Literal, Protocol

from pydantic import SecretStr

from streamtable.errors import StreamTableError

if TYPE_CHECKING:
    from types import TracebackType

    from us_shareholders.config import ServiceSettings

__all__ = [
    "DeliveryError",
    "DeliveryResult",
    "DeliveryStatus",
    "MailSender",
    "PermanentDeliveryError",
    "RecordingSender",
    "SmtpSender",
    "TransientDeliveryError",
    "deliver_with_retry",
]

_RANDOM = random.Random()

Security = Literal["none", "starttls", "ssl"]
Stage = Literal["connect", "tls", "auth", "mail", "rcpt", "data"]


class DeliveryError(StreamTableError):
    """A message could not be handed to the SMTP server."""

    retriable: bool = False
    message_is_loggable = False  # it may quote the SMTP server's reply

    def __init__(
        self, message: str, *, stage: Stage, code: int | None = None, reply: str = ""
    ) -> None:
        super().__init__(message)
        self.stage = stage
        self.code = code
        self.reply = reply


class TransientDeliveryError(DeliveryError):
    """Trying again later may succeed (4xx, network, TLS, authentication)."""

    retriable = True


class PermanentDeliveryError(DeliveryError):
    """The server refused this message for good (5xx to MAIL/RCPT/DATA). Do not retry."""


class MailSender(Protocol):
    """Anything that sends one message or raises a :class:`DeliveryError`."""

    def send(self, message: EmailMessage) -> None: ...


def _decode(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _classified(what: str, stage: Stage, code: int, reply: bytes | str) -> DeliveryError:
    text = _decode(reply)
    description = f"{what}: {code} {text}".rstrip()
    # Only a 5xx about this message (not about our session) is permanent.
    if 500 <= code < 600 and stage in ("mail", "rcpt", "data"):
        return PermanentDeliveryError(description, stage=stage, code=code, reply=text)
    return TransientDeliveryError(description, stage=stage, code=code, reply=text)


@dataclass
class SmtpSender:
    """Sends messages through one SMTP server with :mod:`smtplib`.

    ``security``: ``none``, ``starttls`` (upgrade after EHLO; fails if the server does not offer
    it) or ``ssl`` (implicit TLS). ``username``/``password`` turn on AUTH. ``ssl_context``
    defaults to :func:`ssl.create_default_context` (certificate and host name verified); pass
    one to trust a private CA. ``timeout_s`` bounds each network operation.
    """

    host: str
    port: int
    security: Security = "none"
    username: str | None = None
    password: str | SecretStr | None = None
    timeout_s: float = 30.0
    ssl_context: ssl.SSLContext | None = None
    local_hostname: str | None = None
    _smtp: smtplib.SMTP | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.security not in ("none", "starttls", "ssl"):
            raise ValueError(f"security must be none, starttls or ssl, not {self.security!r}")

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> SmtpSender:
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            security=settings.smtp_security,
            username=settings.smtp_username,
            password=settings.smtp_password,
            timeout_s=settings.smtp_timeout_s,
        )

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def send(self, message: EmailMessage) -> None:
        """Send ``message`` to its ``To``/``Cc``/``Bcc``; raise a :class:`DeliveryError`."""
        reused = self._smtp is not None
        try:
            self._send_once(message)
        except TransientDeliveryError as exc:
            if not (reused and exc.stage == "mail" and exc.code is None):
                raise
            # The server closed the idle connection we kept: one fresh attempt, no backoff.
            self._send_once(message)

    def close(self) -> None:
        """Say QUIT and close the connection, if one is open."""
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()

    def __enter__(self) -> SmtpSender:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- internals -----------------------------------------------------------------------------

    def _context(self) -> ssl.SSLContext:
        return self.ssl_context or ssl.create_default_context()

    def _connect(self) -> smtplib.SMTP:
        stage: Stage = "connect"
        smtp: smtplib.SMTP | None = None
        try:
            if self.security == "ssl":
                smtp = smtplib.SMTP_SSL(
                    self.host,
                    self.port,
                    local_hostname=self.local_hostname,
                    timeout=self.timeout_s,
                    context=self._context(),
                )
            else:
                smtp = smtplib.SMTP(
                    self.host, self.port, local_hostname=self.local_hostname, timeout=self.timeout_s
                )
            smtp.ehlo()
            if self.security == "starttls":
                stage = "tls"
                smtp.starttls(context=self._context())
                smtp.ehlo()
            if self.username is not None:
                stage = "auth"
                password = self.password
                if isinstance(password, SecretStr):
                    password = password.get_secret_value()
                smtp.login(self.username, password or "")
        except smtplib.SMTPNotSupportedError as exc:
            _abandon(smtp)
            raise TransientDeliveryError(
                f"{self.address} does not support {stage}: {exc}", stage=stage
            ) from exc
        except smtplib.SMTPResponseException as exc:
            _abandon(smtp)
            raise _classified(
                f"{self.address} refused the session", stage, exc.smtp_code, exc.smtp_error
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:  # incl. ssl.SSLError, timeouts
            _abandon(smtp)
            raise TransientDeliveryError(
                f"cannot talk to {self.address} ({stage}): {type(exc).__name__}: {exc}",
                stage=stage,
            ) from exc
        return smtp

    def _send_once(self, message: EmailMessage) -> None:
        if self._smtp is None:
            self._smtp = self._connect()
        smtp = self._smtp
        try:
            refused = smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:  # all of them; smtplib sent RSET
            codes = {address: code for address, (code, _) in exc.recipients.items()}
            replies = "; ".join(
                f"{address}: {code} {_decode(reply)}"
                for address, (code, reply) in exc.recipients.items()
            )
            worst = max(codes.values())
            raise _classified(f"recipients refused ({replies})", "rcpt", worst, replies) from exc
        except smtplib.SMTPSenderRefused as exc:
            raise _classified("sender refused", "mail", exc.smtp_code, exc.smtp_error) from exc
        except smtplib.SMTPDataError as exc:
            raise _classified("message refused", "data", exc.smtp_code, exc.smtp_error) from exc
        except smtplib.SMTPResponseException as exc:  # e.g. HELO refused: a session problem
            self._drop()
            raise _classified("SMTP error", "connect", exc.smtp_code, exc.smtp_error) from exc
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            raise TransientDeliveryError(
                f"connection to {self.address} failed: {type(exc).__name__}: {exc}", stage="mail"
            ) from exc
        if refused:
            # Some recipients accepted it: resending would duplicate it for them.
            replies = "; ".join(
                f"{address}: {code} {_decode(reply)}" for address, (code, reply) in refused.items()
            )
            raise PermanentDeliveryError(
                f"some recipients refused ({replies})",
                stage="rcpt",
                code=max(code for code, _ in refused.values()),
                reply=replies,
            )

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        _abandon(smtp)


def _abandon(smtp: smtplib.SMTP | None) -> None:
    if smtp is not None:
        with contextlib.suppress(OSError):  # closing a broken socket
            smtp.close()


class DeliveryStatus(enum.Enum):
    DELIVERED = "delivered"
    PERMANENT_FAILURE = "permanent_failure"
    GAVE_UP = "gave_up"


@dataclass(frozen=True)
class DeliveryResult:
    """What became of one message: ``status``, after ``attempts``, and why if it failed."""

    status: DeliveryStatus
    attempts: int
    reason: str | None = None
    error: DeliveryError | None = None

    @property
    def delivered(self) -> bool:
        return self.status is DeliveryStatus.DELIVERED


def backoff_delay(
    attempt: int, base_delay_s: float, max_delay_s: float, rng: random.Random | None = None
) -> float:
    """Delay after failed ``attempt`` (1-based): ``base * 2**(attempt-1)``, capped, with "equal
    jitter" (half fixed, half random) so that many workers do not retry in lockstep."""
    ceiling = min(max_delay_s, base_delay_s * 2.0 ** (attempt - 1))
    jitter = (rng if rng is not None else _RANDOM).uniform(0, ceiling / 2)
    return ceiling / 2 + jitter


def deliver_with_retry(
    sender: MailSender,
    message: EmailMessage,
    attempts: int = 5,
    base_delay_s: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
    *,
    max_delay_s: float = 30.0,
    rng: random.Random | None = None,
) -> DeliveryResult:
    """Send ``message``, retrying transient failures up to ``attempts`` times in all.

    Returns DELIVERED, PERMANENT_FAILURE (at once, with the server's reason) or GAVE_UP (the
    last transient error's reason). ``sleep`` is injectable so tests do not wait.
    """
    if attempts < 1:
        raise ValueError("attempts must be >= 1")
    last: DeliveryError | None = None
    for attempt in range(1, attempts + 1):
        try:
            sender.send(message)
        except PermanentDeliveryError as exc:
            return DeliveryResult(DeliveryStatus.PERMANENT_FAILURE, attempt, str(exc), exc)
        except TransientDeliveryError as exc:
            last = exc
            if attempt < attempts:
                sleep(backoff_delay(attempt, base_delay_s, max_delay_s, rng))
            continue
        return DeliveryResult(DeliveryStatus.DELIVERED, attempt)
    assert last is not None
    return DeliveryResult(DeliveryStatus.GAVE_UP, attempts, str(last), last)


@dataclass
class RecordingSender:
    """A :class:`MailSender` that keeps messages in memory: a test seam and a dry-run sink.

    ``failures`` is a queue of errors to raise, one per call, before sending succeeds.
    """

    sent: list[EmailMessage] = field(default_factory=list)
    failures: list[DeliveryError] = field(default_factory=list)

    def send(self, message: EmailMessage) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(message)
