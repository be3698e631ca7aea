"""Hostile stored strings, plugins and clients: nothing runs, nothing is interpreted, no traceback.

A database whose stored strings hold HTML, rich markup, terminal escapes and spreadsheet formulas
is read by every command that prints or exports them; a plugin calls ``sys.exit()``; clients
trickle their request or never read the answer; the database changes under a running dashboard.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import socket
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from test_bad_input import _record, make_results

EVIL = {
    "html": "<script>alert(1)</script><img src=x onerror=alert(2)>",
    "markup": "[/bogus]",
    "link": "[link=https://evil.example]click me[/link]",
    "title": "\x1b]0;pwned\x07\x1b[2J\x1b[31mred",
    "hyperlink": "\x1b]8;;https://evil.example\x1b\\x\x1b]8;;\x1b\\",
    "c1": "\x9b2Jc1",
    "bidi": "\u202egnp.exe",
    "formula": '=HYPERLINK("https://evil.example","x")',
    "plus": "+1+cmd|' /C calc'!A0",
    "at": "@SUM(1+1)*cmd|' /C calc'!A0",
    "minus": "-2+3+cmd|' /C calc'!A0",
    "tab": "\t=1+1",
    "cr": "\r=1+1",
    "spaces": "  =1+1",
}
# what must never reach a terminal: OSC (titles, hyperlinks, clipboard), clearing the screen,
# 8-bit CSI, the bidirectional override
FORMULA = ("=", "+", "-", "@", "\t", "\r")  # how a spreadsheet formula may start
NEVER_ON_A_TERMINAL = ("\x1b]", "\x1b[2J", "\x9b", "\x07", "\u202e")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Path:
    from seqbench.store import Store

    path = tmp_path_factory.mktemp("hostile") / "hostile.sqlite"
    with Store(path) as store:
        for i, (key, evil) in enumerate(EVIL.items()):
            for seed in range(3):
                for model, value in (("lstm", 0.8), ("gru", 0.6)):
                    rec = _record(f"{model}{evil}", seed, 32, value + seed / 100)
                    rec["run_id"] = f"{rec['run_id'][:12]}{i:04d}"
                    rec["error"] = evil
                    rec["environment"] = {"host": evil, key: evil}
                    rec["best_val"] = -value  # a negative number stays a number in CSV
                    store.save(rec)
    return path


def invoke(args, **env):
    from seqbench.cli import main

    result = CliRunner().invoke(main, [str(a) for a in args], env=env or None)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception)
    assert result.exit_code == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stdout + result.stderr
    return result


@pytest.mark.parametrize("colour", [False, True], ids=["plain", "colour"])
@pytest.mark.parametrize("command", [["results"], ["analyze", "--full"], ["analyze", "--markdown"]])
def test_stored_strings_reach_the_terminal_as_text(hostile, command, colour):
    env = {"FORCE_COLOR": "1", "NO_COLOR": None} if colour else {"NO_COLOR": "1"}
    out = invoke([*command, "--db", hostile], **env).stdout
    for seq in NEVER_ON_A_TERMINAL:
        assert seq not in out, (seq, command)
    if not colour:
        assert "\x1b" not in out
    # brackets printed as they are, never taken as markup (long cells fold over lines)
    for shown in ("[/bogus]", "[link=https://evil", "[/link]", "<script>"):
        assert shown in out, shown


def test_results_csv_neutralises_formulas_and_keeps_numbers(hostile):
    out = invoke(["results", "--db", hostile, "--csv"]).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 6 * len(EVIL)
    for row in rows:
        for value in row.values():
            if value.startswith(FORMULA) or value.lstrip().startswith(FORMULA):
                float(value)  # only numbers may start so
        assert float(row["best_val"]) < 0
        assert "\x1b" not in "".join(row.values())
    errors = {row["error"] for row in rows}
    assert "'" + EVIL["formula"] in errors and "'" + EVIL["spaces"] in errors
    assert "'\t=1+1" in errors and "'=1+1" in errors  # the carriage return dropped, then marked


def test_json_export_keeps_every_stored_string_exactly(hostile):
    records = json.loads(invoke(["results", "--db", hostile, "--json"]).stdout)
    assert {r["error"] for r in records} == set(EVIL.values())
    analysis = json.loads(invoke(["analyze", "--db", hostile, "--json"]).stdout)
    assert analysis


def test_the_static_report_embeds_stored_strings_as_inert_data(hostile, tmp_path):
    out = tmp_path / "r.html"
    invoke(["report", "--db", hostile, "--out", out])
    html = out.read_text(encoding="utf-8")
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "\x1b" not in html


@pytest.fixture
def serve():
    from seqbench.dashboard.server import make_server

    servers = []

    def start(db, **kwargs):
        server = make_server(db, **kwargs)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def get(server, path="/api/version", timeout=30.0):
    import http.client

    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": f"127.0.0.1:{port}"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_the_dashboard_api_serves_stored_strings_as_escaped_json(hostile, serve):
    server = serve(hostile)
    status, body = get(server, "/api/summary")
    assert status == 200 and json.loads(body)["status"] == "ok"
    status, body = get(server, "/api/runs")
    assert status == 200
    runs = json.loads(body)
    assert {r["error"] for r in runs} == set(EVIL.values())
    assert b"<" not in body and b">" not in body  # JSON escapes: nothing closes a <script>
    status, body = get(server, f"/api/curve/{runs[0]['run_id']}")
    assert status == 200 and json.loads(body)["run_id"] == runs[0]["run_id"]


def test_the_page_csv_export_writes_the_same_cells_as_bench_results(hostile, serve):
    """app.js's csvField, run by Node on the dashboard's records, against ``runs_csv``."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed")
    from seqbench.analysis.tables import EXPORT, runs_csv
    from seqbench.store import Store

    app = (Path(__file__).parents[1] / "bench/dashboard/static/app.js").read_text()
    start, end = app.index("  function stableJson("), app.index("  async function exportRuns(")
    records = json.loads(get(serve(hostile), "/api/runs")[1])
    strings = [[r[k] for k in EXPORT if isinstance(r.get(k), str)] for r in records]
    script = app[start:end] + "\nconst rows = JSON.parse(require('fs').readFileSync(0, 'utf8'));" \
        "\nprocess.stdout.write(JSON.stringify(rows.map((r) => r.map(csvField))));"
    proc = subprocess.run([node, "-e", script], input=json.dumps(strings), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    page = json.loads(proc.stdout)
    shown = {next(csv.reader([cell]))[0] for cells in page for cell in cells if cell}
    assert not any(text.lstrip().startswith(FORMULA) for text in shown)
    assert "'" + EVIL["formula"] in shown
    with Store(hostile, readonly=True) as store:
        by_id = {r.run_id: r for r in store.runs()}
    for record, cells in zip(records, page):
        line = runs_csv([by_id[record["run_id"]]]).split("\r\n")[1]
        expected = next(csv.reader([line]))
        fields = [k for k in EXPORT if isinstance(record.get(k), str)]
        for field, cell in zip(fields, cells):
            assert next(csv.reader([cell])) == [expected[EXPORT.index(field)]], field


# --------------------------------------------------------------------------------------------
# Values of the wrong type, and a database that turns unreadable under a running dashboard


def change(db: Path, sql: str) -> None:
    con = sqlite3.connect(db)
    con.execute(sql)
    con.commit()
    con.close()


def test_the_dashboard_answers_a_wrong_value_with_one_line_and_says_when_it_became_unreadable(
        tmp_path, serve):
    db = make_results(tmp_path / "r.sqlite")
    server = serve(db)
    status, body = get(server, "/api/summary")
    assert status == 200 and json.loads(body)["status"] == "ok"
    run_id = json.loads(get(server, "/api/runs")[1])[0]["run_id"]
    change(db, "UPDATE curves SET val = 'nope'")  # read only when a run's curve is asked for
    status, body = get(server, f"/api/curve/{run_id}")
    assert status == 500
    message = json.loads(body)["error"]
    assert "\n" not in message and "column 'curves.val'" in message and run_id in message

    change(db, "UPDATE runs SET config = '{not json' WHERE rowid = 1")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        summary = json.loads(get(server, "/api/summary")[1])
        if summary["status"] != "ok":
            break
        time.sleep(0.1)
    assert summary["status"] == "error"  # not the old runs, as if they were current
    assert summary["message"].startswith("The database became unreadable:")
    assert "column 'config'" in summary["message"] and "\n" not in summary["message"]


# --------------------------------------------------------------------------------------------
# A plugin that calls sys.exit() is a broken plugin like any other

EXITS_AT_IMPORT = """
import sys
sys.exit(3)
"""
EXITS_IN_ITS_HOOK = """
import sys
from seqbench import hookimpl

@hookimpl
def register_models(register):
    sys.exit()
"""


def test_a_plugin_calling_sys_exit_is_reported_and_the_rest_keep_working(cli, make_dist, tmp_path):
    dist = make_dist("seqbench-quitter", {"quit_import": EXITS_AT_IMPORT,
                                          "quit_hook": EXITS_IN_ITS_HOOK},
                     {"quit-import": "quit_import", "quit-hook": "quit_hook"})
    rc, out, err = cli("plugins", pythonpath=[dist])
    assert rc == 0, err
    assert "lstm" in out and "copy" in out
    assert ("warning: plugin 'quit-import' (seqbench-quitter 0.0.1) was not loaded: it called "
            "sys.exit(3)") in err
    assert "warning: plugin 'quit-hook' (seqbench-quitter 0.0.1) was not loaded: it called " \
           "sys.exit(None)" in err
    rc, out, err = cli("run", "--models", "lstm", "--tasks", "copy", "--dry-run", "--db",
                       tmp_path / "x.sqlite", pythonpath=[dist])
    assert rc == 0 and "1 planned runs" in out, err


# --------------------------------------------------------------------------------------------
# The dashboard's deadline is for the whole request, and accepting never waits


def test_a_request_trickled_byte_by_byte_is_cut_off_at_the_deadline(tmp_path, serve):
    server = serve(make_results(tmp_path / "r.sqlite"), deadline=1.0)
    host, port = server.server_address[:2]
    s = socket.create_connection((host, port))
    s.settimeout(0.2)
    request = b"GET /api/version HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 1000
    t0 = time.monotonic()
    closed = False
    try:
        for byte in request:  # one byte every 0.1 s: each read is quick, the request never ends
            if time.monotonic() - t0 > 6:
                break
            try:
                s.sendall(bytes([byte]))
                if s.recv(1) == b"":
                    closed = True
                    break
            except TimeoutError:
                continue
            except OSError:
                closed = True
                break
            time.sleep(0.1)
    finally:
        s.close()
    assert closed and time.monotonic() - t0 < 3


def test_clients_that_never_read_the_bundle_do_not_delay_the_page(tmp_path, serve):
    from seqbench.dashboard.server import MAX_CONNECTIONS

    server = serve(make_results(tmp_path / "r.sqlite"))  # the real 10-second deadline
    host, port = server.server_address[:2]
    size = len(server.assets["plotly-gl.js"][0])
    stuck = []
    try:
        for _ in range(MAX_CONNECTIONS + 8):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the answer cannot fit
            s.connect((host, port))
            s.sendall(b"GET /static/plotly-gl.js HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            stuck.append(s)
        time.sleep(0.5)
        t0 = time.monotonic()
        status, _ = get(server)
        assert status == 200 and time.monotonic() - t0 < 3
    finally:
        for s in stuck:
            s.close()
    assert size > 1_000_000


def test_an_answer_nobody_reads_is_cut_off_at_the_deadline(tmp_path, serve):
    server = serve(make_results(tmp_path / "r.sqlite"), deadline=1.0)
    host, port = server.server_address[:2]
    size = len(server.assets["plotly-gl.js"][0])
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((host, port))
    s.sendall(b"GET /static/plotly-gl.js HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    time.sleep(2.5)  # never reading, past the deadline
    s.settimeout(10)
    got = 0
    try:
        while chunk := s.recv(65536):
            got += len(chunk)
    except OSError:
        pass
    finally:
        s.close()
    assert got < size  # the server hung up on it instead of waiting


# --------------------------------------------------------------------------------------------
# Readers leave the folder as they found it


@pytest.mark.parametrize("journal", ["delete", "wal"])
def test_bench_results_creates_no_file_beside_a_database_at_rest(tmp_path, journal):
    db = make_results(tmp_path / "r.sqlite")
    if journal == "wal":  # as an older seqbench left its files
        con = sqlite3.connect(db)
        con.execute("PRAGMA journal_mode = WAL")
        con.close()
    before = sorted(p.name for p in tmp_path.iterdir())
    invoke(["results", "--db", db])
    invoke(["results", "--db", db, "--csv"])
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_database_whose_log_is_another_database_is_left_alone(tmp_path):
    """`bench run --db A.sqlite-wal` once stored runs there; opening A.sqlite would have taken
    that file for A's log, left an -shm beside it, and a writer would have deleted it."""
    from seqbench.cli import main

    make_results(tmp_path / "A.sqlite")
    make_results(tmp_path / "elsewhere.sqlite").rename(tmp_path / "A.sqlite-wal")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    for args in (["results", "--db", tmp_path / "A.sqlite"],
                 ["run", "--models", "lstm", "--tasks", "copy", "--max-steps", "1",
                  "--executor", "sequential", "--db", tmp_path / "A.sqlite"],
                 ["results", "--db", tmp_path / "A.sqlite-wal"]):
        result = CliRunner().invoke(main, [str(a) for a in args])
        assert result.exit_code == 2, result.stderr
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


# --------------------------------------------------------------------------------------------
# A spreadsheet's "CSV UTF-8" starts with a byte-order mark


def test_a_csv_with_a_byte_order_mark_is_read_by_decide_and_by_the_task(tmp_path):
    from seqbench.cli import main
    from seqbench.decision.request import task_for_data
    from seqbench.registry import registry

    data = tmp_path / "sheet.csv"
    data.write_text("text,label\n" + "".join(f"example {i},{'ab'[i % 2]}\n" for i in range(40)),
                    encoding="utf-8-sig")
    assert data.read_bytes().startswith(b"\xef\xbb\xbf")
    task, why = task_for_data(str(data), {}, registry().tasks)
    assert task == "classification" and "'text'" in why
    result = CliRunner().invoke(main, ["data", "classification", "-t", f"data={data}",
                                       "--limit", "2"])
    assert result.exit_code == 0, result.stderr
    assert "\ufeff" not in result.stdout
