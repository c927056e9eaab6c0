"""The page at ``/`` names a token only where one is configured (``make run``)."""

from __future__ import annotations

from pathlib import Path

from gateway.app import demo_page

STATIC = Path(__file__).parents[2] / "gateway" / "static"


def test_no_token_on_the_page_unless_configured() -> None:
    page = demo_page("")
    assert "gateway-demo-token" not in page
    assert "dev-token" not in page
    assert "dev-token" not in (STATIC / "app.js").read_text()


def test_a_configured_token_is_escaped_into_a_meta_tag() -> None:
    page = demo_page('dev-token"><script>alert(1)</script>')
    assert '<meta name="gateway-demo-token" content="dev-token&quot;&gt;&lt;script&gt;' in page
    assert "<script>alert(1)" not in page
