"""The overview at a glance, in headless Chromium at 1,280 x 800 on the committed claim study:
each task at its own sizes, short labels, the headline first, a sentence per task with the
details folded, no sideways scrolling; the runs table shows the stage and tuned hyperparameters."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from conftest import require_chromium

require_chromium()

from seqbench.dashboard.server import make_server  # noqa: E402

CLAIM = Path(__file__).resolve().parents[1] / "results" / "claim.sqlite"


@pytest.fixture(scope="module")
def page(browser, tmp_path_factory):
    if not CLAIM.exists():
        pytest.skip("results/claim.sqlite is not in this checkout")
    db = shutil.copy(CLAIM, tmp_path_factory.mktemp("claim") / "claim.sqlite")
    server = make_server(db, n_boot=200)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    errors: list = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(server.url)
    pg.wait_for_selector("#overview td.cell")
    yield pg, errors
    context.close()
    server.shutdown()
    server.server_close()


def test_no_sideways_scrolling_and_each_task_at_its_own_sizes(page):
    pg, errors = page
    widths = pg.evaluate("""() => {
        const d = document.documentElement, sec = document.getElementById('overview-section');
        const wrap = sec.querySelector('.table-wrap');
        return [d.scrollWidth, d.clientWidth, sec.scrollWidth, sec.clientWidth,
                wrap.scrollWidth, wrap.clientWidth];
    }""")
    page_w, page_cw, sec_w, sec_cw, wrap_w, wrap_cw = widths
    assert page_w <= page_cw and sec_w <= sec_cw and wrap_w <= wrap_cw, widths
    assert pg.locator("#overview td.empty").count() == 0  # no "–" for another task's sizes
    rows = pg.locator("#overview tbody tr")
    sizes = [rows.nth(i).locator("td.cell").count() for i in range(rows.count())]
    assert rows.count() == 4 and sizes == [5, 5, 5, 5]
    labels = [t.strip() for t in pg.locator("#overview tbody th").all_text_contents()]
    assert all(len(label) <= 45 and "data=" not in label for label in labels), labels
    assert any(label.startswith("classification · digits") for label in labels)
    assert any(label.startswith("classification · trec/train_5500") for label in labels)
    assert not errors


def test_headline_first_and_one_sentence_per_task(page):
    pg, _ = page
    headline = pg.text_content("#headline")
    assert pg.is_visible("#headline") and "lstm" in headline and "transformer" in headline
    box = pg.evaluate("""() => [document.getElementById('headline').getBoundingClientRect().top,
                                document.getElementById('overview').getBoundingClientRect().top]""")
    assert box[0] < box[1]
    items = pg.locator("#verdicts li")
    assert items.count() == 4
    first = items.first
    summary = first.locator("summary").text_content()
    assert summary.count(". ") == 0 and summary.rstrip().endswith(".") and len(summary) < 300
    assert not first.locator(".verdict-text").is_visible()
    first.locator("summary").click()
    assert first.locator(".verdict-text").is_visible()
    assert len(first.locator(".verdict-text").text_content()) > len(summary)


def test_runs_table_shows_stage_and_tuned_hyperparameters(page):
    pg, _ = page
    headers = pg.locator("#runs-table thead th").all_text_contents()
    assert "stage" in headers and "tuned hyperparameters" in headers
    stage = headers.index("stage")
    tuned = headers.index("tuned hyperparameters")
    cells = pg.locator("#runs-table tbody tr").first.locator("td")
    assert cells.nth(stage).text_content() in ("tuning", "evaluation")
    assert "lr=" in cells.nth(tuned).text_content()
