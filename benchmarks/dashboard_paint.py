"""How fast the dashboard paints with 1,000 runs and 100,000 curve points.

Builds a synthetic results database (``Store.save`` with fake records and curves), starts the
dashboard server on a free port, opens the page in headless Chromium (Playwright) and prints

* the time to first paint of the overview and of the learning-curve chart (``performance.now()``
  from navigation start, recorded by the page one frame after each is drawn), over several loads,
  and the time from a click on another cell of the overview until its curves are painted;
* the size and server time of every API response the page asks for on load;
* the same for the static report (``bench report``) opened from a file:// URL.

    python benchmarks/dashboard_paint.py [--runs 1000] [--points 100] [--loads 3] [--keep DIR]

Needs plotly, playwright and a Chromium (``/usr/bin/chromium`` or ``--chromium PATH``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

MODELS = ("lstm", "transformer", "gru", "rnn", "seq2seq-attention")
VARIANTS = (("copy", {"T": 5}), ("copy", {"T": 10}), ("classification", {}), ("translation", {}))
SIZES = (32, 64, 128, 256, 512)
# test score at n: top - a * n^-b  (lstm better small, transformer better large)
SHAPE = {"lstm": (0.85, 1.5, 0.35), "transformer": (0.97, 4.0, 0.5), "gru": (0.84, 1.5, 0.33),
         "rnn": (0.70, 1.5, 0.30), "seq2seq-attention": (0.90, 2.5, 0.42)}


def synthetic_records(n_runs: int = 1000, points: int = 100, seed: int = 0):
    """Yield ``n_runs`` finished-run records shaped like the runner's, with ``points`` curve points."""
    rng = random.Random(seed)
    cells = [(t, p, n, m) for t, p in VARIANTS for n in SIZES for m in MODELS]
    seeds = max(1, math.ceil(n_runs / len(cells)))
    made = 0
    for s in range(seeds):
        for task, tparams, n, model in cells:
            if made >= n_runs:
                return
            made += 1
            top, a, b = SHAPE[model]
            final = max(0.02, min(0.99, top - a * n ** -b + rng.gauss(0, 0.02)))
            tau = (8 if model in ("lstm", "gru") else 15) * (1 + rng.random() * 0.3)
            steps = points * 10
            curve, t = [], 0.0
            for i in range(1, points + 1):
                step = i * 10
                t += 0.02 * (2.0 if model == "transformer" else 1.0) * (1 + 0.1 * rng.random())
                v = final * (1 - math.exp(-i / tau)) + rng.gauss(0, 0.01)
                curve.append({"step": step, "samples": step * 32, "seconds": t,
                              "train_loss": 2.5 * math.exp(-i / tau) + 0.1,
                              "val_primary": v, "val": {"accuracy": v, "loss": 2 - v}})
            status, error = "done", None
            r = rng.random()
            if r < 0.02:
                status, error = "failed", "RuntimeError: CUDA out of memory\nTraceback (most recent call last): ..."
                curve = curve[: points // 3]
            elif r < 0.03:
                status, error = "diverged", "Diverged: training loss is nan at step 120"
                curve = curve[: points // 5]
            best = max(p["val_primary"] for p in curve)
            cfg = {"model": model, "model_params": {"hidden_size": 128}, "task": task,
                   "task_params": dict(tparams), "train_size": n, "seed": s,
                   "training": {"max_steps": steps, "batch_size": 32, "lr": 1e-3}}
            run_id = f"{made:06x}{rng.getrandbits(40):010x}"
            yield {
                "run_id": run_id, "matrix_id": "synthetic", "model": model, "task": task,
                "kind": "classification", "train_size": n, "seed": s, "status": status,
                "error": error, "config": cfg, "trial": {}, "model_params": cfg["model_params"],
                "primary_metric": "accuracy", "higher_is_better": True,
                "best_val": best if status == "done" else None,
                "test": {"accuracy": final, "loss": 2 - final} if status == "done" else None,
                "param_count": 100_000 + 37 * len(model), "train_examples": n,
                "steps": curve[-1]["step"], "samples": curve[-1]["samples"],
                "train_seconds": curve[-1]["seconds"],
                "steps_to_95": next((p["step"] for p in curve if p["val_primary"] >= 0.95 * best), None),
                "samples_to_95": None, "seconds_to_95": None,
                "extras": {}, "environment": {"device": "cpu", "python": "3.11", "host": "bench"},
                "started_at": "2026-01-01T00:00:00+00:00", "finished_at": "2026-01-01T00:01:00+00:00",
                "curve": curve,
            }


def build_db(path: Path, n_runs: int = 1000, points: int = 100, running: int = 5) -> int:
    """Write the synthetic database; returns the number of curve points stored."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from seqbench.store import Store

    total = 0
    with Store(path) as store:
        store.conn.execute("PRAGMA synchronous = OFF")  # a throwaway file: speed over safety
        for rec in synthetic_records(n_runs, points):
            total += len(rec["curve"])
            store.save(rec)
        for i in range(running):  # runs a matrix has handed out but not finished
            spec = SimpleNamespace(
                run_id=f"running{i:04d}", matrix_id="synthetic", model=MODELS[i % len(MODELS)],
                task="copy", kind="classification", train_size=1024, seed=i, trial={},
                config=lambda: {"task_params": {"T": 5}},
            )
            store.mark_running(spec, "2026-01-01T00:02:00+00:00")
    return total


def fetch(url: str) -> tuple[int, float]:
    t = time.perf_counter()
    with urllib.request.urlopen(url) as r:
        body = r.read()
    return len(body), time.perf_counter() - t


def paint(page, url: str, timeout_ms: int = 60_000) -> dict:
    page.goto(url)
    page.wait_for_function(
        "window.__seqbench && window.__seqbench.marks.overview !== undefined"
        " && window.__seqbench.marks.curves !== undefined", timeout=timeout_ms)
    marks = page.evaluate("window.__seqbench.marks")
    points = page.evaluate(
        "document.getElementById('curves-chart').data.reduce((n, t) => n + (t.x ? t.x.length : 0), 0)")
    return {"overview_ms": marks["overview"], "curves_ms": marks["curves"], "chart_points": points}


CLICK = """async (id) => {
  const td = document.querySelector(`#overview td.cell[data-cell="${id}"]`);
  const div = document.getElementById("curves-chart");
  const t0 = performance.now();
  td.click();
  await new Promise((done) => {
    const check = () => (div.getAttribute("data-cell") === id ? done() : requestAnimationFrame(check));
    check();
  });
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));  // painted
  return performance.now() - t0;
}"""


def click(page, cell_id: str) -> float:
    """Milliseconds from a click on an overview cell until its learning curves are on screen."""
    return page.evaluate(CLICK, cell_id)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--points", type=int, default=100)
    ap.add_argument("--loads", type=int, default=3, help="page loads to time (fresh page each)")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--keep", type=Path, help="write the database and report here and keep them")
    args = ap.parse_args(argv)

    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from seqbench.dashboard.server import make_server
    from seqbench.dashboard.report import write_report

    tmp = tempfile.TemporaryDirectory(prefix="seqbench-paint-")
    where = args.keep or Path(tmp.name)
    where.mkdir(parents=True, exist_ok=True)
    db = where / "paint.sqlite"
    if db.exists():
        db.unlink()
    t = time.perf_counter()
    points = build_db(db, args.runs, args.points)
    print(f"database: {args.runs} runs, {points:,} curve points, "
          f"{db.stat().st_size / 1e6:.1f} MB, built in {time.perf_counter() - t:.1f} s")

    server = make_server(db)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    t = time.perf_counter()
    server.dashboard.snapshot()  # what the server does right after it starts
    print(f"server: snapshot (read + analysis) {time.perf_counter() - t:.2f} s, at {server.url}")

    summary = json.loads(urllib.request.urlopen(server.url + "api/summary").read())
    first_cell = summary["variants"][0]["cells"][0]["id"]
    other_cells = [c["id"] for v in summary["variants"] for c in v["cells"]][-3:]
    first_run = summary["rows"][0]["run_id"]
    print("API responses (bytes, seconds):")
    for key in ("version", "summary", "runs", f"cell/{first_cell}", f"curve/{first_run}"):
        size, secs = fetch(server.url + "api/" + key)
        print(f"  /api/{key:<22} {size:>10,} B  {secs * 1000:7.1f} ms")
    size, secs = fetch(server.url + "static/plotly.js")
    print(f"  /static/plotly.js          {size:>10,} B  {secs * 1000:7.1f} ms")

    report = where / "report.html"
    t = time.perf_counter()
    write_report(db, report)
    print(f"report: {report.stat().st_size / 1e6:.1f} MB written in {time.perf_counter() - t:.1f} s")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        # baseline: what loading plotly.js alone costs this machine (parse + execute)
        blank = where / "plotly-only.html"
        (where / "plotly.js").write_bytes(urllib.request.urlopen(server.url + "static/plotly.js").read())
        blank.write_text("<script>t0=performance.now()</script><script src='plotly.js'></script>"
                         "<script>t1=performance.now()</script>")
        alone = []
        for _ in range(args.loads):
            context = browser.new_context()
            page = context.new_page()
            page.goto(blank.as_uri())
            alone.append(page.evaluate("t1 - t0"))
            context.close()
        print(f"baseline: plotly.js alone takes {statistics.median(alone):.0f} ms to load and run "
              f"(median of {args.loads}; load average {os.getloadavg()[0]:.1f} on "
              f"{os.cpu_count()} CPUs)")
        for label, url in (("dashboard", server.url), ("report", report.as_uri())):
            results = []
            for i in range(args.loads):
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                page = context.new_page()
                results.append(paint(page, url))
                results[-1]["clicks_ms"] = [click(page, c) for c in other_cells]
                context.close()  # a fresh context each time: nothing cached
            for i, r in enumerate(results):
                print(f"{label} load {i + 1}: overview {r['overview_ms']:.0f} ms, learning curves "
                      f"{r['curves_ms']:.0f} ms ({r['chart_points']} points drawn); after a click "
                      f"on another cell: {', '.join(f'{t:.0f}' for t in r['clicks_ms'])} ms")
            clicks = [t for r in results for t in r["clicks_ms"]]
            print(f"{label} median: overview "
                  f"{statistics.median(r['overview_ms'] for r in results):.0f} ms, learning curves "
                  f"{statistics.median(r['curves_ms'] for r in results):.0f} ms from navigation, "
                  f"{statistics.median(clicks):.0f} ms after a click (max {max(clicks):.0f})")
        browser.close()
    server.shutdown()
    server.server_close()
    if args.keep:
        print(f"kept {db} and {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
