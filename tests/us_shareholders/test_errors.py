"""The service's exceptions are in the library's error tree, keep their built-in bases, and
are not logged with their messages (which may quote an address)."""

from __future__ import annotations

import pytest

import us_shareholders
from streamtable.errors import StreamTableError, loggable
from tests.support.exceptions import exception_classes
from us_shareholders.delivery import PermanentDeliveryError, TransientDeliveryError
from us_shareholders.mail import DigestJob, InvalidDigestJob

pytestmark = pytest.mark.unit


def test_every_exception_the_service_defines_is_under_the_root() -> None:
    found = exception_classes(us_shareholders)
    assert "us_shareholders.mail.InvalidDigestJob" in found
    outside = sorted(name for name, cls in found.items() if not issubclass(cls, StreamTableError))
    assert outside == []


def test_an_invalid_job_is_still_a_value_error_and_logs_no_address() -> None:
    job = {"week": "2026-W48", "client": "c1", "email": "ada@@example.com", "positions": []}
    with pytest.raises(ValueError, match="digest job email") as caught:
        DigestJob.parse(job)
    assert isinstance(caught.value, InvalidDigestJob)
    assert "ada@@example.com" in str(caught.value)  # the dead-letter reason keeps it
    assert "ada@@example.com" not in loggable(caught.value)


def test_delivery_errors_say_whether_to_retry() -> None:
    assert TransientDeliveryError("busy", stage="rcpt", code=421).retriable
    assert not PermanentDeliveryError("no such user", stage="rcpt", code=550).retriable
    refused = PermanentDeliveryError("550 <ada@example.com> unknown", stage="rcpt", code=550)
    assert "ada@example.com" not in loggable(refused)
