"""The dashboard and the static report in headless Chromium (Playwright).

The database comes from a REAL small matrix (``bench run`` in this process, 24 runs of small
models), made once per session by the ``dashboard_matrix_db`` fixture. Skipped, with the reason,
when Playwright or a Chromium is missing (``SEQBENCH_CHROMIUM`` names another binary than
/usr/bin/chromium). Playwright's own browser download is not used.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import threading
from pathlib import Path

import pytest

from conftest import bench_here, require_chromium

require_chromium()

from seqbench.dashboard.server import make_server  # noqa: E402
from seqbench.store import Store  # noqa: E402

# Small models, few steps, small copy evaluation sets: the page shows results, not learning.
MATRIX = ["--models", "lstm,transformer", "--tasks", "copy,classification", "--train-sizes", "32,64",
          "--seeds", "0,1,2", "--max-steps", "10", "--val-every", "5", "-t", "copy.T=5",
          "-t", "copy.val_size=100", "-t", "copy.test_size=100", "--param-budget", "3000"]
PWN_MODEL = "<script>window.__pwned=1</script>"
PWN_ERROR = 'RuntimeError: </script><img src=x onerror="window.__pwned=2"> boom'
TIMEOUT = 30_000  # ms, for anything the page waits on (plotly.js is 4.8 MB on a busy CI core)


# --------------------------------------------------------------------------------------------
# fixtures: the real matrix, servers, a browser


def run_matrix(db: Path) -> Path:
    """``bench run`` of the small real matrix into ``db`` (24 runs: 2 models x 2 tasks x 2 sizes
    x 3 seeds, 10 steps each), in this process: no worker, no second import of torch and
    Lightning."""
    res = bench_here("run", *MATRIX, "--executor", "sequential", "--db", db)
    assert res.rc == 0, res.stdout[-2000:] + res.stderr[-2000:]
    return db


@pytest.fixture(scope="session")
def dashboard_matrix_db(tmp_path_factory) -> Path:
    """A results database written by a real matrix; reusable, never modified (copy it first).

    ``SEQBENCH_TEST_MATRIX_DB=path`` reuses a database that this same matrix wrote (saves the
    minute while working on the page)."""
    given = os.environ.get("SEQBENCH_TEST_MATRIX_DB")
    if given:
        return copy_db(Path(given), tmp_path_factory.mktemp("matrix") / "results.sqlite")
    return run_matrix(tmp_path_factory.mktemp("matrix") / "results.sqlite")


def copy_db(src: Path, dst: Path) -> Path:
    """A consistent copy (SQLite's backup API also takes what is still in the WAL)."""
    with sqlite3.connect(f"file:{src}?mode=ro", uri=True) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    return dst


class Served:
    def __init__(self, db: Path):
        self.server = make_server(db)
        self.url = self.server.url
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def open_page(browser, url: str, errors: list | None = None):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT)
    if errors is not None:
        page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    return page


def wait_charts(page):
    page.wait_for_function("window.__seqbench && window.__seqbench.marks.curves !== undefined")


def chart_points(page, div_id: str) -> int:
    return page.evaluate(
        "(id) => (document.getElementById(id).data || [])"
        ".reduce((n, t) => n + (t.x ? t.x.length : 0), 0)", div_id)


def runs_count(page) -> str:
    return page.text_content("#runs-count")


@pytest.fixture(scope="module")
def live(dashboard_matrix_db, browser):
    """One dashboard page on the real matrix, shared by the read-only checks below."""
    srv = Served(dashboard_matrix_db)
    errors: list = []
    page = open_page(browser, srv.url, errors)
    wait_charts(page)
    yield page, errors
    page.context.close()
    srv.close()


def reset(page):
    page.click("#clear-filters")
    page.wait_for_function("document.querySelector('#runs-count').textContent.startsWith('24 of')")


# --------------------------------------------------------------------------------------------
# the live dashboard


def test_overview_shows_every_cell_with_a_winner(live):
    page, errors = live
    cells = page.locator("#overview td.cell")
    assert cells.count() == 4  # {copy, classification} x {32, 64}
    for row in page.locator("#overview tbody tr").all():  # each task at its own sizes
        assert [t.strip() for t in row.locator(".nhead").all_text_contents()] == ["n = 32", "n = 64"]
    rows = page.locator("#overview tbody th").all_text_contents()
    assert any(r.startswith("classification") for r in rows) and any(r.startswith("copy") for r in rows)
    for text in cells.all_text_contents():
        assert ("lstm" in text or "transformer" in text) and "n = " in text
        assert "significant" in text or "seeds" in text or "p = " in text
    counts = page.text_content("#counts")
    assert "24 done" in counts and "0 failed" in counts and "0 running" in counts
    assert page.locator("#verdicts li").count() == 2
    assert not errors


