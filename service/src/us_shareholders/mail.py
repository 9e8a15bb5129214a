"""Rendering a digest job into an email: multipart text + HTML from Jinja2 templates.

A digest job (produced by the weekly digest, consumed by the delivery worker) is a JSON object::

    {"week": "2026-W48", "client": "c1", "name": "Ada", "email": "ada@example.com",
     "positions": [{"id": "1", "ticker": "AAPL", "exchange": "NASDAQ", "amount": 100,
                    "company": "Apple Inc."}]}

The templates ``subject.txt.j2``, ``digest.txt.j2`` and ``digest.html.j2`` ship in
``us_shareholders/templates``; a ``templates_dir`` holding files of the same names overrides them
one by one. HTML is autoescaped, text is not. Headers are built from parsed addresses: a client
name is stripped of control characters (no header injection) and encoded as needed.

The ``Message-ID`` is deterministic per (client, week) —
``<digest.2026-W48.<sha256(client)[:16]>@<domain of From>>`` — so a re-send after a crash can be
recognised by the receiving side.

Example::

    renderer = DigestRenderer(mail_from="digest@bank.example")
    message = renderer.render(job)          # an email.message.EmailMessage
"""

from __future__ import annotations

import email.policy
import functools
import hashlib
import unicodedata
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    select_autoescape,
)
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, ValidationError
from pydantic import field_validator as _field_validator

from streamtable.errors import StreamTableError
from us_shareholders.schedule import WeekId

if TYPE_CHECKING:
    from us_shareholders.config import ServiceSettings

__all__ = [
    "TEMPLATE_NAMES",
    "DigestJob",
    "DigestPosition",
    "DigestRenderer",
    "InvalidDigestJob",
    "digest_message_id",
    "parse_mailbox",
    "render_digest",
    "sanitize_display_name",
]

TEMPLATE_NAMES = ("subject.txt.j2", "digest.txt.j2", "digest.html.j2")
"""The templates a ``templates_dir`` may override."""

_MAX_NAME = 200


class InvalidDigestJob(StreamTableError, ValueError):
    """A digest job is malformed (missing fields, wrong types, bad address). Not retriable: the
    job belongs in the dead-letter topic. Its message may quote the bad field's value (an
    address): not loggable."""

    message_is_loggable = False


class DigestPosition(BaseModel):
    """One US position of a digest job."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str
    ticker: str
    exchange: str
    amount: StrictInt | StrictFloat
    company: str | None = None


class DigestJob(BaseModel):
    """One email to send: a client's US positions for a week."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    week: str
    client: Annotated[str, Field(min_length=1)]
    name: str | None = None
    email: str
    positions: Annotated[list[DigestPosition], Field(min_length=1)]

    @_field_validator("week")
    @classmethod
    def _week(cls, value: str) -> str:
        return str(WeekId.parse(value))

    @_field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        address = parse_mailbox(value)
        if address.display_name:
            raise ValueError("must be a bare address, without a display name")
        return address.addr_spec

    @property
    def week_id(self) -> WeekId:
        return WeekId.parse(self.week)

    @classmethod
    def parse(cls, job: Mapping[str, Any] | DigestJob) -> DigestJob:
        """Validate a decoded job; raises :class:`InvalidDigestJob` saying what is wrong."""
        if isinstance(job, DigestJob):
            return job
        try:
            return cls.model_validate(job)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"]) or "job"
            cause = error.get("ctx", {}).get("error")
            message = str(cause) if isinstance(cause, ValueError) else error["msg"]
            raise InvalidDigestJob(f"digest job {where}: {message}") from None


def parse_mailbox(value: str) -> Address:
    """Parse ``user@domain`` or ``Name <user@domain>``; raise ValueError if it is not one."""
    if not isinstance(value, str) or any(c in value for c in "\r\n\0"):
        raise ValueError("must be an email address without line breaks")
    name, addr = parseaddr(value)
    local, at, domain = addr.rpartition("@")
    if not at or not local or not domain or any(c.isspace() for c in addr):
        raise ValueError(f"{value!r} is not an email address like 'digest@example.com'")
    try:
        return Address(display_name=name, addr_spec=addr)
    except (ValueError, IndexError) as exc:
        raise ValueError(f"{value!r} is not an email address: {exc}") from None


def sanitize_display_name(name: str | None) -> str:
    """``name`` fit for a header: control and line-separator characters become spaces,
    whitespace is collapsed, and it is cut to 200 characters. None becomes ``""``."""
    if not name:
        return ""
    cleaned = "".join(
        " " if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c for c in name
    )
    return " ".join(cleaned.split())[:_MAX_NAME].strip()


