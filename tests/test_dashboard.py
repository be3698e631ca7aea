"""The dashboard's server and JSON API, and the static report (no browser here).

Databases are written with ``Store.save`` from records shaped like the runner's; the server runs
in a thread on a free port of 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from seqbench.dashboard import data as dashdata
from seqbench.dashboard.server import make_server
from seqbench.store import Store

from conftest import default_sigint

ROOT = Path(__file__).resolve().parents[1]
XSS_MODEL = "<script>alert(1)</script>"
XSS_ERROR = "ValueError: </script><script>alert(2)</script> & <img src=x onerror=alert(3)>"


# --------------------------------------------------------------------------------------------
# records and databases


def record(model="lstm", task="copy", size=32, seed=0, status="done", value=0.5, steps=(10, 20, 30),
           task_params=None, slope=1.0, **over) -> dict:
    """A finished-run record shaped like ``runner.execute``'s."""
    task_params = {"T": 5} if task_params is None else task_params
    cfg = {"model": model, "model_params": {"hidden_size": 8}, "task": task,
           "task_params": task_params, "train_size": size, "seed": seed,
           "training": {"lr": 0.001, "max_steps": 30}}
    run_id = hashlib.sha1(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:16]
    rec = {
        "run_id": run_id, "matrix_id": "m1", "model": model, "task": task, "kind": "aligned",
        "train_size": size, "seed": seed, "status": status, "error": None, "config": cfg,
        "trial": {}, "model_params": cfg["model_params"], "primary_metric": "recall_accuracy",
        "higher_is_better": True, "best_val": None, "test": None, "param_count": 1234,
        "train_examples": size, "steps": max(steps), "samples": max(steps) * 8,
        "train_seconds": max(steps) / 10, "steps_to_95": None, "samples_to_95": None,
        "seconds_to_95": None, "extras": {"baseline_ce": 0.1},
        "environment": {"device": "cpu", "versions": {"torch": "x"}},
        "started_at": "2026-01-01T00:00:00+00:00", "finished_at": "2026-01-01T00:00:09+00:00",
        "curve": [
            {"step": st, "samples": st * 8, "seconds": st / 10 + seed / 100,
             "train_loss": 1.0 / st, "val_primary": min(1.0, slope * value * st / max(steps)),
             "val": {"recall_accuracy": min(1.0, slope * value * st / max(steps)), "loss": 2.0 - st / 100}}
            for st in steps
        ],
    }
    if status == "done":
        rec.update(best_val=rec["curve"][-1]["val_primary"],
                   test={"recall_accuracy": value, "loss": 1.0}, steps_to_95=max(steps))
    else:
        rec["error"] = f"RuntimeError: the run {status}\nTraceback (most recent call last): ..."
    rec.update(over)
    return rec


def matrix_records() -> list[dict]:
    """lstm beats transformer at both sizes, 3 seeds each, plus one failed and one diverged run."""
    recs = []
    for size in (32, 64):
        for seed in range(3):
            recs.append(record("lstm", size=size, seed=seed, value=0.8 + seed / 100))
            recs.append(record("transformer", size=size, seed=seed, value=0.3 + seed / 100))
    recs.append(record("lstm", size=128, seed=0, status="failed"))
    recs.append(record("transformer", size=32, seed=9, status="diverged", steps=(10,)))
    return recs


def make_db(path: Path, records=None, running: int = 1) -> Path:
    with Store(path) as store:
        for rec in matrix_records() if records is None else records:
            store.save(rec)
        for i in range(running):
            store.conn.execute(
                "INSERT INTO runs (run_id, model, task, kind, train_size, seed, status, config) "
                "VALUES (?, 'lstm', 'copy', 'aligned', 256, ?, 'running', ?)",
                (f"running{i}", i, json.dumps({"task_params": {"T": 5}})),
            )
        store.conn.commit()
    return path


@pytest.fixture
def db(tmp_path):
    return make_db(tmp_path / "results.sqlite")


# --------------------------------------------------------------------------------------------
# a server in a thread, and a raw HTTP client (no URL normalisation)