def test_filter_narrows_the_runs_table(live):
    page, _ = live
    reset(page)
    assert page.locator("#runs-table tbody tr").count() == 24
    page.select_option("select[data-filter=model]", "lstm")
    assert runs_count(page).startswith("12 of 24")
    page.select_option("select[data-filter=task]", "copy")
    page.select_option("select[data-filter=train_size]", "32")
    assert runs_count(page).startswith("3 of 24")
    models = page.locator("#runs-table tbody tr td:nth-child(2)").all_text_contents()
    assert models == ["lstm"] * 3
    page.select_option("select[data-filter=seed]", "1")
    assert page.locator("#runs-table tbody tr").count() == 1
    page.select_option("select[data-filter=status]", "done")
    assert page.locator("#runs-table tbody tr").count() == 1
    reset(page)


def test_sort_by_a_column(live):
    page, _ = live
    reset(page)
    page.click("#runs-table th[data-key=seed]")
    assert page.get_attribute("#runs-table th[data-key=seed]", "aria-sort") == "ascending"
    seeds = [int(s) for s in page.locator("#runs-table tbody td:nth-child(5)").all_text_contents()]
    assert seeds == sorted(seeds)
    page.click("#runs-table th[data-key=seed]")
    seeds = [int(s) for s in page.locator("#runs-table tbody td:nth-child(5)").all_text_contents()]
    assert seeds == sorted(seeds, reverse=True)
    page.click("#runs-table th[data-key=task]")  # back to the default order


def test_run_detail_opens_with_config_environment_and_curve(live):
    page, _ = live
    reset(page)
    row = page.locator("#runs-table tbody tr").first
    run_id = row.get_attribute("data-run")
    row.click()
    page.wait_for_selector("#detail-section:not([hidden])")
    assert page.text_content("#detail-title") == run_id
    detail = page.text_content("#detail")
    assert "parameters" in detail and "done" in detail
    more = page.text_content("#detail-more")
    assert "environment" in more and '"python"' in more and "hidden_size" in more
    page.wait_for_function("(document.getElementById('detail-chart').data || []).length > 0")
    assert chart_points(page, "detail-chart") >= 2
    page.click("#detail-close")
    assert page.is_hidden("#detail-section")


def test_learning_curves_have_points_bands_and_a_target(live):
    page, _ = live
    traces = page.evaluate("""document.getElementById('curves-chart').data.map(t => ({
        name: t.name || "", n: t.x ? t.x.length : 0, fill: t.fill || null, show: t.showlegend !== false}))""")
    legend = [t["name"] for t in traces if t["show"]]
    assert any(n.startswith("lstm (mean of 3)") for n in legend)
    assert any(n.startswith("transformer (mean of 3)") for n in legend)
    assert sum(t["n"] for t in traces) > 0
    assert sum(t["fill"] == "tonexty" for t in traces) == 2  # one CI band per model
    assert sum(t["name"].startswith("lstm seed") for t in traces) == 3  # seeds drawn faintly
    shapes = page.evaluate("document.getElementById('curves-chart').layout.shapes || []")
    assert any(s["type"] == "line" and s.get("xref") == "paper" for s in shapes)  # the target
    x_steps = page.evaluate("document.getElementById('curves-chart').data[0].x")
    page.click("#axis-switch button[data-value=seconds]")
    page.wait_for_function("document.getElementById('curves-chart').getAttribute('data-axis') === 'seconds'")
    x_seconds = page.evaluate("document.getElementById('curves-chart').data[0].x")
    assert x_seconds != x_steps and all(x < 100 for x in x_seconds)
    page.click("#axis-switch button[data-value=steps]")


def test_clicking_a_cell_selects_its_curves(live):
    page, _ = live
    cell = page.locator("#overview td.cell").nth(3)
    cell_id = cell.get_attribute("data-cell")
    cell.click()
    page.wait_for_function(
        "(id) => document.getElementById('curves-chart').getAttribute('data-cell') === id", arg=cell_id)
    assert page.input_value("#cell-select") == cell_id
    assert chart_points(page, "curves-chart") > 0


