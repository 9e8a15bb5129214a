"""Delivery over real SMTP (aiosmtpd on loopback): success, retries, permanent failures, TLS."""

from __future__ import annotations

import random
import smtplib
import socket
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from tests.support.smtp import SmtpSink, self_signed_certificate
from tests.support.smtp import smtp_sink as smtp_sink  # the fixture
from us_shareholders.delivery import (
    DeliveryStatus,
    PermanentDeliveryError,
    RecordingSender,
    SmtpSender,
    TransientDeliveryError,
    backoff_delay,
    deliver_with_retry,
)
from us_shareholders.mail import render_digest

pytestmark = pytest.mark.unit


def digest(client: str = "c1", email: str = "ada@example.com") -> EmailMessage:
    return render_digest(
        {
            "week": "2026-W48",
            "client": client,
            "name": "Ada",
            "email": email,
            "positions": [{"id": "1", "ticker": "AAPL", "exchange": "NASDAQ", "amount": 100}],
        },
        mail_from="digest@bank.example",
        date=datetime(2026, 11, 23, 12, tzinfo=UTC),
    )


class Sleeps:
    """An injectable sleep that records instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def sender_for(sink: SmtpSink, **options: Any) -> SmtpSender:
    return SmtpSender(sink.host, sink.port, timeout_s=5.0, **options)


def test_a_message_is_delivered_and_parses_back(smtp_sink: SmtpSink) -> None:
    message = digest()
    with sender_for(smtp_sink) as sender:
        result = deliver_with_retry(sender, message, sleep=Sleeps())
    assert result.status is DeliveryStatus.DELIVERED
    assert result.attempts == 1
    (delivery,) = smtp_sink.deliveries()
    assert delivery.mail_from == "digest@bank.example"
    assert delivery.rcpt_tos == ("ada@example.com",)
    assert delivery.path.suffix == ".eml"
    (received,) = smtp_sink.messages()
    assert received["Message-ID"] == message["Message-ID"]
    assert received["To"].addresses[0].display_name == "Ada"
    assert received["Subject"] == "Your US holdings — week 2026-W48"
    body = received.get_body(("plain",))
    assert body is not None
    assert "AAPL (NASDAQ)" in body.as_string()


def test_one_connection_carries_many_messages(smtp_sink: SmtpSink) -> None:
    with sender_for(smtp_sink) as sender:
        for i in range(3):
            sender.send(digest(client=f"c{i}", email=f"client{i}@example.com"))
    assert [d.rcpt_tos for d in smtp_sink.deliveries()] == [
        ("client0@example.com",),
        ("client1@example.com",),
        ("client2@example.com",),
    ]


def test_a_451_is_retried_with_backoff_then_delivered(smtp_sink: SmtpSink) -> None:
    smtp_sink.fail("ada@example.com", 451, times=1)
    sleeps = Sleeps()
    with sender_for(smtp_sink) as sender:
        result = deliver_with_retry(sender, digest(), base_delay_s=0.5, sleep=sleeps)
    assert result.status is DeliveryStatus.DELIVERED
    assert result.attempts == 2
    assert len(sleeps.delays) == 1
    assert 0.25 <= sleeps.delays[0] <= 0.5
    assert smtp_sink.attempts["ada@example.com"] == 2
    assert len(smtp_sink.messages()) == 1


def test_a_550_is_permanent_and_not_retried(smtp_sink: SmtpSink) -> None:
    smtp_sink.fail("ada@example.com", 550)
    sleeps = Sleeps()
    with sender_for(smtp_sink) as sender:
        result = deliver_with_retry(sender, digest(), sleep=sleeps)
    assert result.status is DeliveryStatus.PERMANENT_FAILURE
    assert result.attempts == 1
    assert sleeps.delays == []
    assert isinstance(result.error, PermanentDeliveryError)
    assert result.error.code == 550
    assert result.error.stage == "rcpt"
    assert result.reason is not None
    assert "550" in result.reason
    assert "Mailbox unavailable" in result.reason
    assert smtp_sink.messages() == []


def test_a_5xx_at_end_of_data_is_permanent(smtp_sink: SmtpSink) -> None:
    smtp_sink.fail("ada@example.com", 554, stage="data")
    with sender_for(smtp_sink) as sender, pytest.raises(PermanentDeliveryError) as caught:
        sender.send(digest())
    assert (caught.value.stage, caught.value.code) == ("data", 554)


def test_persistent_4xx_gives_up_after_the_attempts(smtp_sink: SmtpSink) -> None:
    smtp_sink.fail("ada@example.com", 452)
    sleeps = Sleeps()
    with sender_for(smtp_sink) as sender:
        result = deliver_with_retry(
            sender, digest(), attempts=4, base_delay_s=1.0, sleep=sleeps, rng=random.Random(7)
        )
    assert result.status is DeliveryStatus.GAVE_UP
    assert result.attempts == 4
    assert isinstance(result.error, TransientDeliveryError)
    assert result.error.code == 452
    assert len(sleeps.delays) == 3
    for attempt, delay in enumerate(sleeps.delays, start=1):
        ceiling = 1.0 * 2 ** (attempt - 1)
        assert ceiling / 2 <= delay <= ceiling
    assert smtp_sink.attempts["ada@example.com"] == 4


def test_a_refused_connection_is_transient() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sender = SmtpSender("127.0.0.1", port, timeout_s=2.0)
    with pytest.raises(TransientDeliveryError) as caught:
        sender.send(digest())
    assert caught.value.stage == "connect"
    assert caught.value.code is None
    result = deliver_with_retry(sender, digest(), attempts=2, sleep=Sleeps())
    assert result.status is DeliveryStatus.GAVE_UP


def test_a_closed_idle_connection_is_reopened_without_a_retry(smtp_sink: SmtpSink) -> None:
    sender = sender_for(smtp_sink)
    sender.send(digest(client="c1"))
    assert sender._smtp is not None
    assert sender._smtp.sock is not None
    sender._smtp.sock.close()  # as if the server had dropped the idle connection
    sender.send(digest(client="c2", email="bob@example.com"))
    sender.close()
    assert len(smtp_sink.deliveries()) == 2


# --- TLS and authentication ----------------------------------------------------------------------


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a self-signed certificate, and a client context trusting it."""
    cert, key = self_signed_certificate(tmp_path)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client


