"""The dashboard's HTTP server: standard library only, GET only, read-only.

Routes (everything else is 404): ``/`` the page; ``/static/<name>`` its own files, looked up by
exact name in a table built at start-up, so no part of a URL ever reaches a filesystem path;
``/api/version`` (changes when the database is written; the page polls it); ``/api/summary``,
``/api/runs``, ``/api/cell/<id>``, ``/api/curve/<run_id>`` (:class:`.data.Dashboard`);
``/api/gradients``, ``/api/gradients/<cell id>``, ``/api/gradflow/<run_id>`` (gradient probes).

Bound to 127.0.0.1 by default, refusing other ``Host`` names there (DNS rebinding). Connections
are bounded and never wait on a client for long (:data:`MAX_CONNECTIONS` threads,
:data:`REQUEST_DEADLINE` to send a request and as long to read the answer; the longest-waiting
connection is closed to make room), so half-sent or unread requests cannot stall the page.
"""

from __future__ import annotations

import collections
import ipaddress
import re
import socket
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from ..util import one_line
from .data import Dashboard, dumps

STATIC_DIR = Path(__file__).parent / "static"
PAGE_FILES = {"app.js": "text/javascript", "style.css": "text/css"}
CARTESIAN = "plotly-cartesian.min.js"  # plotly.js-cartesian-dist-min 4.1.1 (see its NOTICE)
BUNDLES = ("plotly.js", "plotly-gl.js")  # immutable for a release: cached by the browser
ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
MAX_CONNECTIONS = 32  # handler threads at once; the page itself needs a handful
MAX_QUEUED = 64  # accepted connections waiting for a handler thread
REQUEST_DEADLINE = 10.0  # seconds a client has to send its whole request, and to take the answer
IDLE_TIMEOUT = REQUEST_DEADLINE  # the socket timeout of each read and write, within the deadline
# plotly.js needs 'unsafe-eval' for its WebGL traces (regl compiles shaders with Function);
# inline scripts stay forbidden, so data can never run as code.
CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; font-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def plotly_js() -> bytes:
    """The minified plotly.js bundle that the ``plotly`` Python package ships (read from the
    package's files without importing it; its own loader as a fallback)."""
    import importlib.util

    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the dashboard needs the 'plotly' package: pip install plotly")
    for loc in spec.submodule_search_locations:
        path = Path(loc) / "package_data" / "plotly.min.js"
        if path.is_file():
            return path.read_bytes()
    from plotly.offline import get_plotlyjs  # pragma: no cover - older layouts

    return get_plotlyjs().encode()


def page_assets() -> dict[str, tuple[bytes, str]]:
    """name -> (content, content type) for everything under /static/, read once."""
    assets = {
        name: ((STATIC_DIR / name).read_bytes(), ctype) for name, ctype in PAGE_FILES.items()
    }
    # plotly's cartesian partial bundle (vendored) loads faster; the full one only for WebGL cells
    assets["plotly.js"] = ((STATIC_DIR / CARTESIAN).read_bytes(), "text/javascript")
    assets["plotly-gl.js"] = (plotly_js(), "text/javascript")
    return assets