def test_scaling_and_convergence_charts(live):
    page, _ = live
    names = page.evaluate("document.getElementById('scaling-chart').data.map(t => t.name)")
    assert "lstm" in names and "transformer" in names
    xs = page.evaluate("document.getElementById('scaling-chart').data.flatMap(t => t.x)")
    assert set(xs) <= {32, 64} and page.evaluate(
        "document.getElementById('scaling-chart').layout.xaxis.type") == "log"
    assert "lstm vs transformer" in page.text_content("#crossovers")
    conv = page.evaluate("""document.getElementById('convergence-chart').data.map(t => ({
        name: t.name, n: t.x.length, symbol: t.marker && t.marker.symbol}))""")
    assert sum(t["n"] for t in conv) > 0  # every (model, size) drawn, reached or not
    censored = [t for t in conv if t["symbol"] == "triangle-up-open"]
    assert all(t["n"] > 0 for t in censored)
    page.click("#conv-switch button[data-value=seconds]")
    assert "seconds" in page.evaluate("document.getElementById('convergence-chart').layout.yaxis.title.text")


def test_export_downloads_the_filtered_runs(live):
    page, _ = live
    reset(page)
    page.select_option("select[data-filter=model]", "transformer")
    with page.expect_download() as info:
        page.click("#export-csv")
    download = info.value
    assert download.suggested_filename == "seqbench-runs.csv"
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert len(rows) == 12 and {r["model"] for r in rows} == {"transformer"}
    assert rows[0]["run_id"] and json.loads(rows[0]["environment"])["python"]
    from seqbench.analysis.tables import EXPORT

    assert list(rows[0]) == list(EXPORT)  # the columns of `bench results --csv`
    with page.expect_download() as info:
        page.click("#export-json")
    records = json.loads(Path(info.value.path()).read_text(encoding="utf-8"))
    assert len(records) == 12 and all(r["model"] == "transformer" for r in records)
    assert {r["run_id"] for r in records} == {r["run_id"] for r in rows}
    reset(page)


# --------------------------------------------------------------------------------------------
# escaping, live updates, empty database


def plant(db: Path) -> Path:
    """A run whose model name and error text are HTML/script."""
    with Store(db) as store:
        like = store.runs(task="copy", train_size=32)[0]  # same task variant as the matrix's
        cfg = {**like.config, "model": PWN_MODEL, "model_params": {}}
        store.save({
            "run_id": "pwned000", "matrix_id": "x", "model": PWN_MODEL, "task": "copy",
            "kind": "aligned", "train_size": 32, "seed": 0, "status": "failed", "error": PWN_ERROR,
            "config": cfg, "trial": {}, "environment": {"note": PWN_MODEL},
            "started_at": "2026-01-01T00:00:00+00:00", "finished_at": "2026-01-01T00:00:01+00:00",
            "curve": [{"step": 1, "samples": 1, "seconds": 0.1, "train_loss": 1.0,
                       "val_primary": 0.1, "val": {}}],
        })
    return db


@pytest.fixture(scope="module")
def planted(dashboard_matrix_db, tmp_path_factory):
    return plant(copy_db(dashboard_matrix_db, tmp_path_factory.mktemp("planted") / "x.sqlite"))


def check_planted_page(page):
    page.wait_for_selector("#overview td.cell")
    assert page.evaluate("typeof window.__pwned") == "undefined"
    page.select_option("select[data-filter=status]", "failed")
    row = page.locator("#runs-table tbody tr")
    assert row.count() == 1
    assert PWN_MODEL in row.inner_text()  # shown as text
    row.click()
    page.wait_for_selector("#detail-section:not([hidden])")
    assert PWN_ERROR in page.text_content("#detail .error-text")
    wait_charts(page)
    page.wait_for_timeout(200)
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator("img[src=x]").count() == 0
    # the filter options and the legend show the name as text too
    assert PWN_MODEL in page.locator("select[data-filter=model]").inner_text()


def test_planted_script_is_shown_as_text_never_run(planted, browser):
    srv = Served(planted)
    errors: list = []
    try:
        page = open_page(browser, srv.url, errors)
        check_planted_page(page)
        assert page.locator("script").count() == 2  # app.js and plotly.js, nothing from data
        assert not errors
        page.context.close()
    finally:
        srv.close()


def test_new_runs_appear_without_a_reload(dashboard_matrix_db, browser, tmp_path):
    db = copy_db(dashboard_matrix_db, tmp_path / "growing.sqlite")
    srv = Served(db)
    try:
        page = open_page(browser, srv.url)
        page.wait_for_selector("#overview td.cell")
        assert runs_count(page).startswith("24 of 24")
        page.evaluate("window.__marker = 1")  # gone if the page reloads
        with Store(db) as store:
            rec = store.runs()[0]
            run = {k: getattr(rec, k) for k in (
                "matrix_id", "model", "task", "kind", "train_size", "status", "config", "trial",
                "model_params", "primary_metric", "higher_is_better", "best_val", "test",
                "param_count", "train_examples", "steps", "samples", "train_seconds",
                "environment", "started_at", "finished_at")}
            run.update(run_id="newrun0000000001", seed=99, curve=store.curve(rec.run_id))
            store.save(run)
        page.wait_for_function(
            "document.querySelector('#runs-count').textContent.startsWith('25 of 25')", timeout=TIMEOUT)
        assert page.evaluate("window.__marker") == 1
        assert "25 done" in page.text_content("#counts")
        page.context.close()
    finally:
        srv.close()


