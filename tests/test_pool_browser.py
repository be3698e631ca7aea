"""The pooled verdict's forest plot in the static report, in headless Chromium (Playwright)."""

from __future__ import annotations

from conftest import require_chromium

require_chromium()

from test_analysis import make_db  # noqa: E402
from test_pool import DIFFS, atlas_runs  # noqa: E402


def test_static_report_draws_the_forest_of_each_regime(browser, tmp_path):
    from seqbench.dashboard.report import write_report

    db = make_db(tmp_path / "atlas.sqlite", atlas_runs())
    out = tmp_path / "report.html"
    write_report(db, out, n_boot=200)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(30_000)
    errors: list = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(out.as_uri())
    page.wait_for_function("(document.getElementById('forest-chart') || {}).data")
    assert page.is_visible("#forest-section") and page.is_visible('#toc a[href="#forest-section"]')
    options = page.locator("#forest-select option").all_text_contents()
    assert options == [f"classification · {r} · lstm − transformer"
                       for r in ("n ≈ 250–500", "n ≈ 1,000–2,000", "full")]
    traces = page.evaluate("document.getElementById('forest-chart').data.map(t => t.x.length)")
    assert traces == [len(DIFFS), 5, 2]  # data sets, the diamond, the prediction interval
    assert "with 95% probability" in page.text_content("#forest-prediction")
    page.select_option("#forest-select", index=2)
    page.wait_for_function("document.getElementById('forest-chart').dataset.forest"
                           " === 'classification|full'")
    assert "on the full training set" in page.text_content("#forest-prediction")
    assert not errors
    page.close()
