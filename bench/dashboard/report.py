"""``bench report``: the dashboard as ONE self-contained HTML file, viewable offline (file://).

The page's own ``index.html`` with its stylesheet, plotly.js and ``app.js`` inlined, and every
payload it can ask for embedded under its API key in ``<script type="application/json">``
elements, which ``app.js`` reads instead of the API. ``dashboard.data.dumps`` escapes ``<``,
``>`` and ``&``, so no stored string can close the script element.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from .data import WEBGL_POINTS, Dashboard, dumps
from .server import CARTESIAN, STATIC_DIR, plotly_js

CSS_TAG = '<link rel="stylesheet" href="static/style.css">'
APP_TAG = '<script src="static/app.js"></script>'


def _inline_script(js: str) -> str:
    """Script text safe between <script> and </script> (no early end, no comment state)."""
    js = re.sub(r"</(script)", r"<\\/\1", js, flags=re.IGNORECASE)
    return js.replace("<!--", "<\\!--")


def build_report(db: str | Path, **options) -> tuple[str, dict]:
    """(the HTML text, the summary) for the database at ``db`` (opened read-only)."""
    dash = Dashboard(db, **options)
    bundle = dash.bundle()
    page = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    css = (STATIC_DIR / "style.css").read_text(encoding="utf-8").replace("</", "<\\/")
    app = (STATIC_DIR / "app.js").read_text(encoding="utf-8")
    # the cartesian bundle draws every chart but a WebGL one; the full, larger one only if needed
    webgl = any(key.startswith("cell/") and payload.get("points", 0) > WEBGL_POINTS
                for key, payload in bundle.items())
    plotly = (plotly_js() if webgl else (STATIC_DIR / CARTESIAN).read_bytes()).decode("utf-8")
    for tag in (CSS_TAG, APP_TAG):
        if page.count(tag) != 1:  # pragma: no cover - guards edits of index.html
            raise RuntimeError(f"index.html must contain {tag!r} exactly once")
    # one JSON element per payload (parsed only when shown), then the app, then plotly.js: the
    # overview paints before the chart library has been parsed
    blobs = "\n".join(
        f'<script type="application/json" data-key="{html.escape(key, quote=True)}">'
        f"{dumps(payload)}</script>"
        for key, payload in bundle.items()
    )
    scripts = (
        f"{blobs}\n<script>{_inline_script(app)}</script>\n"
        f"<script>{_inline_script(plotly)}</script>"
    )
    page = page.replace("<title>seqbench results</title>", "<title>seqbench report</title>")
    # str.replace with a function-free literal: the inserted text is never re-interpreted
    head, _, tail = page.partition(CSS_TAG)
    page = head + f"<style>{css}</style>" + tail
    head, _, tail = page.partition(APP_TAG)
    page = head + scripts + tail
    return page, bundle["summary"]


def write_report(db: str | Path, out: str | Path, **options) -> dict:
    html, summary = build_report(db, **options)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    try:
        tmp.write_text(html, encoding="utf-8")
        tmp.replace(out)
    except BaseException:  # a full disk, Ctrl-C: no half-written file left behind
        tmp.unlink(missing_ok=True)
        raise
    return summary