def digest_message_id(week: str | WeekId, client: str, domain: str) -> str:
    """The ``Message-ID`` of the digest of ``client`` for ``week``: same inputs, same id."""
    digest = hashlib.sha256(client.encode("utf-8")).hexdigest()[:16]
    return f"<digest.{week}.{digest}@{domain}>"


def _amount(value: int | float) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{value:,}"


def _loader(templates_dir: Path | None) -> BaseLoader:
    builtin = PackageLoader("us_shareholders", "templates")
    if templates_dir is None:
        return builtin
    return ChoiceLoader([FileSystemLoader(str(templates_dir)), builtin])


class DigestRenderer:
    """Renders digest jobs into messages; compiles the templates once.

    ``mail_from`` is the ``From`` (``addr`` or ``Name <addr>``); its domain ends each
    ``Message-ID``. ``list_unsubscribe`` (URL or ``mailto:``) adds a ``List-Unsubscribe`` header
    and a line in the body. ``clock`` supplies the ``Date`` (injectable for tests).
    """

    def __init__(
        self,
        *,
        mail_from: str | Address,
        list_unsubscribe: str | None = None,
        templates_dir: Path | str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.mail_from = mail_from if isinstance(mail_from, Address) else parse_mailbox(mail_from)
        self.list_unsubscribe = list_unsubscribe or None
        self.templates_dir = Path(templates_dir) if templates_dir is not None else None
        self._clock = clock
        self._env = Environment(
            loader=_loader(self.templates_dir),
            autoescape=select_autoescape(
                enabled_extensions=("html", "htm", "html.j2", "htm.j2"),
                default_for_string=False,
                default=False,
            ),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            auto_reload=False,
        )
        self._env.filters["amount"] = _amount
        self._subject, self._text, self._html = (
            self._env.get_template(name) for name in TEMPLATE_NAMES
        )

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> DigestRenderer:
        return cls(
            mail_from=settings.mail_from,
            list_unsubscribe=settings.list_unsubscribe,
            templates_dir=settings.templates_dir,
        )

    def context(self, job: DigestJob) -> dict[str, Any]:
        """What the templates see (also handy for a dry run)."""
        week = job.week_id
        return {
            "week": str(week),
            "week_start": week.monday,
            "week_end": week.sunday,
            "client": job.client,
            "name": sanitize_display_name(job.name),
            "email": job.email,
            "positions": [
                p.model_dump() for p in sorted(job.positions, key=lambda p: (p.id, p.ticker))
            ],
            "list_unsubscribe": self.list_unsubscribe,
            "mail_from": self.mail_from.addr_spec,
        }

    def render(
        self, job: Mapping[str, Any] | DigestJob, *, date: datetime | None = None
    ) -> EmailMessage:
        """The email for ``job``. Raises :class:`InvalidDigestJob` for a malformed job."""
        parsed = DigestJob.parse(job)
        context = self.context(parsed)
        subject = " ".join(self._subject.render(context).split())
        context["subject"] = subject
        sent_at = date if date is not None else self._clock()
        if sent_at.tzinfo is None:
            raise ValueError("date must be timezone-aware")

        message = EmailMessage(policy=email.policy.default)
        message["Subject"] = subject
        message["From"] = self.mail_from
        message["To"] = Address(display_name=context["name"], addr_spec=parsed.email)
        message["Date"] = format_datetime(sent_at.astimezone(UTC))
        message["Message-ID"] = digest_message_id(parsed.week, parsed.client, self.mail_from.domain)
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
        if self.list_unsubscribe:
            message["List-Unsubscribe"] = f"<{self.list_unsubscribe}>"
        message.set_content(self._text.render(context))
        message.add_alternative(self._html.render(context), subtype="html")
        return message


@functools.lru_cache(maxsize=8)
def _cached_renderer(
    mail_from: str, list_unsubscribe: str | None, templates_dir: Path | None
) -> DigestRenderer:
    return DigestRenderer(
        mail_from=mail_from, list_unsubscribe=list_unsubscribe, templates_dir=templates_dir
    )


def render_digest(
    job: Mapping[str, Any] | DigestJob,
    *,
    mail_from: str,
    list_unsubscribe: str | None = None,
    templates_dir: Path | str | None = None,
    date: datetime | None = None,
) -> EmailMessage:
    """Render one job; see :class:`DigestRenderer` (which to prefer for many jobs)."""
    directory = Path(templates_dir) if templates_dir is not None else None
    return _cached_renderer(mail_from, list_unsubscribe, directory).render(job, date=date)
