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

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from us_shareholders.mailsink import Delivery, SmtpSink

__all__ = ["Delivery", "SmtpSink", "self_signed_certificate", "smtp_sink"]


def self_signed_certificate(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A certificate and key for ``host`` (as IP SAN and CN), made with the openssl CLI.

    Skips the calling test when openssl is not installed.
    """
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed: cannot make a test certificate")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", f"/CN={host}", "-addext", f"subjectAltName=IP:{host}",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def smtp_sink(tmp_path: Path) -> Iterator[SmtpSink]:
    """A plain SMTP server on 127.0.0.1 writing messages under ``tmp_path / "mail"``."""
    with SmtpSink(tmp_path / "mail") as sink:
        yield sink