def _loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class DashboardServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64  # the listen backlog: a burst of connections waits, not refused

    def __init__(self, address, dashboard: Dashboard, quiet: bool = True,
                 deadline: float = REQUEST_DEADLINE):
        host = address[0]
        if ":" in host:
            self.address_family = socket.AF_INET6
        self.dashboard = dashboard
        self.quiet = quiet
        self.deadline = deadline
        self._lock = threading.Lock()
        self._active = 0  # handler threads running
        self._queued: collections.deque = collections.deque()  # (conn, address, accepted at)
        self._waiting: dict = {}  # connection -> since when it waits on its client
        self._closed = threading.Event()
        self.assets = page_assets()
        self.index = (STATIC_DIR / "index.html").read_bytes()
        self.check_host = _loopback(host)
        super().__init__(address, Handler)
        # read the database now, so that the first page load finds it ready
        threading.Thread(target=self._warm, name="dashboard-warm", daemon=True).start()
        threading.Thread(target=self._reap, name="dashboard-deadlines", daemon=True).start()

    def _warm(self) -> None:
        try:
            self.dashboard.snapshot()
        except Exception:  # the page reports it when it asks
            pass

    # -- bounded connections; the accept loop never waits

    def process_request(self, request, client_address) -> None:
        """Start a handler thread if fewer than MAX_CONNECTIONS run; else queue the connection
        for the next thread that finishes, and close the connection that has waited longest on
        its client to make that happen soon."""
        with self._lock:
            start = self._active < MAX_CONNECTIONS
            if start:
                self._active += 1
            else:
                self._queued.append((request, client_address, time.monotonic()))
                dropped = self._queued.popleft() if len(self._queued) > MAX_QUEUED else None
        if start:
            try:
                super().process_request(request, client_address)
            except Exception:
                with self._lock:
                    self._active -= 1
                raise
            return
        if dropped is not None:
            self.shutdown_request(dropped[0])
        self._evict_longest_waiting()

    def process_request_thread(self, request, client_address) -> None:
        """Serve this connection, then the queued ones, until none is left."""
        while request is not None:
            try:
                super().process_request_thread(request, client_address)
            finally:
                self.waiting(request, False)
                with self._lock:
                    if self._queued:
                        request, client_address, _ = self._queued.popleft()
                    else:
                        self._active -= 1
                        request = None

    def waiting(self, conn, flag: bool) -> None:
        """Note that ``conn`` now waits on its client (for its request, or to take its answer),
        or no longer does."""
        with self._lock:
            if flag:
                self._waiting.setdefault(conn, time.monotonic())
            else:
                self._waiting.pop(conn, None)

    def _evict_longest_waiting(self) -> None:
        with self._lock:
            if not self._waiting:
                return
            conn = min(self._waiting, key=self._waiting.get)
            del self._waiting[conn]
        _hang_up(conn)

    def _reap(self) -> None:
        """Close every connection that has waited on its client past the deadline: a request
        trickled in byte by byte, an answer nobody reads, a connection queued too long."""
        tick = min(0.25, self.deadline / 10)
        while not self._closed.wait(tick):
            cutoff = time.monotonic() - self.deadline
            with self._lock:
                late = [c for c, since in self._waiting.items() if since <= cutoff]
                for c in late:
                    del self._waiting[c]
                while self._queued and self._queued[0][2] <= cutoff:
                    late.append(self._queued.popleft()[0])
            for conn in late:
                _hang_up(conn)

    def server_close(self) -> None:
        self._closed.set()
        super().server_close()

    def handle_error(self, request, client_address) -> None:
        """A client that went away mid-answer is normal; anything else is one line, never a
        traceback in the user's terminal."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)) or self.quiet:
            return
        sys.stderr.write(f"dashboard: {client_address[0]}: {one_line(exc)}\n")

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}/"


def _hang_up(conn) -> None:
    try:
        conn.shutdown(socket.SHUT_RDWR)  # its thread's read or write returns at once
    except OSError:
        pass


class _TrackedLines:
    """The request's input, noting whether a read met the end of the stream."""

    def __init__(self, raw):
        self.raw = raw
        self.eof = False

    def readline(self, *args):
        line = self.raw.readline(*args)
        if not line.endswith(b"\n"):
            self.eof = True
        return line

    def __getattr__(self, name):
        return getattr(self.raw, name)


