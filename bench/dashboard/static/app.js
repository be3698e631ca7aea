/* seqbench results page: one code path for the live dashboard and the static report.
 *
 * Data comes from get(key): the JSON API (/api/<key>) when served by `bench dashboard`, or, in a
 * report written by `bench report`, the page's own <script type="application/json" data-key=KEY>
 * element for that key (one per payload). Every string from the data reaches the page through textContent or
 * attributes (never innerHTML), and through pt() before plotly sees it.
 */
"use strict";
(function () {
  // In a report, each payload is its own JSON script element (type application/json) with a
  // data-key attribute naming its API path; it is parsed only when the page first asks for it.
  const blobs = new Map();
  for (const node of document.querySelectorAll('script[type="application/json"][data-key]')) {
    blobs.set(node.getAttribute("data-key"), node);
  }
  const STATIC = blobs.size > 0;
  const parsed = new Map();
  const POLL_MS = 2000;
  const PAGE_ROWS = 200;  // table rows drawn at first (filters and sorting see every run)
  const AXIS_TITLES = {
    steps: "optimizer steps", samples: "training samples seen", seconds: "training seconds",
  };
  const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
    "#17becf", "#bcbd22", "#7f7f7f"];
  const RUN_COLUMNS = [
    { key: "run_id", label: "run" },
    { key: "model", label: "model" },
    { key: "task", label: "task" },
    { key: "variant_key", label: "variant", optional: true },
    { key: "train_size", label: "size", num: true, fmt: sizeLabel },
    { key: "seed", label: "seed", num: true },
    { key: "stage", label: "stage" },
    { key: "tuned", label: "tuned hyperparameters", fmt: (v) => v || "–" },
    { key: "status", label: "status", cls: (r) => "status " + r.status },
    { key: "primary_metric", label: "metric" },
    { key: "primary_value", label: "test", num: true },
    { key: "best_val", label: "best val", num: true },
    { key: "param_count", label: "params", num: true, fmt: (v) => fmtInt(v) },
    { key: "steps", label: "steps", num: true },
    { key: "steps_to_95", label: "steps to 95%", num: true },
    { key: "train_seconds", label: "train s", num: true, fmt: (v) => fmt(v, 1) },
    { key: "finished_at", label: "finished", fmt: (v) => (v ? String(v).replace("T", " ").slice(0, 19) : "–") },
    { key: "error", label: "error", fmt: (v) => (v ? String(v).slice(0, 60) : "") },
  ];
  const FILTERS = [
    { key: "task", label: "Task" }, { key: "model", label: "Model" },
    { key: "train_size", label: "Size" }, { key: "seed", label: "Seed" },
    { key: "status", label: "Status" },
  ];

  const state = {
    summary: null, version: null, runsFull: null, cells: new Map(),
    cellId: null, axis: "steps", scalingVariant: null, convVariant: null, convUnit: "steps",
    filters: { task: "", model: "", train_size: "", seed: "", status: "" },
    sort: { key: "task", dir: 1 }, detailId: null, colors: new Map(), pageRows: PAGE_ROWS,
  };
  window.__seqbench = { state, marks: {} };

  // ------------------------------------------------------------------ data source

  async function get(key) {
    if (STATIC) {
      if (!parsed.has(key)) {
        const node = blobs.get(key);
        if (!node) throw new Error("not in this report: " + key);
        parsed.set(key, JSON.parse(node.textContent));
      }
      return parsed.get(key);
    }
    const url = "api/" + key.split("/").map(encodeURIComponent).join("/");
    const res = await fetch(url, { cache: "no-store" });
    if (!res.ok) {
      let msg = res.status + " " + res.statusText;
      try { const j = await res.json(); if (j && j.error) msg = j.error; } catch (e) { /* keep */ }
      throw new Error(msg);
    }
    return res.json();
  }

  function loadScript(src, what) {
    return new Promise((resolve, reject) => {
      const s = document.createElement("script");
      s.src = src;
      s.onload = () => resolve(window.Plotly);
      s.onerror = () => reject(new Error("could not load " + what));
      document.head.appendChild(s);
    });
  }

  // The server's plotly.js is the cartesian partial bundle (quick to start); the full bundle
  // (WebGL traces) is fetched only for a cell too big for SVG. The report inlines the full one.
  let plotlyPromise = null;
  let glPromise = null;
  function plotly() {
    if (plotlyPromise) return plotlyPromise;
    if (window.Plotly) return (plotlyPromise = Promise.resolve(window.Plotly));
    if (!plotlyPromise && STATIC) {
      // the report inlines plotly.js after this script, so that the overview paints first
      plotlyPromise = new Promise((resolve, reject) => {
        const done = () => (window.Plotly ? resolve(window.Plotly) : reject(new Error("plotly.js is missing from this report")));
        if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", done, { once: true });
        else done();
      });
    }
    if (!plotlyPromise) plotlyPromise = loadScript("static/plotly.js", "plotly.js");
    return plotlyPromise;
  }
  function plotlyGL() {
    if (STATIC) return plotly();
    if (!glPromise) glPromise = plotly().then(() => loadScript("static/plotly-gl.js", "plotly.js (WebGL)"));
    return glPromise;
  }

  /** Draw with P; a div last drawn by the other bundle is cleared by that one first. */
  async function react(P, div, traces, layout, config) {
    if (div._plotlyOwner && div._plotlyOwner !== P) div._plotlyOwner.purge(div);
    div._plotlyOwner = P;
    return P.react(div, traces, layout, config);
  }

  async function runsFull() {
    if (!state.runsFull) state.runsFull = await get("runs");
    return state.runsFull;
  }

  function cellData(id) {  // the promise is cached, so a prefetch and a render share one request
    if (!state.cells.has(id)) {
      const p = get("cell/" + id);
      p.catch(() => state.cells.delete(id));
      state.cells.set(id, p);
    }
    return state.cells.get(id);
  }

  // ------------------------------------------------------------------ helpers

  const $ = (id) => document.getElementById(id);

  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    if (props) {
      for (const [k, v] of Object.entries(props)) {
        if (v === null || v === undefined || v === false) continue;
        if (k === "class") e.className = v;
        else if (k === "text") e.textContent = String(v);
        else if (k === "style") Object.assign(e.style, v);
        else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
        else e.setAttribute(k, v === true ? "" : String(v));
      }
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }

  /** Text for plotly (which reads a little HTML in labels): entities only, never markup. */
  function pt(s) {
    return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  function fmt(v, digits) {
    if (v === null || v === undefined || (typeof v === "number" && !isFinite(v))) return "–";
    if (typeof v !== "number") return String(v);
    if (Number.isInteger(v)) return Math.abs(v) >= 10000 ? v.toLocaleString("en-US") : String(v);
    const d = digits === undefined ? 3 : digits;
    if (Math.abs(v) >= 1000) return v.toLocaleString("en-US", { maximumFractionDigits: 1 });
    if (v !== 0 && Math.abs(v) < Math.pow(10, -d)) return v.toPrecision(2);
    return v.toFixed(d);
  }
  function fmtInt(v) { return v === null || v === undefined ? "–" : Number(v).toLocaleString("en-US"); }
  function sizeLabel(v) { return v === null || v === undefined ? "full" : String(v); }
  function signed(v) { return v === null || v === undefined ? "–" : (v >= 0 ? "+" : "") + fmt(v); }

  function color(model) {
    if (!state.colors.has(model)) state.colors.set(model, PALETTE[state.colors.size % PALETTE.length]);
    return state.colors.get(model);
  }
  function rgba(hex, a) {
    const n = parseInt(hex.slice(1), 16);
    return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${a})`;
  }

  function showError(err) {
    const box = $("error");
    if (!err) { box.hidden = true; return; }
    box.textContent = String(err && err.message ? err.message : err);
    box.hidden = false;
  }

  /** Record, once, when something first reached the screen (read by the paint benchmark). */
  function mark(name) {
    return new Promise((resolve) => requestAnimationFrame(() => setTimeout(() => {
      if (window.__seqbench.marks[name] === undefined) {
        const t = performance.now();
        window.__seqbench.marks[name] = t;
        document.documentElement.setAttribute("data-" + name + "-paint", t.toFixed(0));
      }
      resolve();
    }, 0)));
  }

  const PLOT_CONFIG = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["select2d", "lasso2d"] };
  function baseLayout(extra) {
    return Object.assign({
      margin: { l: 60, r: 20, t: 30, b: 50 },
      legend: { orientation: "h", y: 1.12, x: 0 },
      hovermode: "closest",
      paper_bgcolor: "#fff", plot_bgcolor: "#fff",
      font: { family: "system-ui, sans-serif", size: 12 },
    }, extra);
  }

  /** A log axis ticked at the training sizes themselves (not plotly's 2, 5, 10 ...). */
  function sizeAxis(ns, title) {
    const vals = [...new Set(ns.filter((n) => n > 0))].sort((a, b) => a - b);
    const ax = { type: "log", title: { text: title } };
    if (vals.length && vals.length <= 12) {
      ax.tickvals = vals;
      ax.ticktext = vals.map((v) => fmt(Math.round(v)));
    }
    return ax;
  }

  function setActive(group, value) {
    for (const b of $(group).querySelectorAll("button")) b.classList.toggle("active", b.dataset.value === value);
  }

  // ------------------------------------------------------------------ load and render

  async function load() {
    const s = await get("summary");
    state.summary = s;
    state.version = s.version;
    state.runsFull = null;
    state.cells.clear();
    for (const m of (s.filters && s.filters.model) || []) color(m);
    render();
  }

  function render() {
    const s = state.summary;
    $("source").textContent = (STATIC ? "report of " : "") + (s.db || "");
    $("footer").textContent = STATIC
      ? "Static report generated " + (s.generated_at || "") + " by bench report; data embedded in this file."
      : "Live from " + (s.db || "") + "; refreshes when the database changes.";
    const ok = s.status === "ok";
    for (const id of ["overview-section", "curves-section", "scaling-section", "convergence-section", "runs-section"]) {
      $(id).hidden = !ok;
    }
    $("toc").hidden = !ok;
    if (!ok) {
      $("detail-section").hidden = true;
      renderForest().catch(showError);  // hides the pooled section with the others
      renderState(s);
      mark("overview");
      return;
    }
    $("state").hidden = true;
    renderOverview(s);
    renderSelectors(s);
    renderFilters(s);
    renderRuns();
    // charts (and, the first time, plotly.js) once the overview is on screen
    if (state.cellId) cellData(state.cellId).catch(() => {});  // prefetch the first chart's data
    const painted = mark("overview");
    if (window.Plotly || STATIC) renderCharts().catch(showError);
    else painted.then(renderCharts).catch(showError);
    if (state.detailId) openDetail(state.detailId, false).catch(showError);
  }

  function renderState(s) {
    const box = clear($("state"));
    box.hidden = false;
    if (s.status === "error") {
      box.append(el("h2", { text: "Cannot read the results database" }),
        el("p", { class: "error-line", text: s.message || "unknown error" }));
      return;
    }
    box.classList.add("start");
    box.append(
      el("h2", { text: "No runs yet" }),
      el("p", { text: s.message || "" }),
      el("p", { text: "Start a benchmark matrix, for example:" }),
      el("pre", null, el("code", { text: s.how_to_start || "bench run --preset quick" })),
      el("p", { class: "muted", text: STATIC
        ? "Then write the report again with bench report."
        : "This page updates by itself as runs finish." }),
    );
  }

  // -- overview

  function renderOverview(s) {
    const counts = clear($("counts"));
    for (const st of ["done", "failed", "diverged", "running"]) {
      counts.append(el("button", {
        type: "button", class: "count " + st, "data-status": st,
        title: "show " + st + " runs in the table",
        onclick: () => { state.filters.status = st; renderFilters(state.summary); renderRuns(); $("runs-section").scrollIntoView(); },
      }, el("b", { text: fmtInt(s.counts[st] || 0) }), " " + st));
    }
    const note = $("analysis-note");
    const a = s.analysis || {};
    if (a.error) { note.textContent = a.error; note.hidden = false; } else { note.hidden = true; }

    $("headline").textContent = s.headline || "";
    $("headline").hidden = !s.headline;
    const table = clear($("overview"));
    const cellsById = new Map(s.cells.map((c) => [c.id, c]));
    const body = el("tbody");
    if (!s.variants.length) {
      body.append(el("tr", null, el("td", { class: "muted", text:
        "No finished runs yet" + (s.counts.running ? " (" + s.counts.running + " running)" : "") +
        ": cells appear as runs finish." })));
    }
    for (const v of s.variants) {
      const tr = el("tr", null, el("th", null, v.label, el("div", { class: "ncell", text: v.primary_metric || "" })));
      // each task's own training sizes only, wrapping rather than scrolling sideways
      for (const ref of v.cells) tr.append(overviewCell(cellsById.get(ref.id)));
      body.append(tr);
    }
    table.append(body);

    const list = clear($("verdicts"));
    if (!s.verdicts.length) list.append(el("li", { class: "muted", text: a.ok ? "No verdicts (no pair of models to compare)." : "No verdicts without the analysis." }));
    for (const v of s.verdicts) {
      // one sentence per task; the full verdict folded beneath it
      list.append(el("li", { "data-task": v.task }, el("details", null,
        el("summary", null, el("strong", { text: v.label || v.task }), " ",
          el("span", { class: "verdict-summary", text: v.summary || "" })),
        el("span", { class: "claims" },
          el("span", { class: "claim " + v.accuracy_claim.replace(/ /g, "-"), text: "accuracy: " + v.accuracy_claim }),
          el("span", { class: "claim " + v.speed_claim.replace(/ /g, "-"), text: "speed: " + v.speed_claim })),
        el("p", { class: "verdict-text", text: v.text || "" }))));
    }
  }

  function overviewCell(c) {
    const w = c.winner || {};
    const models = c.models || [];
    const td = el("td", {
      class: "cell" + (c.id === state.cellId ? " selected" : ""), tabindex: "0", role: "button",
      "data-cell": c.id, title: "learning curves of " + c.label,
      onclick: () => selectCell(c.id, true),
      onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); selectCell(c.id, true); } },
    });
    td.append(el("div", { class: "nhead", text: "n = " + fmtInt(c.n) }));
    if (!w.model) {
      td.append(el("div", { class: "muted", text: "no finished runs" }));
      return td;
    }
    td.append(el("div", { class: "winner" },
      el("span", { class: "swatch", style: { background: color(w.model) } }),
      el("span", { class: "model-name", text: w.model })));
    if (w.margin !== null && w.margin !== undefined) {
      td.append(el("div", { class: "margin", text: "by " + fmt(w.margin) + " " + (c.primary_metric || "") }));
    }
    const ranked = models.filter((m) => m.mean !== null && m.mean !== undefined)
      .sort((a, b) => (c.higher_is_better === false ? a.mean - b.mean : b.mean - a.mean));
    const runner = ranked.find((m) => m.model !== w.model);
    const cmp = runner && (c.comparisons || []).find((x) =>
      (x.a === w.model && x.b === runner.model) || (x.a === runner.model && x.b === w.model));
    // The outcome is bench analyze's own (Holm-adjusted, with equivalence and the floor guard).
    const p = cmp && cmp.p_holm !== null && cmp.p_holm !== undefined ? cmp.p_holm : cmp && cmp.p_value;
    const pText = p !== null && p !== undefined ? " (" + (cmp.p_holm !== null && cmp.p_holm !== undefined ? "Holm p = " : "p = ") + fmt(p) + ")" : "";
    let sig;
    if (cmp && cmp.budget_limited && cmp.outcome !== "not_measurable") {
      // the runs ran out of steps: who is ahead after N steps, never "significant"
      sig = el("div", { class: "sig no", text: cmp.result + pText });
    } else if (w.significant) {
      sig = el("div", { class: "sig yes", text: "significant" + pText });
    } else if (!runner) {
      sig = el("div", { class: "sig no", text: "single model" });
    } else if (cmp && cmp.outcome && cmp.outcome !== "inconclusive") {
      sig = el("div", { class: "sig no", text: cmp.result + (cmp.outcome === "not_measurable" ? "" : pText) });
    } else {
      sig = el("div", { class: "sig no", text: "not significant" + pText,
        title: cmp && cmp.reason ? cmp.reason : "" });  // the full reason on hover, the cell stays short
    }
    td.append(sig);
    td.append(el("div", { class: "ncell", text: "seeds " + models.map((m) => m.n_seeds).join(" / ") }));
    return td;
  }

  // -- selectors

  function fillSelect(select, options, value) {
    clear(select);
    for (const [v, label] of options) select.append(el("option", { value: v, text: label }));
    if (options.some(([v]) => v === value)) select.value = value;
    return select.value;
  }

  function renderSelectors(s) {
    const cells = [];
    for (const v of s.variants) for (const c of v.cells) cells.push([c.id, v.label + " · n = " + sizeLabel(c.train_size)]);
    if (!cells.some(([id]) => id === state.cellId)) state.cellId = cells.length ? cells[0][0] : null;
    fillSelect($("cell-select"), cells, state.cellId);
    const variants = s.variants.map((v) => [v.id, v.label]);
    if (!variants.some(([id]) => id === state.scalingVariant)) state.scalingVariant = variants.length ? variants[0][0] : null;
    if (!variants.some(([id]) => id === state.convVariant)) state.convVariant = variants.length ? variants[0][0] : null;
    fillSelect($("scaling-select"), variants, state.scalingVariant);
    fillSelect($("conv-select"), variants, state.convVariant);
    setActive("axis-switch", state.axis);
    setActive("conv-switch", state.convUnit);
  }

  function selectCell(id, scroll) {
    state.cellId = id;
    $("cell-select").value = id;
    for (const td of document.querySelectorAll("#overview td.cell")) td.classList.toggle("selected", td.dataset.cell === id);
    renderCurves().catch(showError);
    if (scroll) $("curves-section").scrollIntoView({ behavior: "smooth", block: "start" });
  }

  async function renderCharts() {
    // the selected cell's curves are fetched while plotly.js is still loading
    await Promise.all([renderCurves(), renderScaling(), renderConvergence(), renderGradients(), renderForest()]);
  }

  // -- learning curves

  async function renderCurves() {
    const id = state.cellId;
    const div = $("curves-chart");
    if (!id) return;
    const [c, P0] = await Promise.all([cellData(id), plotly()]);
    if (id !== state.cellId) return;
    const axis = state.axis;
    const type = c.points > 20000 ? "scattergl" : "scatter";  // WEBGL_POINTS in data.py: SVG starts sooner
    const P = type === "scattergl" ? await plotlyGL() : P0;
    if (id !== state.cellId) return;
    const traces = [];
    const shapes = [];
    const annotations = [];
    const notes = [];
    for (const m of c.models) {
      const col = color(m.model);
      const name = pt(m.model);
      for (const sd of m.seeds) {
        traces.push({
          type, mode: "lines", x: sd[axis], y: sd.val, name: name + " seed " + sd.seed,
          legendgroup: m.model, showlegend: false, line: { color: rgba(col, 0.3), width: 1 },
          hovertemplate: name + " seed " + pt(sd.seed) + "<br>%{x}: %{y:.4g}<extra></extra>",
        });
      }
      const b = m.bands && m.bands[axis];
      if (b) {
        if (b.lo && b.hi) {
          traces.push({ type: "scatter", mode: "lines", x: b.x, y: b.hi, line: { width: 0 },
            legendgroup: m.model, showlegend: false, hoverinfo: "skip" });
          traces.push({ type: "scatter", mode: "lines", x: b.x, y: b.lo, line: { width: 0 },
            fill: "tonexty", fillcolor: rgba(col, 0.18), legendgroup: m.model, showlegend: false,
            hoverinfo: "skip" });
        }
        traces.push({
          type: "scatter", mode: "lines", x: b.x, y: b.mean, legendgroup: m.model,
          name: name + " (mean of " + b.k + ")", line: { color: col, width: 2.5 },
          hovertemplate: name + " mean<br>%{x}: %{y:.4g}<extra></extra>",
        });
      }
      const t = m.ttt || {};
      const med = t["median_" + axis];
      if (med !== null && med !== undefined) {
        shapes.push({ type: "line", xref: "x", yref: "paper", x0: med, x1: med, y0: 0, y1: 1,
          line: { color: col, width: 1.5, dash: "dot" } });
      }
      if (c.target !== null && c.target !== undefined && t.of) {
        const ci = t[axis + "_ci"];
        const inf = (v) => (v === null || v === undefined ? "∞" : fmt(v));  // null: never reached
        const ciText = ci ? " [" + inf(ci[0]) + ", " + inf(ci[1]) + "]" : "";
        notes.push(m.model + ": " + (med === null || med === undefined ? "∞ (median not reached)" : fmt(med) + " " + axis) +
          ciText + ", " + t.reached + "/" + t.of + " runs reached the target");
      }
    }
    if (c.target !== null && c.target !== undefined) {
      shapes.push({ type: "line", xref: "paper", x0: 0, x1: 1, yref: "y", y0: c.target, y1: c.target,
        line: { color: "#444", width: 1.2, dash: "dash" } });
      annotations.push({ xref: "paper", x: 1, xanchor: "right", yref: "y", y: c.target, yanchor: "bottom",
        text: "target " + fmt(c.target) + (c.target_rule ? " (" + (c.target_pair ? c.target_pair.join(" vs ") + ": " : "") + "median of the two models' median best val)" : ""),
        showarrow: false, font: { size: 11, color: "#444" } });
    }
    const layout = baseLayout({
      uirevision: id + axis, shapes, annotations,
      xaxis: { title: { text: AXIS_TITLES[axis] }, zeroline: false },
      yaxis: { title: { text: "validation " + pt(c.primary_metric || "metric") }, zeroline: false },
    });
    await react(P, $("curves-chart"), traces, layout, PLOT_CONFIG);
    div.setAttribute("data-cell", id);
    div.setAttribute("data-axis", axis);
    $("curves-note").textContent =
      "Mean ± " + Math.round((c.confidence || 0.95) * 100) + "% CI (t-interval over seeds) per model; faint lines: single seeds" +
      (type === "scattergl" ? " (WebGL)" : "") + ". " +
      (c.target !== null && c.target !== undefined
        ? "Dashed line: the cell's target; dotted verticals: each model's median time to target. Time to target — " + notes.join("; ") + "."
        : "No time-to-target (needs the analysis).") +
      (c.validation ? " Validation: " + fmt(c.validation.size) + " examples" +
        (c.validation.se_max ? " (binomial SE ≤ " + fmt(c.validation.se_max) + ")" : "") + "." : "");
    mark("curves");
  }

  // -- data scaling

  function invertError(err, errorName, metric) {
    if (!errorName || errorName === metric) return err;
    if (/\/100$/.test(errorName)) return 100 * (1 - err);
    if (/^1 - /.test(errorName)) return 1 - err;
    return null;
  }

  async function renderScaling() {
    const s = state.summary;
    const sc = s.scaling.find((x) => x.variant_id === state.scalingVariant);
    const P = await plotly();
    const div = $("scaling-chart");
    const list = clear($("crossovers"));
    if (!sc) {
      P.purge(div);
      list.append(el("li", { text: "No data-scaling data for this task." }));
      return;
    }
    const traces = [];
    const shapes = [];
    const annotations = [];
    let xmin = Infinity, xmax = -Infinity;
    for (const [model, m] of Object.entries(sc.models || {})) {
      const col = color(model);
      const name = pt(model);
      const idx = m.n.map((n, i) => i).filter((i) => m.n[i] !== null && m.n[i] > 0 && m.mean[i] !== null);
      const xs = idx.map((i) => m.n[i]);
      for (const x of xs) { xmin = Math.min(xmin, x); xmax = Math.max(xmax, x); }
      const band = idx.filter((i) => m.ci_lo[i] !== null && m.ci_hi[i] !== null);
      if (band.length) {
        traces.push({ type: "scatter", mode: "lines", x: band.map((i) => m.n[i]), y: band.map((i) => m.ci_hi[i]),
          line: { width: 0 }, legendgroup: model, showlegend: false, hoverinfo: "skip" });
        traces.push({ type: "scatter", mode: "lines", x: band.map((i) => m.n[i]), y: band.map((i) => m.ci_lo[i]),
          line: { width: 0 }, fill: "tonexty", fillcolor: rgba(col, 0.18), legendgroup: model,
          showlegend: false, hoverinfo: "skip" });
      }
      traces.push({
        type: "scatter", mode: "lines+markers", x: xs, y: idx.map((i) => m.mean[i]), name, legendgroup: model,
        line: { color: col, width: 2.5 }, marker: { size: 7 },
        customdata: idx.map((i) => [m.ci_lo[i], m.ci_hi[i], m.n_seeds ? m.n_seeds[i] : null]),
        hovertemplate: name + "<br>n = %{x}<br>mean %{y:.4g} [%{customdata[0]:.4g}, %{customdata[1]:.4g}]<extra></extra>",
      });
      const f = m.fit;
      if (f && f.method === "power-law" && xs.length) {
        const lo = Math.log(Math.min(...xs)), hi = Math.log(Math.max(...xs));
        const gx = [], gy = [];
        for (let i = 0; i <= 60; i++) {
          const n = Math.exp(lo + (hi - lo) * i / 60);
          const y = invertError(f.a * Math.pow(n, -f.b) + f.c, f.error || sc.error, sc.primary_metric);
          if (y !== null) { gx.push(n); gy.push(y); }
        }
        if (gx.length) {
          traces.push({ type: "scatter", mode: "lines", x: gx, y: gy, name: name + " fit", legendgroup: model,
            showlegend: false, line: { color: col, width: 1, dash: "dash" }, hoverinfo: "skip" });
        }
      }
    }
    for (const cr of sc.crossovers || []) {
      list.append(el("li", { text: cr.a + " vs " + cr.b + ": " + (cr.text || "") }));
      if (cr.n === null || cr.n === undefined || !(cr.n > 0)) continue;
      // shapes take data values on a log axis, annotations take log10 of them
      if (cr.ci && cr.ci[0] > 0 && cr.ci[1] > 0) {
        shapes.push({ type: "rect", xref: "x", yref: "paper", x0: cr.ci[0], x1: cr.ci[1],
          y0: 0, y1: 1, fillcolor: "rgba(90,90,90,0.14)", line: { width: 0 }, layer: "below" });
      }
      shapes.push({ type: "line", xref: "x", yref: "paper", x0: cr.n, x1: cr.n, y0: 0, y1: 1,
        line: { color: "#333", width: 1.5, dash: "dash" } });
      annotations.push({ xref: "x", x: Math.log10(cr.n), yref: "paper", y: 1, yanchor: "bottom", showarrow: false,
        text: "crossover n ≈ " + fmt(Math.round(cr.n)) + (cr.ci ? " [" + fmt(Math.round(cr.ci[0])) + ", " + fmt(Math.round(cr.ci[1])) + "]" : ""),
        font: { size: 11 } });
    }
    if (!(sc.crossovers || []).length) list.append(el("li", { text: "No model pair to place a crossover for." }));
    const layout = baseLayout({
      uirevision: "scaling" + state.scalingVariant, shapes, annotations,
      xaxis: sizeAxis(Object.values(sc.models || {}).flatMap((m) => m.n), "training examples (n, log scale)"),
      yaxis: { title: { text: "test " + pt(sc.primary_metric || "metric") + " (mean ± CI)" } },
    });
    await P.react(div, traces, layout, PLOT_CONFIG);
    div.setAttribute("data-variant", state.scalingVariant);
  }

  // -- convergence

  async function renderConvergence() {
    const s = state.summary;
    const unit = state.convUnit;
    const P = await plotly();
    const div = $("convergence-chart");
    const cells = s.cells.filter((c) => c.variant_id === state.convVariant && c.n !== null && c.n > 0)
      .sort((a, b) => a.n - b.n);
    const models = [...new Set(cells.flatMap((c) => c.models.map((m) => m.model)))].sort();
    const finite = [];
    let top = 0;
    const rows = {};
    for (const model of models) {
      rows[model] = [];
      for (const c of cells) {
        const m = c.models.find((x) => x.model === model);
        if (!m || !m.ttt || !m.ttt.of || c.target === null || c.target === undefined) continue;
        const t = m.ttt;
        const med = t["median_" + unit];
        const ci = t[unit + "_ci"];
        rows[model].push({ n: c.n, med, ci, reached: t.reached, of: t.of });
        for (const v of [med, ci && ci[0], ci && ci[1]]) if (v !== null && v !== undefined && isFinite(v)) top = Math.max(top, v);
      }
    }
    top = top > 0 ? top * 1.15 : 1;
    const traces = [];
    const k = models.length;
    models.forEach((model, j) => {
      const col = color(model);
      const name = pt(model);
      const jitter = 1 + 0.04 * (j - (k - 1) / 2);
      const ok = rows[model].filter((r) => r.med !== null && r.med !== undefined);
      const cens = rows[model].filter((r) => r.med === null || r.med === undefined);
      traces.push({
        type: "scatter", mode: "lines+markers", name, legendgroup: model,
        x: ok.map((r) => r.n * jitter), y: ok.map((r) => r.med),
        line: { color: col, width: 2 }, marker: { size: 8, color: col },
        error_y: { type: "data", symmetric: false, color: col, thickness: 1.2, width: 4,
          array: ok.map((r) => (r.ci && r.ci[1] !== null ? r.ci[1] : top) - r.med),
          arrayminus: ok.map((r) => (r.ci && r.ci[0] !== null ? r.med - r.ci[0] : 0)) },
        customdata: ok.map((r) => [r.n, r.reached, r.of]),
        hovertemplate: name + "<br>n = %{customdata[0]}<br>median %{y:.4g} " + unit +
          "<br>%{customdata[1]}/%{customdata[2]} runs reached the target<extra></extra>",
      });
      if (cens.length) {
        traces.push({
          type: "scatter", mode: "markers", name: ok.length ? name + " not reached" : name, legendgroup: model,
          showlegend: !ok.length,
          x: cens.map((r) => r.n * jitter), y: cens.map(() => top),
          marker: { symbol: "triangle-up-open", size: 12, color: col, line: { width: 2 } },
          customdata: cens.map((r) => [r.n, r.reached, r.of]),
          hovertemplate: name + "<br>n = %{customdata[0]}<br>median time: ∞ (censored)<br>%{customdata[1]}/%{customdata[2]} runs reached the target<extra></extra>",
        });
      }
    });
    const layout = baseLayout({
      uirevision: "conv" + state.convVariant + unit,
      xaxis: sizeAxis(cells.map((c) => c.n), "training examples (n, log scale)"),
      yaxis: { title: { text: "median " + AXIS_TITLES[unit] + " to target" }, range: [0, top * 1.08], zeroline: false },
      shapes: [{ type: "line", xref: "paper", x0: 0, x1: 1, yref: "y", y0: top, y1: top,
        line: { color: "#999", width: 1, dash: "dot" } }],
      annotations: [{ xref: "paper", x: 0, xanchor: "left", yref: "y", y: top, yanchor: "top", showarrow: false,
        text: "△ not reached: median time ∞", font: { size: 10, color: "#777" } }],
    });
    await P.react(div, traces, layout, PLOT_CONFIG);
    div.setAttribute("data-variant", state.convVariant);
    const anyTarget = cells.some((c) => c.target !== null && c.target !== undefined);
    $("conv-note").textContent = anyTarget
      ? "Median time to the cell's target (" + ((s.analysis && s.analysis.target_rule) || "its reference validation score") +
        ") with its CI. Runs that never reached it count as ∞: " +
        "a median that is ∞ is drawn at the top edge as an open triangle, \"not reached\"."
      : "No time-to-target for this task (needs the analysis).";
  }

  // -- runs table

  function renderFilters(s) {
    const box = clear($("filters"));
    for (const f of FILTERS) {
      const values = (s.filters && s.filters[f.key]) || [];
      const opts = [["", "any"]].concat(values.map((v) => [f.key === "train_size" ? sizeLabel(v) : String(v),
        f.key === "train_size" ? sizeLabel(v) : String(v)]));
      const select = el("select", { "data-filter": f.key,
        onchange: (e) => { state.filters[f.key] = e.target.value; state.pageRows = PAGE_ROWS; renderRuns(); } });
      const v = fillSelect(select, opts, state.filters[f.key]);
      state.filters[f.key] = v;
      box.append(el("label", null, f.label + " ", select));
    }
    box.append(el("button", { type: "button", id: "clear-filters", text: "Clear filters",
      onclick: () => { for (const k of Object.keys(state.filters)) state.filters[k] = ""; renderFilters(state.summary); renderRuns(); } }));
  }

  function filteredRows() {
    const f = state.filters;
    const rows = state.summary.rows.filter((r) =>
      (!f.task || r.task === f.task) && (!f.model || r.model === f.model) &&
      (!f.train_size || sizeLabel(r.train_size) === f.train_size) &&
      (!f.seed || String(r.seed) === f.seed) && (!f.status || r.status === f.status));
    const { key, dir } = state.sort;
    const col = RUN_COLUMNS.find((c) => c.key === key);
    const cmp = (a, b) => {
      const x = a[key], y = b[key];
      if (x === y) return 0;
      if (x === null || x === undefined) return 1;  // missing values last, whatever the direction
      if (y === null || y === undefined) return -1;
      if (col && col.num) return (x - y) * dir;
      return String(x).localeCompare(String(y)) * dir;
    };
    const tie = (a, b) => (a.task.localeCompare(b.task) || a.model.localeCompare(b.model) ||
      ((a.train_size === null ? Infinity : a.train_size) - (b.train_size === null ? Infinity : b.train_size)) ||
      (a.seed - b.seed) || a.run_id.localeCompare(b.run_id));
    return rows.slice().sort((a, b) => cmp(a, b) || tie(a, b));
  }

  function renderRuns() {
    const s = state.summary;
    const showVariant = s.rows.some((r) => r.variant_key && r.variant_key !== "default");
    const cols = RUN_COLUMNS.filter((c) => !c.optional || showVariant);
    const table = $("runs-table");
    const head = clear(table.tHead);
    const htr = el("tr");
    for (const c of cols) {
      const th = el("th", { "data-key": c.key, scope: "col", text: c.label,
        onclick: () => {
          state.sort = { key: c.key, dir: state.sort.key === c.key ? -state.sort.dir : 1 };
          renderRuns();
        } });
      if (state.sort.key === c.key) th.setAttribute("aria-sort", state.sort.dir > 0 ? "ascending" : "descending");
      htr.append(th);
    }
    head.append(htr);
    const rows = filteredRows();
    const body = document.createElement("tbody");
    const shown = rows.slice(0, state.pageRows);
    for (const r of shown) {
      const tr = el("tr", { tabindex: "0", "data-run": r.run_id, class: r.run_id === state.detailId ? "selected" : null,
        onclick: () => openDetail(r.run_id, true).catch(showError),
        onkeydown: (e) => { if (e.key === "Enter") openDetail(r.run_id, true).catch(showError); } });
      for (const c of cols) {
        const v = r[c.key];
        const text = c.fmt ? c.fmt(v) : (typeof v === "number" ? fmt(v) : (v === null || v === undefined ? "–" : String(v)));
        const td = el("td", { class: (c.num ? "num " : "") + (c.cls ? c.cls(r) : ""), text });
        if (c.key === "error" && v) td.title = v;
        tr.append(td);
      }
      body.append(tr);
    }
    table.replaceChild(body, table.tBodies[0]);
    $("runs-count").textContent = rows.length + " of " + s.rows.length + " runs" +
      (shown.length < rows.length ? " (first " + shown.length + " shown)" : "");
    const more = clear($("runs-more"));
    if (shown.length < rows.length) {
      more.append(
        el("button", { type: "button", id: "show-more", text: "Show " + Math.min(PAGE_ROWS, rows.length - shown.length) + " more",
          onclick: () => { state.pageRows += PAGE_ROWS; renderRuns(); } }),
        " ",
        el("button", { type: "button", id: "show-all", text: "Show all " + rows.length,
          onclick: () => { state.pageRows = Infinity; renderRuns(); } }));
    }
  }

  // -- export (client side, from the same records as `bench results --json/--csv`)

  function stableJson(v) {
    if (Array.isArray(v)) return "[" + v.map(stableJson).join(", ") + "]";
    if (v && typeof v === "object") {
      return "{" + Object.keys(v).sort().map((k) => JSON.stringify(k) + ": " + stableJson(v[k])).join(", ") + "}";
    }
    return JSON.stringify(v === undefined ? null : v);
  }
  // Stored text is data: no control characters, and an apostrophe before what a spreadsheet
  // would run as a formula (OWASP CSV injection); numbers stay numbers (as analysis/display.py).
  const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
  const FORMULA = /^[=+\-@\t\r]/;
  function csvField(v) {
    if (v === null || v === undefined) return "";
    let s = typeof v === "object" ? stableJson(v) : String(v);
    if (typeof v === "string") {
      s = s.replace(CONTROL, "");
      if (FORMULA.test(s) || FORMULA.test(s.trimStart())) s = "'" + s;
    }
    return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }

  async function exportRuns(format) {
    const full = await runsFull();
    const byId = new Map(full.map((r) => [r.run_id, r]));
    const fields = state.summary.export_fields;
    const recs = filteredRows().map((r) => byId.get(r.run_id)).filter(Boolean)
      .map((r) => Object.fromEntries(fields.map((k) => [k, r[k] === undefined ? null : r[k]])));
    let text, type;
    if (format === "csv") {
      text = [fields.join(",")].concat(recs.map((r) => fields.map((k) => csvField(r[k])).join(","))).join("\r\n") + "\r\n";
      type = "text/csv";
    } else {
      text = JSON.stringify(recs, null, 2) + "\n";
      type = "application/json";
    }
    const url = URL.createObjectURL(new Blob([text], { type: type + ";charset=utf-8" }));
    const a = el("a", { href: url, download: "seqbench-runs." + format });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 5000);
  }

  // -- gradient flow (runs trained with --probe-gradients; payloads from dashboard/gradflow.py)

  const grad = { cell: null, config: null, cache: new Map() };

  function gradData(key) {  // cached per database version, like the cells
    const k = state.version + "|" + key;
    if (!grad.cache.has(k)) {
      const p = get(key);
      p.catch(() => grad.cache.delete(k));
      grad.cache.set(k, p);
    }
    return grad.cache.get(k);
  }

  /** A heatmap of log10 ‖∂L/∂x_t‖ over input position × training step. */
  function flowTrace(flow, name) {
    return {
      type: "heatmap", x: flow.log10.length ? flow.log10[0].map((_, t) => t) : [], y: flow.steps,
      z: flow.log10, colorscale: "Viridis", name: pt(name), hoverongaps: false,
      colorbar: { title: { text: "log10 ‖∂L/∂x_t‖", side: "right" }, thickness: 12 },
      hovertemplate: "position %{x}<br>step %{y}<br>log10 ‖∂L/∂x_t‖ = %{z:.2f}<extra></extra>",
    };
  }

  async function renderGradients() {
    const sec = $("gradients-section");
    if (!state.summary || state.summary.status !== "ok") { sec.hidden = true; return; }
    const idx = await gradData("gradients").catch(() => ({ cells: [] }));
    sec.hidden = !idx.cells.length;
    const link = document.querySelector('#toc a[href="#gradients-section"]');
    if (link) link.hidden = !idx.cells.length;
    if (!idx.cells.length) return;
    if (!idx.cells.some((c) => c.id === grad.cell)) {
      grad.cell = idx.cells.some((c) => c.id === state.cellId) ? state.cellId : idx.cells[0].id;
    }
    grad.cell = fillSelect($("grad-cell-select"), idx.cells.map((c) => [c.id, c.label + " (" + c.runs + " probed runs)"]), grad.cell);
    const id = grad.cell;
    const [d, P] = await Promise.all([gradData("gradients/" + id), plotly()]);
    if (id !== grad.cell) return;
    const configs = d.configs || [];
    if (!configs.some((c) => c.label === grad.config)) grad.config = configs.length ? configs[0].label : null;
    grad.config = fillSelect($("grad-config-select"), configs.map((c) => [c.label, c.label + " · " + c.n + " seed" + (c.n === 1 ? "" : "s")]), grad.config);
    const prof = $("grad-profile-chart");
    const traces = configs.map((c, i) => {
      const y = c.step0.log10_mean;
      return {
        type: "scatter", mode: "lines", name: pt(c.label), x: y.map((_, t) => t), y,
        line: { color: PALETTE[i % PALETTE.length], width: 2 },
        hovertemplate: pt(c.label) + "<br>position %{x}<br>log10 ‖∂L/∂x_t‖ = %{y:.2f}<extra></extra>",
      };
    });
    await P.react(prof, traces, baseLayout({
      title: { text: "step 0: signal reaching each position (mean over seeds, log10)", font: { size: 13 } },
      xaxis: { title: { text: "input position t (loss at the last)" } },
      yaxis: { title: { text: "log10 ‖∂L/∂x_t‖" } },
      legend: { orientation: "h", y: -0.25, x: 0 }, margin: { l: 60, r: 20, t: 40, b: 90 },
    }), PLOT_CONFIG);
    prof.setAttribute("data-configs", String(configs.length));
    const chosen = configs.find((c) => c.label === grad.config);
    const map = $("grad-flow-chart");
    if (chosen) {
      await P.react(map, [flowTrace(chosen.flow, chosen.label)], baseLayout({
        title: { text: pt(chosen.label) + ": log10 ‖∂L/∂x_t‖ over training", font: { size: 13 } },
        xaxis: { title: { text: "input position t" } }, yaxis: { title: { text: "training step" } },
        margin: { l: 60, r: 20, t: 40, b: 50 },
      }), PLOT_CONFIG);
      map.setAttribute("data-config", chosen.label);
    }
    const zeros = configs.filter((c) => c.step0.zeros > 0).map((c) => c.label);
    $("grad-note").textContent = "Ratio ‖∂L/∂x_0‖ / ‖∂L/∂x_last‖ at step 0 (median over seeds): " +
      configs.map((c) => c.label + " " + (c.ratio.median === null ? "–" : c.ratio.median === 0 ? "0" : c.ratio.median.toExponential(1))).join("; ") +
      ". The loss is the final output position's, the gradient is taken at the input embedding, in eval mode, on a fixed batch of training examples." +
      (zeros.length ? " Exact zeros (float32 underflow), drawn at log10 = −44.9: " + zeros.join(", ") + "." : "");
    mark("gradients");
  }

  $("grad-cell-select").addEventListener("change", (e) => { grad.cell = e.target.value; renderGradients().catch(showError); });
  $("grad-config-select").addEventListener("change", (e) => { grad.config = e.target.value; renderGradients().catch(showError); });

  async function renderRunGradients(id) {
    let box = $("detail-grad");
    if (!box) {
      box = el("div", { id: "detail-grad" });
      $("detail-chart").after(box);
    }
    const [g, P] = await Promise.all([gradData("gradflow/" + id).catch(() => null), plotly()]);
    if (state.detailId !== id) return;
    clear(box);
    box.removeAttribute("data-run");
    if (!g || !g.probed) return;
    box.setAttribute("data-run", id);
    box.append(el("h3", { text: "Gradient flow" }));
    if (g.note) box.append(el("p", { class: "note", text: g.note }));
    const clipText = g.grad_clip ? "clipping threshold " + fmt(g.grad_clip) + ", " +
      (g.clip_fraction === null || g.clip_fraction === undefined ? "–" : fmt(100 * g.clip_fraction, 1) + "%") + " of the updates clipped" : "clipping off";
    box.append(el("p", { class: "note", text: "Step-0 ratio ‖∂L/∂x_0‖ / ‖∂L/∂x_last‖: " +
      (g.step0_ratio === null || g.step0_ratio === undefined ? "–" : g.step0_ratio === 0 ? "0 (underflow)" : g.step0_ratio.toExponential(2)) + "; " + clipText + "." }));
    const pair = el("div", { class: "pair" });
    const mapDiv = el("div", { class: "chart small", id: "detail-grad-flow" });
    const normDiv = el("div", { class: "chart small", id: "detail-grad-norm" });
    pair.append(mapDiv, normDiv);
    box.append(pair);
    if (g.flow && g.flow.steps.length) {
      await P.react(mapDiv, [flowTrace(g.flow, id)], baseLayout({
        xaxis: { title: { text: "input position t" } }, yaxis: { title: { text: "training step" } },
        margin: { l: 60, r: 20, t: 20, b: 45 },
      }), PLOT_CONFIG);
    }
    const gn = g.grad_norm || { step: [], median: [], max: [] };
    const shapes = g.grad_clip ? [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: g.grad_clip, y1: g.grad_clip,
      line: { color: "#b42318", width: 1.2, dash: "dash" } }] : [];
    await P.react(normDiv, [
      { type: "scatter", mode: "lines+markers", name: "median", x: gn.step, y: gn.median, line: { color: "#1f77b4" } },
      { type: "scatter", mode: "lines+markers", name: "max", x: gn.step, y: gn.max, line: { color: "#ff7f0e", dash: "dot" } },
    ], baseLayout({
      xaxis: { title: { text: "step (updates since the previous validation)" } },
      yaxis: { title: { text: "gradient norm before clipping" }, type: "log" },
      shapes, margin: { l: 60, r: 20, t: 20, b: 45 },
      annotations: g.grad_clip ? [{ xref: "paper", x: 1, xanchor: "right", y: Math.log10(g.grad_clip), yanchor: "bottom",
        text: "clip " + fmt(g.grad_clip), showarrow: false, font: { size: 10, color: "#b42318" } }] : [],
    }), PLOT_CONFIG);
  }

  // -- run detail

  async function openDetail(id, scroll) {
    state.detailId = id;
    for (const tr of document.querySelectorAll("#runs-table tbody tr")) tr.classList.toggle("selected", tr.dataset.run === id);
    const full = await runsFull();
    const r = full.find((x) => x.run_id === id);
    const sec = $("detail-section");
    if (!r) { sec.hidden = true; state.detailId = null; return; }
    sec.hidden = false;
    $("detail-title").textContent = id;
    const box = clear($("detail"));
    const more = clear($("detail-more"));
    if (!STATIC) history.replaceState(null, "", "#run=" + encodeURIComponent(id));
    if (r.error) box.append(el("h3", { text: r.status === "diverged" ? "Why it diverged" : "Error" }), el("pre", { class: "error-text", text: r.error }));
    const kv = el("dl", { class: "kv" });
    const add = (k, v) => kv.append(el("dt", { text: k }), el("dd", { text: v }));
    add("status", r.status);
    add("model", r.model);
    add("task", r.task + " (" + r.kind + ")");
    add("training size", sizeLabel(r.train_size) + (r.train_examples !== null ? " (" + fmtInt(r.train_examples) + " examples)" : ""));
    add("seed", r.seed);
    add("primary metric", (r.primary_metric || "–") + " = " + fmt(r.primary_value, 4) + " (test), best val " + fmt(r.best_val, 4));
    add("parameters", fmtInt(r.param_count));
    add("steps / samples / seconds", fmt(r.steps) + " / " + fmt(r.samples) + " / " + fmt(r.train_seconds, 2));
    add("to 95% of own best", fmt(r.steps_to_95) + " steps / " + fmt(r.samples_to_95) + " samples / " + fmt(r.seconds_to_95, 2) + " s");
    add("matrix", r.matrix_id || "–");
    add("started / finished", (r.started_at || "–") + " / " + (r.finished_at || "–"));
    box.append(kv);
    const blocks = el("div", { class: "blocks" });
    const block = (title, obj) => blocks.append(el("div", null, el("h3", { text: title }), el("pre", { text: JSON.stringify(obj, null, 2) })));
    block("test metrics", r.test || {});
    block("model hyperparameters", (r.params || {}).model || {});
    block("task parameters", (r.params || {}).task || {});
    block("training", (r.params || {}).training || {});
    if (r.trial && Object.keys(r.trial).length) block("trial (tuning sweep)", r.trial);
    block("environment", r.environment || {});
    if (r.extras && Object.keys(r.extras).length) block("task extras", r.extras);
    more.append(blocks);
    if (scroll) sec.scrollIntoView({ behavior: "smooth", block: "start" });
    await renderDetailChart(id, r);
    await renderRunGradients(id);
  }

  async function renderDetailChart(id, r) {
    const div = $("detail-chart");
    const [P, c] = await Promise.all([plotly(), get("curve/" + id).catch(() => null)]);
    if (state.detailId !== id) return;
    if (!c || !c.step.length) {
      P.purge(div);
      div.textContent = r.status === "running" ? "Still running: its curve is stored when it finishes." : "No curve points stored for this run.";
      div.classList.add("muted");
      return;
    }
    div.textContent = "";
    div.classList.remove("muted");
    const traces = [
      { type: "scatter", mode: "lines+markers", x: c.step, y: c.val_primary, name: "val " + pt(r.primary_metric || "primary"), line: { color: "#1f77b4", width: 2 } },
      { type: "scatter", mode: "lines", x: c.step, y: c.train_loss, name: "train loss", yaxis: "y2", line: { color: "#999", dash: "dot" } },
    ];
    for (const [k, v] of Object.entries(c.val || {})) {
      if (k === r.primary_metric) continue;
      traces.push({ type: "scatter", mode: "lines", x: c.step, y: v, name: "val " + pt(k), visible: "legendonly" });
    }
    await P.react(div, traces, baseLayout({
      xaxis: { title: { text: "optimizer steps" } },
      yaxis: { title: { text: "validation" } },
      yaxis2: { title: { text: "train loss" }, overlaying: "y", side: "right", showgrid: false },
      margin: { l: 60, r: 60, t: 30, b: 45 },
    }), PLOT_CONFIG);
  }

  // ------------------------------------------------------------------ wiring

  $("cell-select").addEventListener("change", (e) => selectCell(e.target.value, false));
  $("scaling-select").addEventListener("change", (e) => { state.scalingVariant = e.target.value; renderScaling().catch(showError); });
  $("conv-select").addEventListener("change", (e) => { state.convVariant = e.target.value; renderConvergence().catch(showError); });
  for (const b of $("axis-switch").querySelectorAll("button")) {
    b.addEventListener("click", () => { state.axis = b.dataset.value; setActive("axis-switch", state.axis); renderCurves().catch(showError); });
  }
  for (const b of $("conv-switch").querySelectorAll("button")) {
    b.addEventListener("click", () => { state.convUnit = b.dataset.value; setActive("conv-switch", state.convUnit); renderConvergence().catch(showError); });
  }
  $("export-csv").addEventListener("click", () => exportRuns("csv").catch(showError));
  $("export-json").addEventListener("click", () => exportRuns("json").catch(showError));
  $("detail-close").addEventListener("click", () => {
    state.detailId = null;
    $("detail-section").hidden = true;
    if (!STATIC) history.replaceState(null, "", location.pathname);
    for (const tr of document.querySelectorAll("#runs-table tbody tr.selected")) tr.classList.remove("selected");
  });

  // -- pooled across data sets: one forest plot per task and size regime (dashboard/forest.py)

  const forest = { id: null };

  function forestSection() {  // built here, not in index.html: the page has it only when needed
    let sec = $("forest-section");
    if (sec) return sec;
    sec = el("section", { id: "forest-section", class: "panel", hidden: true },
      el("h2", { text: "Pooled across data sets" }),
      el("div", { class: "controls" }, el("label", null, "Task and size ", el("select", { id: "forest-select" }))),
      el("div", { id: "forest-chart", class: "chart" }),
      el("p", { id: "forest-prediction", class: "note" }),
      el("ul", { id: "forest-notes", class: "note" }));
    $("runs-section").before(sec);
    $("toc").insertBefore(el("a", { href: "#forest-section", hidden: true, text: "Pooled" }),
      document.querySelector('#toc a[href="#runs-section"]'));
    $("forest-select").addEventListener("change", (e) => { forest.id = e.target.value; renderForest().catch(showError); });
    return sec;
  }

  async function renderForest() {
    const ok = state.summary && state.summary.status === "ok";
    const figs = (ok && state.summary.forest) || [], failed = ok && state.summary.forest_error;
    const sec = forestSection();
    sec.hidden = !figs.length && !failed;
    document.querySelector('#toc a[href="#forest-section"]').hidden = sec.hidden;
    if (!figs.length) {
      if (failed) clear($("forest-notes")).append(el("li", { text: failed }));
      return;
    }
    if (!figs.some((f) => f.id === forest.id)) forest.id = figs[0].id;
    forest.id = fillSelect($("forest-select"), figs.map((f) => [f.id, f.label + " · " + f.a + " − " + f.b]), forest.id);
    const f = figs.find((x) => x.id === forest.id);
    const P = await plotly();
    const k = f.rows.length, q = f.pooled, conf = Math.round(f.confidence * 100) + "%";
    const ys = f.rows.map((_, i) => k + 1 - i);  // data sets top down, then the diamond and the PI
    const traces = [{
      type: "scatter", mode: "markers", name: "data set (" + conf + " t-CI over seeds)", x: f.rows.map((r) => r.diff), y: ys,
      marker: { symbol: "square", size: 9, color: PALETTE[0] },
      error_x: { type: "data", symmetric: false, array: f.rows.map((r) => r.hi - r.diff), arrayminus: f.rows.map((r) => r.diff - r.lo), color: "#333", thickness: 1.5, width: 4 },
      customdata: f.rows.map((r) => [r.lo, r.hi, r.seeds, pt(r.result)]),
      hovertemplate: "%{x:+.2f} [%{customdata[0]:+.2f}, %{customdata[1]:+.2f}]<br>%{customdata[2]} seeds · %{customdata[3]}<extra></extra>",
    }];
    const ticks = ys.slice(), labels = f.rows.map((r) => pt(r.label) + " (n = " + fmtInt(r.n) + (r.full ? ", full" : "") + ")");
    if (q) {
      traces.push({ type: "scatter", mode: "lines", fill: "toself", name: "pooled (" + conf + " CI)", x: [q.lo, q.estimate, q.hi, q.estimate, q.lo],
        y: [1, 1.3, 1, 0.7, 1], line: { color: PALETTE[1], width: 1 }, fillcolor: rgba(PALETTE[1], 0.8),
        hovertemplate: "pooled " + signed(q.estimate) + " [" + signed(q.lo) + ", " + signed(q.hi) + "]<extra></extra>" });
      ticks.push(1); labels.push("pooled (k = " + q.k + ", I² = " + Math.round(q.i2 * 100) + "%)");
      if (q.pi_lo !== null) {
        traces.push({ type: "scatter", mode: "lines+markers", name: conf + " prediction interval (new data set)", x: [q.pi_lo, q.pi_hi], y: [0, 0],
          line: { color: PALETTE[1], width: 3 }, marker: { symbol: "line-ns-open", size: 12, color: PALETTE[1] },
          hovertemplate: "prediction interval [" + signed(q.pi_lo) + ", " + signed(q.pi_hi) + "]<extra></extra>" });
        ticks.push(0); labels.push(conf + " prediction interval");
      }
    }
    const div = $("forest-chart");
    await P.react(div, traces, baseLayout({
      uirevision: "forest" + f.id, height: 180 + 34 * (k + 2), margin: { l: 200, r: 20, t: 40, b: 50 },
      shapes: [{ type: "line", xref: "x", yref: "paper", x0: 0, x1: 0, y0: 0, y1: 1, line: { color: "#888", width: 1, dash: "dot" } }],
      xaxis: { title: { text: pt(f.xlabel) }, zeroline: false },
      yaxis: { tickvals: ticks, ticktext: labels, range: [-0.8, k + 1.8], zeroline: false },
    }), PLOT_CONFIG);
    div.setAttribute("data-forest", f.id);
    $("forest-prediction").textContent = f.prediction || (q ? "" : "Fewer than two data sets in this regime: nothing pooled.");
    const notes = clear($("forest-notes"));
    if (q) notes.append(el("li", { text: "Pooled " + signed(q.estimate) + " " + f.unit + " [" + signed(q.lo) + ", " + signed(q.hi) + "], τ² = " + fmt(q.tau2) + ", I² = " + Math.round(q.i2 * 100) + "%, Q = " + fmt(q.q, 2) + " (random effects, " + (f.method === "pm" ? "Paule–Mandel" : "DerSimonian–Laird") + ", " + (f.interval === "hksj" ? "Hartung–Knapp interval" : "normal interval") + ")." }));
    for (const n of f.notes) notes.append(el("li", { text: n }));
  }

  function setLive(ok, text) {
    const live = $("live");
    live.className = "live " + (ok ? "on" : "off");
    live.textContent = text;
  }

  async function poll() {
    try {
      const res = await fetch("api/version", { cache: "no-store" });
      const v = await res.json();
      if (v.version !== state.version) await load();
      showError(null);
      setLive(true, "live · checked " + new Date().toLocaleTimeString());
    } catch (e) {
      setLive(false, "server unreachable");
    }
    setTimeout(poll, POLL_MS);
  }

  async function start() {
    const m = /^#run=([^&]+)/.exec(location.hash);
    if (m) state.detailId = decodeURIComponent(m[1]);
    try {
      await load();
    } catch (e) {
      showError(e);
    }
    if (STATIC) {
      setLive(true, "static report");
    } else {
      setLive(true, "live");
      setTimeout(poll, POLL_MS);
    }
  }

  start();
})();