def test_missing_database_shows_how_to_start(browser, tmp_path):
    srv = Served(tmp_path / "nothing-yet.sqlite")
    try:
        page = open_page(browser, srv.url)
        page.wait_for_selector("#state:not([hidden])")
        assert "bench run --preset quick" in page.text_content("#state")
        assert page.is_hidden("#overview-section") and page.is_hidden("#error")
        page.context.close()
    finally:
        srv.close()


# --------------------------------------------------------------------------------------------
# the static report, from file://


@pytest.fixture(scope="module")
def report_file(planted, tmp_path_factory) -> Path:
    from seqbench.dashboard.report import write_report

    out = tmp_path_factory.mktemp("report") / "report.html"
    write_report(planted, out)
    return out


def test_static_report_works_offline_from_file(report_file, browser):
    errors: list = []
    requests: list = []
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    context.route("**/*", lambda route: (requests.append(route.request.url), route.continue_()))
    page = context.new_page()
    page.set_default_timeout(TIMEOUT)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(report_file.as_uri())
    wait_charts(page)
    assert page.locator("#overview td.cell").count() == 4
    assert "static report" in page.text_content("#live")
    assert chart_points(page, "curves-chart") > 0
    assert chart_points(page, "scaling-chart") > 0
    assert len(page.locator("#verdicts li").all()) == 2
    assert page.locator("#verdicts li").first.text_content()
    check_planted_page(page)  # no script from the data runs here either
    page.wait_for_function("(document.getElementById('detail-chart').data || []).length > 0")
    page.click("#clear-filters")
    page.select_option("select[data-filter=model]", "lstm")
    with page.expect_download() as info:
        page.click("#export-json")
    records = json.loads(Path(info.value.path()).read_text(encoding="utf-8"))
    assert len(records) == 12 and {r["model"] for r in records} == {"lstm"}
    assert all(u.startswith(("file:", "blob:", "data:")) for u in requests), requests
    assert not errors
    context.close()


def test_report_paints_fast_enough_to_be_usable(report_file, browser):
    """Not a benchmark (see benchmarks/dashboard_paint.py): the overview must not wait for plotly."""
    page = open_page(browser, report_file.as_uri())
    wait_charts(page)
    marks = page.evaluate("window.__seqbench.marks")
    assert marks["overview"] <= marks["curves"]
    page.context.close()


def test_a_big_cell_draws_with_webgl_and_a_small_one_with_svg_again(browser, tmp_path):
    """The page starts with plotly's cartesian bundle; a cell of more than 20,000 curve points
    fetches the full bundle for WebGL, and the chart goes back to SVG for a small cell."""
    from test_dashboard import make_db, record

    big = range(5, 10_005, 5)  # 2,000 validations per run, 12 runs: 24,000 points
    recs = [record(m, size=size, seed=s, value=v + s / 100, steps=steps)
            for size, steps in ((32, (10, 20, 30)), (64, big))
            for m, v in (("lstm", 0.8), ("transformer", 0.5)) for s in range(6)]
    db = make_db(tmp_path / "big.sqlite", recs, running=0)
    srv = Served(db)
    errors: list = []
    requested: list = []
    try:
        page = open_page(browser, "about:blank", errors)
        page.on("request", lambda r: requested.append(r.url.rsplit("/", 1)[-1]))
        page.goto(srv.url)
        wait_charts(page)
        cells = page.locator("#overview td.cell")

        def show(i: int) -> str:
            cell_id = cells.nth(i).get_attribute("data-cell")
            cells.nth(i).click()
            page.wait_for_function(
                "(id) => document.getElementById('curves-chart').getAttribute('data-cell') === id",
                arg=cell_id)
            return page.evaluate("document.getElementById('curves-chart').data[0].type")

        kinds = {show(i) for i in range(cells.count())}
        assert kinds == {"scatter", "scattergl"}
        assert requested.count("plotly.js") == 1 and requested.count("plotly-gl.js") == 1
        assert show(0) in ("scatter", "scattergl") and chart_points(page, "curves-chart") > 0
        assert errors == []
    finally:
        page.context.close()
        srv.close()
