"""How long the dashboard keeps a page waiting behind clients that never finish their request.

Starts the dashboard on a free port and prints

* how long a client that trickles its request one byte every ``--trickle`` seconds is held
  before the server hangs up (the whole-request deadline: 10 s);
* how long a real request waits while ``--stuck`` clients have asked for the 4.8 MB plotly
  bundle and never read it.

    python benchmarks/dashboard_stuck_clients.py [--stuck 40] [--trickle 0.5]
"""

from __future__ import annotations

import argparse
import http.client
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))


def held_for(host: str, port: int, every: float, cap: float = 60.0) -> float:
    """Seconds until the server hangs up on a request sent one byte every ``every`` seconds."""
    s = socket.create_connection((host, port))
    s.settimeout(every)
    t0 = time.monotonic()
    request = b"GET /api/version HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 10_000
    try:
        for byte in request:
            if time.monotonic() - t0 > cap:
                break
            s.sendall(bytes([byte]))
            try:
                if s.recv(1) == b"":
                    break
            except TimeoutError:
                pass
    except OSError:
        pass
    finally:
        s.close()
    return time.monotonic() - t0


def wait_behind_stuck(host: str, port: int, n: int) -> float:
    """Seconds a real request waits while ``n`` clients never read the bundle they asked for."""
    stuck = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect((host, port))
        s.sendall(b"GET /static/plotly-gl.js HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        stuck.append(s)
    time.sleep(0.5)
    t0 = time.monotonic()
    conn = http.client.HTTPConnection(host, port, timeout=120)
    conn.request("GET", "/api/version", headers={"Host": f"127.0.0.1:{port}"})
    conn.getresponse().read()
    waited = time.monotonic() - t0
    conn.close()
    for s in stuck:
        s.close()
    return waited


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stuck", type=int, default=40)
    parser.add_argument("--trickle", type=float, default=0.5)
    args = parser.parse_args()
    from test_bad_input import make_results

    from seqbench.dashboard.server import make_server

    with tempfile.TemporaryDirectory() as tmp:
        server = make_server(make_results(Path(tmp) / "r.sqlite"))
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        host, port = server.server_address[:2]
        bundle = len(server.assets["plotly-gl.js"][0]) / 1e6
        print(f"trickled request (a byte every {args.trickle:g} s) held for "
              f"{held_for(host, port, args.trickle):.1f} s")
        print(f"a request behind {args.stuck} clients that never read the {bundle:.1f} MB "
              f"bundle waited {wait_behind_stuck(host, port, args.stuck):.2f} s")
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    main()
