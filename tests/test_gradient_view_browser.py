"""The gradient-flow view of the dashboard and the static report, in headless Chromium.

The database comes from a REAL small study in parts (``bench run --matrix FOLDER`` in this
process, its parts probing gradients): an RNN, an IRNN and a Transformer probed on the copy
task, plus an LSTM without probes at another size, so one cell has probes and one has none.
Skipped, with the reason, when Playwright or Chromium is missing, like
tests/test_dashboard_browser.py.
"""

from __future__ import annotations

import textwrap
import threading
from pathlib import Path

import pytest

from conftest import bench_here, require_chromium

require_chromium()

from seqbench.dashboard.server import make_server  # noqa: E402

TIMEOUT = 30_000
COMMON = """
    tasks = ["copy"]
    seeds = [0, 1]
    [task_params.copy]
    T = 5
    val_size = 40
    test_size = 40
    [training]
    max_steps = 20
    val_every = 10
"""
PARTS = {  # a study in parts: each file one matrix, run in name order
    "1-probed.toml": 'models = ["rnn", "transformer"]\ntrain_sizes = [32]\n' + COMMON
                     + "    probe_gradients = true\n",
    "2-irnn.toml": 'models = ["rnn"]\ntrain_sizes = [32]\n' + COMMON
                   + '    probe_gradients = true\n    [model_params.rnn]\n'
                     '    nonlinearity = "relu"\n    init = "identity"\n',
    "3-unprobed.toml": 'models = ["lstm"]\ntrain_sizes = [16]\n' + COMMON,
}


@pytest.fixture(scope="module")
def study_db(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("study")
    for name, text in PARTS.items():
        (folder / name).write_text(textwrap.dedent(text))
    db = tmp_path_factory.mktemp("db") / "results.sqlite"
    res = bench_here("run", "--matrix", folder, "--executor", "sequential", "--db", db)
    assert res.rc == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "part 3-unprobed" in res.stdout
    return db


def open_page(browser, url: str, errors: list):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_function("window.__seqbench && window.__seqbench.marks.gradients !== undefined")
    return page


def check_view(page) -> None:
    """What the gradient-flow view must show for the study above."""
    assert page.is_visible("#gradients-section")
    cells = page.eval_on_selector_all("#grad-cell-select option",
                                      "os => os.map(o => o.textContent)")
    assert len(cells) == 1 and "n=32" in cells[0] and "6 probed runs" in cells[0]
    configs = page.eval_on_selector_all("#grad-config-select option", "os => os.map(o => o.value)")
    assert configs == ["rnn init=default nonlinearity=tanh", "rnn init=identity nonlinearity=relu",
                       "transformer"]
    assert page.get_attribute("#grad-profile-chart", "data-configs") == "3"
    profile = page.evaluate("document.getElementById('grad-profile-chart').data"
                            ".map(t => [t.name, t.y.length])")
    assert [n for _, n in profile] == [25, 25, 25]  # T + 2n positions of copy T=5
    heat = page.evaluate("(() => { const t = document.getElementById('grad-flow-chart').data[0];"
                         " return [t.type, t.y, t.z.length, t.z[0].length]; })()")
    assert heat == ["heatmap", [0, 10, 20], 3, 25]  # step 0 and every validation
    assert "Ratio" in page.text_content("#grad-note")
    # another configuration: its own map
    page.select_option("#grad-config-select", "transformer")
    page.wait_for_function("document.getElementById('grad-flow-chart')"
                           ".getAttribute('data-config') === 'transformer'")


def test_gradient_view_live(study_db, browser):
    from seqbench.store import Store

    srv = make_server(study_db)
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    errors: list = []
    page = open_page(browser, srv.url, errors)
    try:
        check_view(page)
        with Store(study_db, readonly=True) as store:
            runs = store.runs()
        probed = next(r.run_id for r in runs if r.model == "rnn")
        plain = next(r.run_id for r in runs if r.model == "lstm")
        # a probed run's detail: its map, and the pre-clip norm against the threshold
        page.click("#clear-filters")
        page.click(f"#runs-table tr[data-run='{probed}']")
        page.wait_for_selector(f"#detail-grad[data-run='{probed}']")
        page.wait_for_function(
            "(document.getElementById('detail-grad-norm').data || []).length === 2")
        norm = page.evaluate("(() => { const d = document.getElementById('detail-grad-norm');"
                             " return [d.data[0].x, d.layout.shapes.map(s => s.y0)]; })()")
        assert norm == [[10, 20], [1.0]]  # summarised at each validation; threshold grad_clip 1
        assert "clipping threshold 1" in page.text_content("#detail-grad")
        flow_type = page.evaluate("document.getElementById('detail-grad-flow').data[0].type")
        assert flow_type == "heatmap"
        # a run without probes: no gradient block
        page.click(f"#runs-table tr[data-run='{plain}']")
        page.wait_for_function(f"document.getElementById('detail-title').textContent === '{plain}'")
        page.wait_for_function("!document.getElementById('detail-grad').hasAttribute('data-run')")
        assert page.text_content("#detail-grad") == ""
        assert not errors, errors
    finally:
        page.context.close()
        srv.shutdown()
        srv.server_close()


def test_gradient_view_in_the_static_report(study_db, browser, tmp_path):
    from seqbench.dashboard.report import write_report

    out = tmp_path / "report.html"
    write_report(study_db, out)
    errors: list = []
    page = open_page(browser, out.as_uri(), errors)
    try:
        check_view(page)
        assert not errors, errors
    finally:
        page.context.close()