class Served:
    def __init__(self, path, **options):
        self.server = make_server(path, **options)
        self.host, self.port = self.server.server_address[:2]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def request(self, path, method="GET", headers=None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            hdrs = {"Host": f"127.0.0.1:{self.port}", **(headers or {})}
            for k, v in hdrs.items():
                conn.putheader(k, v)
            conn.endheaders()
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def json(self, path):
        status, _, body = self.request(path)
        assert status == 200, (path, status, body[:200])
        return json.loads(body)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def serve():
    started = []

    def start(path, **options):
        s = Served(path, **options)
        started.append(s)
        return s

    yield start
    for s in started:
        s.close()


def wait_for(predicate, timeout=15.0, interval=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out")


# --------------------------------------------------------------------------------------------
# the API


def test_summary_has_counts_cells_and_rows(db, serve):
    s = serve(db).json("/api/summary")
    assert s["status"] == "ok"
    assert s["counts"] == {"done": 12, "failed": 1, "diverged": 1, "running": 1}
    assert s["analysis"]["ok"], s["analysis"]
    cells = {(c["task"], c["train_size"]): c for c in s["cells"]}
    assert set(cells) >= {("copy", 32), ("copy", 64)}
    for size in (32, 64):
        c = cells[("copy", size)]
        assert c["winner"]["model"] == "lstm"
        assert c["winner"]["margin"] == pytest.approx(0.5)
        assert isinstance(c["winner"]["significant"], bool)
        assert c["id"] and c["label"].startswith("copy")
        assert {m["model"] for m in c["models"]} == {"lstm", "transformer"}
        assert all("run_ids" not in m and "values" not in m for m in c["models"])  # kept lean
    assert len(s["rows"]) == 15
    assert s["filters"]["model"] == ["lstm", "transformer"]
    assert s["filters"]["train_size"] == [32, 64, 128, 256]
    assert s["filters"]["status"] == ["done", "failed", "diverged", "running"]
    assert s["verdicts"] and "text" in s["verdicts"][0]
    assert s["export_fields"][0] == "run_id"
    failed = next(r for r in s["rows"] if r["status"] == "failed")
    assert failed["error"] == "RuntimeError: the run failed"  # first line only in the table


def test_cell_curves_mean_band_and_seeds(db, serve):
    srv = serve(db)
    s = srv.json("/api/summary")
    cell = next(c for c in s["cells"] if c["train_size"] == 32)
    c = srv.json(f"/api/cell/{cell['id']}")
    assert c["target"] is not None and c["primary_metric"] == "recall_accuracy"
    lstm = next(m for m in c["models"] if m["model"] == "lstm")
    assert len(lstm["seeds"]) == 3
    steps = lstm["bands"]["steps"]
    assert steps["x"] == [10, 20, 30] and steps["k"] == 3
    finals = [sd["val"][-1] for sd in lstm["seeds"]]
    assert steps["mean"][-1] == pytest.approx(sum(finals) / 3, rel=1e-5)
    assert steps["lo"][-1] < steps["mean"][-1] < steps["hi"][-1]
    assert set(lstm["bands"]) == {"steps", "samples", "seconds"}
    assert lstm["bands"]["samples"]["x"] == [80, 160, 240]
    assert {"median_steps", "reached", "of"} <= set(lstm["ttt"])
    trans = next(m for m in c["models"] if m["model"] == "transformer")
    assert any(sd["status"] == "diverged" for sd in trans["seeds"])  # censored runs drawn too


def test_band_carries_a_stopped_seed_forward_and_uses_a_t_interval():
    b = dashdata.band([([1, 2, 3], [0.0, 1.0, 2.0]), ([1, 2], [2.0, 3.0])], 0.95)
    assert b["x"] == [1, 2, 3]
    assert b["mean"] == [1.0, 2.0, 2.5]  # the second seed stopped at 2 and keeps 3.0
    # x=1: values 0 and 2, sd = sqrt(2), half width = t(0.975, df=1) * sd / sqrt(2) = 12.706
    assert b["hi"][0] - b["mean"][0] == pytest.approx(12.7062, rel=1e-4)
    assert b["mean"][0] - b["lo"][0] == pytest.approx(12.7062, rel=1e-4)
    assert dashdata.band([([1, 2], [0.5, 0.6])], 0.95)["lo"] is None  # one seed: no CI
    assert dashdata.band([], 0.95) is None
    long = dashdata.band([(list(range(1000)), [0.0] * 1000)], 0.95)
    assert len(long["x"]) == dashdata.GRID_POINTS


def test_band_is_the_analysis_t_interval():
    """The band's half-width is stats.mean_ci's, and the dashboard has no t-quantile of its own."""
    from seqbench.analysis import stats

    ys = [[0.1, 0.5], [0.3, 0.4], [0.2, 0.9]]
    b = dashdata.band([([1, 2], y) for y in ys], 0.9)
    for j in range(2):
        lo, hi = stats.mean_ci([y[j] for y in ys], 0.9)
        assert b["lo"][j] == pytest.approx(lo, rel=1e-5)
        assert b["hi"][j] == pytest.approx(hi, rel=1e-5)
    assert not hasattr(dashdata, "t_quantile")
    source = (ROOT / "bench" / "dashboard" / "data.py").read_text()
    assert "ppf" not in source and "stdev" not in source and "NormalDist" not in source


def analyze_json(db, *args) -> dict:
    from click.testing import CliRunner
    from seqbench.cli.analyze import analyze

    res = CliRunner().invoke(analyze, ["--db", str(db), "--json", "--bootstrap", "1000", *args])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def test_the_dashboard_shows_bench_analyze_numbers(tmp_path, serve):
    """One source of truth: every number in the overview is the one `bench analyze --json` prints
    (same cells, same selected trial and seeds, same intervals, tests and verdicts)."""
    recs = []
    extras = {"chance": 0.125, "perfect": 1.0, "val_size": 400}
    for size in (32, 64):
        for seed in range(6):
            recs.append(record("lstm", size=size, seed=seed, value=0.8 + seed / 100,
                               extras=extras))
            recs.append(record("transformer", size=size, seed=seed, value=0.78 + seed / 90,
                               extras=extras))
    # a tuning-stage run with a high score: selection only, in neither view's seeds
    recs.append(record("lstm", size=32, seed=99, value=0.99, trial={"stage": "tune"}))
    db = make_db(tmp_path / "r.sqlite", recs, running=0)
    srv = serve(db, n_boot=1000)
    ours = srv.json("/api/summary")
    theirs = analyze_json(db)
    assert ours["analysis"]["ok"]
    by_id = {(c["task"], c["train_size"]): c for c in theirs["cells"]}
    assert len(ours["cells"]) == len(by_id) == 2
    for c in ours["cells"]:
        t = by_id[(c["task"], c["train_size"])]
        assert c["comparisons"] == t["comparisons"] and c["winner"] == t["winner"]
        assert c["target"] == t["target"] and c["guard"] == t["guard"]
        for m, tm in zip(c["models"], t["models"]):
            assert {k: v for k, v in tm.items() if k not in ("values", "seeds", "run_ids")} == m
        assert [m["n_seeds"] for m in c["models"]] == [6, 6]  # the tuning seed is not counted
        assert c["guard"]["chance"] == 0.125 and c["validation"]["size"] == 400
        curves = srv.json(f"/api/cell/{c['id']}")
        assert curves["target"] == t["target"] and curves["validation"] == t["validation"]
    assert [{k: v for k, v in x.items() if k not in ("label", "summary")}
            for x in ours["verdicts"]] == \
        theirs["verdicts"]
    assert [{k: v for k, v in x.items() if k not in ("label", "variant_id")}
            for x in ours["scaling"]] == theirs["scaling"]


def test_dashboard_default_pairs_without_a_transformer(tmp_path, serve):
    """Finding 10, in the dashboard: no Transformer in the database is no error; the models
    present are compared."""
    recs = [record(m, seed=s, value=0.5 + s / 50 + (m == "gru") * 0.1)
            for m in ("lstm", "gru") for s in range(3)]
    s = serve(make_db(tmp_path / "r.sqlite", recs, running=0)).json("/api/summary")
    assert s["analysis"]["ok"] and s["analysis"]["pairs"] == [["gru", "lstm"]]
    (v,) = s["verdicts"]
    assert (v["a"], v["b"]) == ("gru", "lstm")


def test_run_curve_and_not_found(db, serve):
    srv = serve(db)
    s = srv.json("/api/summary")
    rid = next(r["run_id"] for r in s["rows"] if r["status"] == "done")
    c = srv.json(f"/api/curve/{rid}")
    assert c["step"] == [10, 20, 30] and set(c["val"]) == {"recall_accuracy", "loss"}
    assert len(c["train_loss"]) == 3
    runs = srv.json("/api/runs")
    assert len(runs) == 15 and set(runs[0]) >= {"run_id", "params", "environment", "error"}
    for path in ("/api/curve/nope", "/api/cell/nope", "/api/curve/a%2fb", "/api/curve/..",
                 "/api/nothing", "/api/cell/", "/nothing", "/api/summary/x"):
        status, _, body = srv.request(path)
        assert status == 404, path
        assert json.loads(body) == {"error": "not found"}


def test_page_and_static_files(db, serve):
    srv = serve(db)
    status, headers, body = srv.request("/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b'src="static/app.js"' in body
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert "unsafe-inline" not in headers["Content-Security-Policy"].split("script-src")[1].split(";")[0]
    assert headers["X-Content-Type-Options"] == "nosniff"
    for name, ctype in (("app.js", "text/javascript"), ("style.css", "text/css"),
                        ("plotly.js", "text/javascript")):
        status, headers, body = srv.request(f"/static/{name}")
        assert status == 200 and headers["Content-Type"].startswith(ctype), name
    status, _, body = srv.request("/static/plotly.js")
    # the real bundles, no CDN: the cartesian one first, the full one only for WebGL traces
    assert 1_000_000 < len(body) < 2_000_000 and b"plotly.js (cartesian" in body[:200]
    status, headers, full = srv.request("/static/plotly-gl.js")
    assert status == 200 and len(full) > 3 * len(body) and b"plotly.js v" in full[:200]
    assert headers["Cache-Control"] == "public, max-age=86400"
    status, _, _ = srv.request("/static/app.js", method="HEAD")
    assert status == 200


TRAVERSALS = [
    "/static/../../etc/passwd", "/static/..%2f..%2fetc%2fpasswd", "/static/%2e%2e/%2e%2e/etc/passwd",
    "/static/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/static/..%5c..%5cetc%5cpasswd",
    "/static/....//....//etc/passwd", "/static//etc/passwd", "/static/%252e%252e/etc/passwd",
    "/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/static/./app.js/../../../etc/passwd",
    "/static/app.js%00.css", "/static/", "/static", "/etc/passwd", "//etc/passwd",
    "/static/../data.py", "/static/..%2fdata.py", "/static/../server.py", "/static/index.html/..",
    "/static/%2e%2e/__init__.py",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_no_path_traversal(db, serve, path):
    status, _, body = serve(db).request(path)
    assert status == 404, path
    assert b"root:" not in body and b"import" not in body


def test_only_get_and_head(db, serve):
    srv = serve(db)
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        status, headers, _ = srv.request("/api/summary", method=method)
        assert status == 405 and headers["Allow"] == "GET, HEAD"


def test_foreign_host_header_is_refused(db, serve):
    srv = serve(db)
    status, _, _ = srv.request("/api/summary", headers={"Host": "evil.example:80"})
    assert status == 403  # DNS rebinding: a page on another name must not read the results
    for host in (f"localhost:{srv.port}", f"127.0.0.1:{srv.port}", "[::1]:1"):
        assert srv.request("/api/version", headers={"Host": host})[0] == 200, host


def test_server_never_writes_the_database(db, serve, monkeypatch):
    opened = []
    real_init = Store.__init__

    def spy(self, path, readonly=False):
        opened.append(readonly)
        real_init(self, path, readonly)

    monkeypatch.setattr(Store, "__init__", spy)

    def digest():  # the database and its log (SQLite may leave an empty log beside a reader)
        out = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
               for p in db.parent.iterdir() if not p.name.endswith("-shm")}
        wal = db.with_name(db.name + "-wal")
        if wal.exists() and wal.stat().st_size == 0:
            del out[wal.name]
        return out

    before = digest()
    srv = serve(db)
    s = srv.json("/api/summary")
    for c in s["cells"]:
        srv.json(f"/api/cell/{c['id']}")
    for r in s["rows"][:5]:
        srv.request(f"/api/curve/{r['run_id']}")
    srv.json("/api/runs")
    assert opened and all(opened), "the dashboard opened the database for writing"
    assert digest() == before
    with Store(db, readonly=True) as store:  # what the dashboard uses cannot write
        with pytest.raises(Exception, match="readonly"):
            store.conn.execute("DELETE FROM runs")


def test_new_runs_appear_without_a_reload(db, serve):
    srv = serve(db)
    first = srv.json("/api/version")["version"]
    assert srv.json("/api/summary")["version"] == first
    with Store(db) as store:
        store.save(record("lstm", size=32, seed=7, value=0.9))
    # the page polls /api/version; it changes once the new snapshot is ready
    new = wait_for(lambda: (v := srv.json("/api/version")["version"]) != first and v)
    s = srv.json("/api/summary")
    assert s["version"] == new
    assert s["counts"]["done"] == 13 and len(s["rows"]) == 16


def test_a_stale_snapshot_is_served_while_a_new_one_builds(db, monkeypatch):
    dash = dashdata.Dashboard(db)
    old = dash.snapshot()
    gate = threading.Event()
    real = dashdata.build_snapshot

    def slow(*a, **k):
        gate.wait(10)
        return real(*a, **k)

    monkeypatch.setattr(dashdata, "build_snapshot", slow)
    with Store(db) as store:
        store.save(record("gru", size=32, seed=0))
    t = time.monotonic()
    assert dash.snapshot() is old  # returns at once, with the previous data
    assert time.monotonic() - t < 1
    gate.set()
    wait_for(lambda: dash.snapshot() is not old)
    assert "gru" in dash.summary()["filters"]["model"]
    assert dash.snapshot(wait=True).version == dash.file_version()


# --------------------------------------------------------------------------------------------
# escaping


def xss_db(path):
    recs = [record(XSS_MODEL, seed=s, value=0.7) for s in range(3)]
    recs += [record("lstm", seed=s, value=0.5) for s in range(3)]
    recs.append(record(XSS_MODEL, seed=5, status="failed", error=XSS_ERROR))
    return make_db(path, recs, running=0)


def test_script_in_data_is_json_escaped(tmp_path, serve):
    srv = serve(xss_db(tmp_path / "x.sqlite"))
    for path in ("/api/summary", "/api/runs"):
        status, headers, body = srv.request(path)
        assert status == 200 and headers["Content-Type"].startswith("application/json")
        assert b"<" not in body and b">" not in body, path
        text = json.loads(body)
        assert XSS_MODEL in json.dumps(text, ensure_ascii=False)
    runs = srv.json("/api/runs")
    assert any(r["error"] == XSS_ERROR for r in runs)  # round-trips exactly


def test_dumps_cannot_close_a_script_element():
    text = dashdata.dumps({"a": "</script><!-- & \u2028", "nan": float("nan"), "inf": [float("inf")]})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"a": "</script><!-- & \u2028", "nan": None, "inf": [None]}


# --------------------------------------------------------------------------------------------
# the static report


def report_blobs(html: str) -> dict:
    return {m.group(1): json.loads(m.group(2)) for m in re.finditer(
        r'<script type="application/json" data-key="([^"]+)">(.*?)</script>', html, re.DOTALL)}


def test_report_is_one_self_contained_file(db, tmp_path):
    from seqbench.dashboard.report import write_report

    out = tmp_path / "out" / "report.html"
    summary = write_report(db, out)
    html = out.read_text(encoding="utf-8")
    assert summary["status"] == "ok"
    assert 'src="static/' not in html and 'href="static/' not in html
    outside = re.sub(r"(<script[^>]*>).*?</script>", r"\1", html, flags=re.DOTALL)
    assert not re.search(r"""(src|href)\s*=\s*(?!["']?#)""", outside)  # no tag fetches anything
    assert "<link" not in outside and "@import" not in outside
    assert "<style>" in html
    # no cell here is big enough for WebGL: plotly's cartesian bundle, not the full one
    assert "plotly.js (cartesian - minified) v" in html and "* plotly.js v" not in html
    blobs = report_blobs(html)
    assert blobs["summary"]["counts"]["done"] == 12
    assert len(blobs["runs"]) == 15
    assert sum(k.startswith("cell/") for k in blobs) == len(blobs["summary"]["cells"])
    assert sum(k.startswith("curve/") for k in blobs) == 15
    # app.js is the dashboard's own file, byte for byte
    app = (ROOT / "bench" / "dashboard" / "static" / "app.js").read_text(encoding="utf-8")
    assert app.replace("</script", "<\\/script") in html


def test_a_report_with_a_webgl_sized_cell_carries_the_full_plotly_bundle(db, tmp_path, monkeypatch):
    from seqbench.dashboard import report

    small, _ = report.build_report(db)
    monkeypatch.setattr(report, "WEBGL_POINTS", 0)  # every cell of this database counts as big
    full, _ = report.build_report(db)
    assert "* plotly.js v" in full and "(cartesian - minified)" not in full
    assert len(full) > len(small) + 3_000_000


def test_report_escapes_scripts_from_the_data(tmp_path):
    from seqbench.dashboard.report import write_report

    out = tmp_path / "report.html"
    write_report(xss_db(tmp_path / "x.sqlite"), out)
    html = out.read_text(encoding="utf-8")
    assert "<script>alert" not in html and "</script><script>alert" not in html
    assert "<img src=x" not in html
    blobs = report_blobs(html)
    assert XSS_MODEL in blobs["summary"]["filters"]["model"]
    assert any(r["error"] == XSS_ERROR for r in blobs["runs"])


def test_empty_and_missing_databases(tmp_path, serve):
    empty = tmp_path / "empty.sqlite"
    Store(empty).close()
    s = serve(empty).json("/api/summary")
    assert s["status"] == "empty" and s["how_to_start"] == "bench run --preset quick"
    assert s["rows"] == [] and s["counts"]["done"] == 0

    from seqbench.dashboard.report import write_report

    out = tmp_path / "empty.html"
    write_report(empty, out)
    assert report_blobs(out.read_text(encoding="utf-8"))["summary"]["status"] == "empty"

    missing = tmp_path / "later" / "results.sqlite"
    srv = serve(missing)
    s = srv.json("/api/summary")
    assert s["status"] == "missing" and "bench run" in s["how_to_start"]
    missing.parent.mkdir()
    make_db(missing)  # a matrix starts: the page picks the file up by itself
    wait_for(lambda: srv.json("/api/summary")["status"] == "ok")


def test_a_matrix_that_has_only_started(tmp_path, serve):
    s = serve(make_db(tmp_path / "r.sqlite", records=[], running=3)).json("/api/summary")
    assert s["status"] == "ok" and s["counts"]["running"] == 3
    assert s["cells"] == [] and len(s["rows"]) == 3


def test_corrupt_database_is_one_clear_message(tmp_path, serve):
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not sqlite at all " * 200)
    s = serve(bad).json("/api/summary")
    assert s["status"] == "error" and "bad.sqlite" in s["message"]
    assert "\n" not in s["message"]
    other = tmp_path / "other.sqlite"
    import sqlite3

    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    s = serve(other).json("/api/summary")
    assert s["status"] == "error" and "not a seqbench results database" in s["message"]


def test_broken_analysis_falls_back_to_plain_means(db, serve, monkeypatch):
    """The fallback computes no statistics: the shared cells' means, no interval, no test."""
    import seqbench.analysis.analyze

    def boom(*a, **k):
        raise ZeroDivisionError("oops")

    monkeypatch.setattr(seqbench.analysis.analyze, "analyze", boom)
    s = serve(db).json("/api/summary")
    assert s["status"] == "ok" and not s["analysis"]["ok"]
    assert "ZeroDivisionError: oops" in s["analysis"]["error"]
    cell = next(c for c in s["cells"] if c["train_size"] == 32)
    assert cell["winner"]["model"] == "lstm" and cell["winner"]["significant"] is False
    assert all(m["ci"] is None for m in cell["models"]) and cell["comparisons"] == []
    lstm = next(m for m in cell["models"] if m["model"] == "lstm")
    assert lstm["mean"] == pytest.approx(0.81) and lstm["n_seeds"] == 3
    assert s["scaling"] and s["verdicts"] == []


def test_variant_keys_agree_with_the_analysis():
    from seqbench.analysis import cells

    runs = []
    for t in (5, 10):
        for seed in range(2):
            rec = record(task_params={"T": t, "alphabet": 8}, seed=seed)
            rec["config"]["task_params"] = {"T": t, "alphabet": 8}
            runs.append(rec)
    runs.append(record(task="classification", task_params={"data": "digits"}))
    from seqbench.records import RunRecord

    runs = [RunRecord.from_dict(r) for r in runs]
    ours = dashdata.variant_keys(runs)
    theirs = {rid: key for rid, (_, key) in cells.variant_keys(runs).items()}
    assert ours == theirs
    assert sorted(set(ours.values())) == ["T=10", "T=5", "default"]


# --------------------------------------------------------------------------------------------
# the commands


def command(*args) -> list[str]:
    """``bench dashboard|report ...`` in a fresh interpreter."""
    return [sys.executable, "-m", "seqbench.cli", *args]


ENV = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}


def test_cli_dashboard_prints_its_url_and_stops_on_ctrl_c(db):
    proc = subprocess.Popen(command("dashboard", "--db", str(db), "--port", "0"),
                            preexec_fn=default_sigint, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV, cwd=ROOT)
    try:
        line = proc.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert m, line
        conn = http.client.HTTPConnection("127.0.0.1", int(m.group(1)), timeout=30)
        conn.request("GET", "/api/summary")
        resp = conn.getresponse()
        assert resp.status == 200 and json.loads(resp.read())["status"] == "ok"
        conn.close()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "dashboard stopped" in err


@pytest.mark.parametrize("which", ["dashboard", "report"])
def test_cli_corrupt_database_exits_2_with_one_line(tmp_path, which):
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"garbage" * 500)
    proc = subprocess.run(command(which, "--db", str(bad)), capture_output=True, text=True,
                          env=ENV, cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "bad.sqlite" in lines[0]


def test_cli_report(db, tmp_path):
    out = tmp_path / "r.html"
    proc = subprocess.run(command("report", "--db", str(db), "--out", str(out)), capture_output=True,
                          text=True, env=ENV, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "wrote" in proc.stdout and "15 runs" in proc.stdout
    assert out.stat().st_size > 1_000_000
    missing = subprocess.run(command("report", "--db", str(tmp_path / "no.sqlite")),
                             capture_output=True, text=True, env=ENV, cwd=tmp_path, timeout=60)
    assert missing.returncode == 2 and "bench run" in missing.stderr


def test_cli_dashboard_bad_port_is_one_line(db):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = subprocess.run(command("dashboard", "--db", str(db), "--port", str(port)),
                              capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=60)
    assert proc.returncode == 2 and proc.stderr.startswith("error: cannot listen")


def test_commands_import_nothing_heavy():
    code = ("import sys, seqbench.cli.dashboard; "
            "print(sorted(m for m in ('numpy', 'plotly', 'seqbench.dashboard.server', "
            "'seqbench.dashboard.data', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV,
                         check=True).stdout
    assert out.strip() == "[]"
