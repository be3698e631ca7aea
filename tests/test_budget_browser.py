"""The dashboard overview says "budget-limited" where a cell's runs ran out of steps (headless
Chromium; skipped with the reason when it is missing)."""

from __future__ import annotations

from conftest import require_chromium

require_chromium()

from test_analysis_integrity import capped_db  # noqa: E402
from test_dashboard_browser import Served, open_page  # noqa: E402


def test_overview_and_claims_say_budget_limited(tmp_path, browser):
    srv = Served(capped_db(tmp_path / "both.sqlite", {100: 400, 400: 250}))
    errors: list = []
    page = open_page(browser, srv.url, errors)
    try:
        page.wait_for_selector("#overview td.cell")
        cells = page.locator("#overview td.cell").all_text_contents()
        assert len(cells) == 2
        assert "budget-limited: lstm ahead after 400 steps" in cells[0]
        assert "significant" not in cells[0] and "significant" in cells[1]
        claims = page.locator("#verdicts .claim").all_text_contents()
        assert claims == ["accuracy: budget-limited", "speed: budget-limited"]
        assert not errors
    finally:
        page.context.close()
        srv.close()
