"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, one ``.eml`` file per accepted message.

``smtp_sink`` (a pytest fixture) starts a plain server on an ephemeral port and stops it at
teardown. It can be told to refuse given recipients with a 4xx or 5xx reply, always or for the
first N attempts, to exercise retries and dead-lettering::

    def test_retry(smtp_sink):
        smtp_sink.fail("ada@example.com", 451, times=1)   # first RCPT TO: 451, then accepted
        ...
        assert [m["To"] for m in smtp_sink.messages()] == [...]

``SmtpSink(directory, tls=..., implicit_tls=..., credentials=...)`` builds STARTTLS, implicit
TLS and AUTH variants (see :func:`self_signed_certificate`). Nothing here mocks smtplib: the
client under test talks SMTP over a loopback socket.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from us_shareholders.mailsink import Delivery, SmtpSink

__all__ = ["Delivery", "SmtpSink", "self_signed_certificate", "smtp_sink"]


def self_signed_certificate(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A certificate and key for ``host`` (as IP SAN and CN), valid for two days."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ip_address(host))]), False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def smtp_sink(tmp_path: Path) -> Iterator[SmtpSink]:
    """A plain SMTP server on 127.0.0.1 writing messages under ``tmp_path / "mail"``."""
    with SmtpSink(tmp_path / "mail") as sink:
        yield sink