def test_starttls_with_authentication(
    tmp_path: Path, certificate: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    server, client = certificate
    with SmtpSink(tmp_path / "mail", tls=server, credentials=("digest", "s3cret")) as sink:
        sender = sender_for(
            sink, security="starttls", username="digest", password="s3cret", ssl_context=client
        )
        with sender:
            sender.send(digest())
        assert len(sink.messages()) == 1

        wrong = sender_for(
            sink, security="starttls", username="digest", password="nope", ssl_context=client
        )
        with pytest.raises(TransientDeliveryError) as caught:  # not the message's fault
            wrong.send(digest())
        assert (caught.value.stage, caught.value.code) == ("auth", 535)


def test_implicit_tls(tmp_path: Path, certificate: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server, client = certificate
    with SmtpSink(tmp_path / "mail", tls=server, implicit_tls=True) as sink:
        with sender_for(sink, security="ssl", ssl_context=client) as sender:
            sender.send(digest())
        assert len(sink.messages()) == 1


def test_an_untrusted_certificate_is_a_transient_tls_failure(
    tmp_path: Path, certificate: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    server, _ = certificate
    with SmtpSink(tmp_path / "mail", tls=server) as sink:
        sender = sender_for(sink, security="starttls")  # the system CAs: self-signed refused
        with pytest.raises(TransientDeliveryError) as caught:
            sender.send(digest())
        assert caught.value.stage == "tls"
        assert isinstance(caught.value.__cause__, ssl.SSLError)
        assert sink.messages() == []


# --- retry policy without a server ---------------------------------------------------------------


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    rng = random.Random(1)
    for attempt in range(1, 12):
        ceiling = min(30.0, 0.5 * 2 ** (attempt - 1))
        assert ceiling / 2 <= backoff_delay(attempt, 0.5, 30.0, rng) <= ceiling


def test_deliver_with_retry_with_a_recording_sender() -> None:
    flaky = RecordingSender(
        failures=[
            TransientDeliveryError("busy", stage="rcpt", code=421),
            TransientDeliveryError("busy", stage="rcpt", code=421),
        ]
    )
    result = deliver_with_retry(flaky, digest(), attempts=3, sleep=Sleeps())
    assert result.delivered
    assert result.attempts == 3
    assert len(flaky.sent) == 1
    with pytest.raises(ValueError, match="attempts"):
        deliver_with_retry(flaky, digest(), attempts=0)


def test_smtplib_is_real() -> None:
    # guard: these tests must exercise smtplib, not a stand-in
    assert SmtpSender.__module__ == "us_shareholders.delivery"
    assert smtplib.SMTP.__module__ == "smtplib"