class Handler(BaseHTTPRequestHandler):
    server: DashboardServer
    server_version = "seqbench-dashboard"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT  # socket timeout: an idle or half-sent connection is closed

    def handle_one_request(self) -> None:
        self.server.waiting(self.connection, True)  # until its headers have all arrived
        super().handle_one_request()
        self.server.waiting(self.connection, False)

    def parse_request(self) -> bool:
        # A request cut off by the end of the stream is dropped: http.server would answer it as
        # if complete, computing a payload for a socket nobody reads.
        if not self.raw_requestline.endswith(b"\n"):
            self.close_connection = True
            return False
        raw = self.rfile
        self.rfile = tracked = _TrackedLines(raw)
        try:
            ok = super().parse_request()
        finally:
            self.rfile = raw
        if ok and tracked.eof:
            self.close_connection = True
            return False
        self.server.waiting(self.connection, False)
        return ok

    def log_message(self, format, *args):
        if not self.server.quiet:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    # -- responses

    def _send(self, status: int, body: bytes, ctype: str, cache: str = "no-store",
              extra: dict | None = None, head: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", cache)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.server.waiting(self.connection, True)  # until the client has taken the answer
        try:
            self.end_headers()
            if not head:
                self.wfile.write(body)
        finally:
            self.server.waiting(self.connection, False)

    def _json(self, obj, status: int = 200, head: bool = False) -> None:
        self._send(status, dumps(obj).encode(), "application/json; charset=utf-8", head=head)

    def _not_found(self, head: bool = False) -> None:
        self._json({"error": "not found"}, HTTPStatus.NOT_FOUND, head=head)

    # -- methods

    def do_GET(self, head: bool = False) -> None:
        if self.server.check_host and not self._host_ok():
            self._send(HTTPStatus.FORBIDDEN, b"forbidden host\n", "text/plain; charset=utf-8",
                       head=head)
            return
        path = urlsplit(self.path).path
        try:
            self._route(path, head)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as exc:  # one line to the page, never a traceback
            self._json({"error": one_line(exc)},
                       HTTPStatus.INTERNAL_SERVER_ERROR, head=head)

    def do_HEAD(self) -> None:
        self.do_GET(head=True)

    def _refuse(self) -> None:
        self._send(HTTPStatus.METHOD_NOT_ALLOWED, b"read-only: GET only\n",
                   "text/plain; charset=utf-8", extra={"Allow": "GET, HEAD"})

    do_POST = do_PUT = do_DELETE = do_PATCH = _refuse

    def _host_ok(self) -> bool:
        host = (self.headers.get("Host") or "").strip()
        if host.startswith("["):
            name = host[1 : host.find("]")] if "]" in host else host
        else:
            name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        return _loopback(name.lower())

    def _route(self, path: str, head: bool) -> None:
        srv = self.server
        if path in ("/", "/index.html"):
            self._send(200, srv.index, "text/html; charset=utf-8", cache="no-cache",
                       extra={"Content-Security-Policy": CSP}, head=head)
            return
        if path.startswith("/static/"):
            name = path[len("/static/"):]
            asset = srv.assets.get(name)  # exact names only: no filesystem lookup from the URL
            if asset is None:
                self._not_found(head)
                return
            body, ctype = asset
            cache = "public, max-age=86400" if name in BUNDLES else "no-cache"
            self._send(200, body, f"{ctype}; charset=utf-8", cache=cache, head=head)
            return
        if path == "/favicon.ico":
            self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon", head=head)
            return
        if not path.startswith("/api/"):
            self._not_found(head)
            return
        dash = srv.dashboard
        parts = path[len("/api/"):].split("/")
        if parts == ["version"]:
            self._json({"version": dash.version()}, head=head)
        elif parts == ["summary"]:
            self._json(dash.summary(), head=head)
        elif parts == ["runs"]:
            self._json(dash.runs(), head=head)
        elif parts == ["gradients"]:
            self._json(dash.gradients(), head=head)
        elif (len(parts) == 2 and parts[0] in ("cell", "curve", "gradients", "gradflow")
              and ID_RE.match(parts[1])):
            payload = {"cell": dash.cell, "curve": dash.curve, "gradients": dash.gradients,
                       "gradflow": dash.gradflow}[parts[0]](parts[1])
            if payload is None:
                self._not_found(head)
            else:
                self._json(payload, head=head)
        else:
            self._not_found(head)


def make_server(db, host: str = "127.0.0.1", port: int = 0, quiet: bool = True,
                deadline: float = REQUEST_DEADLINE, **options) -> DashboardServer:
    """A bound, not yet serving, server (``port`` 0: a free port; see ``.url``)."""
    return DashboardServer((host, port), Dashboard(db, **options), quiet=quiet,
                           deadline=deadline)


def serve(server: DashboardServer) -> None:
    """Serve until Ctrl-C (or ``server.shutdown()`` from another thread), then close."""
    try:
        server.serve_forever(poll_interval=0.25)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
