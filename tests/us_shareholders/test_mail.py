"""Rendering digest jobs: templates, escaping, safe headers, deterministic Message-ID."""

from __future__ import annotations

import email
import email.policy
import hashlib
import importlib.resources
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast

import pytest

from us_shareholders.mail import (
    TEMPLATE_NAMES,
    DigestRenderer,
    InvalidDigestJob,
    digest_message_id,
    render_digest,
    sanitize_display_name,
)

pytestmark = pytest.mark.unit

SENT_AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def job(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "week": "2026-W48",
        "client": "c1",
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "positions": [
            {"id": "2", "ticker": "MSFT", "exchange": "NYSE", "amount": 1500, "company": None},
            {"id": "1", "ticker": "AAPL", "exchange": "NASDAQ", "amount": 100,
             "company": "Apple Inc."},
        ],
    }  # fmt: skip
    base.update(changes)
    return base


def render(data: dict[str, Any], **options: Any) -> EmailMessage:
    options.setdefault("mail_from", "US Holdings <digest@bank.example>")
    return render_digest(data, date=SENT_AT, **options)


def reparsed(message: EmailMessage) -> EmailMessage:
    """The message as a receiving server would see it."""
    return email.message_from_bytes(message.as_bytes(), policy=email.policy.default)


def bodies(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None
    assert html is not None
    return cast(EmailMessage, text).get_content(), cast(EmailMessage, html).get_content()


def test_templates_ship_inside_the_package() -> None:
    templates = importlib.resources.files("us_shareholders").joinpath("templates")
    for name in TEMPLATE_NAMES:
        assert templates.joinpath(name).is_file(), name


def test_message_is_multipart_alternative_with_both_bodies() -> None:
    message = reparsed(render(job()))
    assert message.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in message.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    assert message["Subject"] == "Your US holdings — week 2026-W48"
    assert message["From"].addresses[0].addr_spec == "digest@bank.example"
    assert message["Date"].datetime == SENT_AT
    assert message["Auto-Submitted"] == "auto-generated"


def test_every_position_is_listed_sorted_by_id() -> None:
    text, html = bodies(reparsed(render(job())))
    assert "- AAPL (NASDAQ), Apple Inc.: 100 shares\n- MSFT (NYSE): 1,500 shares\n" in text
    assert text.index("AAPL") < text.index("MSFT")
    assert "week 2026-W48 (2026-11-23 to 2026-11-29)" in text
    assert "Dear Ada Lovelace," in text
    assert html.index("AAPL") < html.index("MSFT")
    assert "<td>Apple Inc.</td>" in html
    assert "2 positions in total." in text


def test_html_is_escaped_and_text_is_not() -> None:
    data = job(name="<b>Eve</b>")
    data["positions"][0]["company"] = "<script>alert('x')</script> & Co"
    text, html = bodies(reparsed(render(data)))
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; Co" in html
    assert "Dear &lt;b&gt;Eve&lt;/b&gt;," in html
    assert "<script>alert('x')</script> & Co" in text
    assert "Dear <b>Eve</b>," in text


def test_a_name_cannot_inject_headers() -> None:
    message = render(job(name="Ada\r\nBcc: evil@x.example\r\n\r\nbody"))
    raw = message.as_bytes()
    back = reparsed(message)
    assert back.get_all("Bcc") is None
    assert b"\nBcc:" not in raw
    assert b"\rBcc:" not in raw
    to = back["To"].addresses
    assert len(to) == 1
    assert to[0].addr_spec == "ada@example.com"
    assert to[0].display_name == "Ada Bcc: evil@x.example body"


def test_non_ascii_names_are_encoded_and_round_trip() -> None:
    message = render(job(name='Zoë Åström, "QA"'))
    assert message.as_bytes().isascii()
    assert reparsed(message)["To"].addresses[0].display_name == 'Zoë Åström, "QA"'


def test_sanitize_display_name() -> None:
    assert sanitize_display_name("  Ada\u2028\tLovelace\x00 ") == "Ada Lovelace"
    assert sanitize_display_name(None) == ""
    assert len(sanitize_display_name("x" * 1000)) == 200


def test_a_client_without_a_name_is_greeted_without_one() -> None:
    message = reparsed(render(job(name=None)))
    assert message["To"] == "ada@example.com"
    assert bodies(message)[0].startswith("Hello,\n")


def test_message_id_is_deterministic_per_client_and_week() -> None:
    expected_hash = hashlib.sha256(b"c1").hexdigest()[:16]
    first = render(job())
    assert first["Message-ID"] == f"<digest.2026-W48.{expected_hash}@bank.example>"
    later = render_digest(
        job(name="Ada L."), mail_from="digest@bank.example", date=datetime.now(UTC)
    )
    assert later["Message-ID"] == first["Message-ID"]
    assert render(job(client="c2"))["Message-ID"] != first["Message-ID"]
    assert render(job(week="2026-W49"))["Message-ID"] != first["Message-ID"]
    assert digest_message_id("2026-W48", "c1", "bank.example") == first["Message-ID"]


def test_list_unsubscribe_header_only_when_configured() -> None:
    assert render(job())["List-Unsubscribe"] is None
    message = render(job(), list_unsubscribe="mailto:unsubscribe@bank.example")
    assert message["List-Unsubscribe"] == "<mailto:unsubscribe@bank.example>"
    assert "mailto:unsubscribe@bank.example" in bodies(reparsed(message))[0]


def test_templates_dir_overrides_templates_one_by_one(tmp_path: Path) -> None:
    (tmp_path / "subject.txt.j2").write_text("Holdings {{ week }} for {{ name }}\n")
    (tmp_path / "digest.html.j2").write_text(
        "<p>{% for p in positions %}{{ p.ticker }};{% endfor %}{{ name }}</p>"
    )
    renderer = DigestRenderer(mail_from="digest@bank.example", templates_dir=tmp_path)
    message = reparsed(renderer.render(job(name="A&B"), date=SENT_AT))
    text, html = bodies(message)
    assert message["Subject"] == "Holdings 2026-W48 for A&B"
    assert html.strip() == "<p>AAPL;MSFT;A&amp;B</p>"  # overridden, still autoescaped
    assert "- AAPL (NASDAQ)" in text  # not overridden: the built-in template


def test_renderer_uses_its_clock_for_the_date() -> None:
    renderer = DigestRenderer(mail_from="digest@bank.example", clock=lambda: SENT_AT)
    assert reparsed(renderer.render(job()))["Date"].datetime == SENT_AT


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"week": "2026-48"}, "digest job week: week '2026-48' is not of the form YYYY-Www"),
        ({"client": ""}, "digest job client:"),
        ({"email": "not-an-address"}, "digest job email:"),
        ({"email": "ada@example.com\r\nBcc: evil@x"}, "digest job email:"),
        ({"email": "Ada <ada@example.com>"}, "must be a bare address"),
        ({"positions": []}, "digest job positions:"),
        ({"positions": [{"id": "1", "ticker": "AAPL", "exchange": "NASDAQ", "amount": "100"}]},
         "digest job positions.0.amount"),
        ({"positions": [{"id": "1", "ticker": "AAPL", "amount": 1}]},
         "digest job positions.0.exchange: Field required"),
    ],
)  # fmt: skip
def test_malformed_jobs_are_rejected_with_the_reason(
    changes: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(InvalidDigestJob) as caught:
        render(job(**changes))
    assert complaint in str(caught.value)
