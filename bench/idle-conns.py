#!/usr/bin/env python3
"""The client side of bench/idle-conns (run by it, not by hand).

Opens N TLS connections to a running strapontind, one after the other,
each completing its handshake; every second one then sends one
system.ping and reads the answer (a used-then-idle connection), the others
stay as the handshake left them. Then, with all of them idle, it reads the
daemon's VmRSS and VmHWM from /proc/PID/status, checks that a fresh client
is answered promptly and that every one of the N connections is still open
and served (one system.ping each), and prints what it measured.

Everything goes to the address given (loopback); every socket has a
timeout, so the run is bounded. Exit status 0 when every check passed.
"""

import argparse
import concurrent.futures
import json
import socket
import ssl
import sys
import time

PING = b'{"jsonrpc":"2.0","id":1,"method":"system.ping"}\n'


def status_kb(pid):
    """VmRSS and VmHWM of pid, in KiB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(rest.split()[0])
    return out["VmRSS"], out["VmHWM"]


def open_tls(ctx, host, port, timeout):
    raw = socket.create_connection((host, port), timeout=timeout)
    try:
        return ctx.wrap_socket(raw, server_hostname="localhost")
    except BaseException:
        raw.close()
        raise


def ping(s):
    """Sends one system.ping, reads one line; True if it is the answer."""
    s.sendall(PING)
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = s.recv(4096)
        if not chunk:
            return False
        buf += chunk
    try:
        answer = json.loads(buf)
    except ValueError:
        return False
    return answer.get("id") == 1 and "result" in answer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("-n", type=int, default=10000)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--settle", type=float, default=2.0)
    ap.add_argument("--prompt-ms", type=float, default=1000.0)
    a = ap.parse_args()

    ctx = ssl.create_default_context(cafile=a.ca)
    rss0, hwm0 = status_kb(a.pid)
    print(f"before: VmRSS {rss0} KiB, VmHWM {hwm0} KiB", flush=True)

    # A few threads handshake at once (OpenSSL releases the GIL): the
    # daemon, not this client, is then what bounds the pace.
    conns = []
    t0 = time.monotonic()

    def one(i):
        try:
            return open_tls(ctx, a.host, a.port, 10)
        except (OSError, ssl.SSLError) as e:
            print(f"connection {i}: {e}", file=sys.stderr)
            return None

    with concurrent.futures.ThreadPoolExecutor(a.threads) as pool:
        for s in pool.map(one, range(a.n)):
            if s is None:
                continue
            conns.append(s)
            if len(conns) % 1000 == 0:
                print(f"  {len(conns)} connections, "
                      f"{time.monotonic() - t0:.1f} s", flush=True)
    opened = len(conns)
    bad = 0
    for s in conns[::2]:
        if not ping(s):
            bad += 1
    print(f"opened {opened} of {a.n} in {time.monotonic() - t0:.1f} s; "
          f"{len(conns[::2]) - bad} pinged once", flush=True)

    time.sleep(a.settle)
    rss1, hwm1 = status_kb(a.pid)
    print(f"idle:   VmRSS {rss1} KiB, VmHWM {hwm1} KiB", flush=True)
    if opened:
        per = (rss1 - rss0) * 1024 / opened
        print(f"per connection: {per:.0f} bytes "
              f"({(rss1 - rss0) / 1024:.1f} MiB for {opened})", flush=True)

    t1 = time.monotonic()
    fresh_ok = False
    try:
        with open_tls(ctx, a.host, a.port, 10) as s:
            fresh_ok = ping(s)
    except (OSError, ssl.SSLError) as e:
        print(f"fresh client: {e}", file=sys.stderr)
    fresh_ms = (time.monotonic() - t1) * 1000
    print(f"fresh client: {'answered' if fresh_ok else 'NOT answered'} "
          f"in {fresh_ms:.1f} ms (connect, handshake, ping)", flush=True)

    lost = 0
    for s in conns:
        try:
            if not ping(s):
                lost += 1
        except (OSError, ssl.SSLError):
            lost += 1
    rss2, hwm2 = status_kb(a.pid)
    print(f"still open and served: {opened - lost} of {opened}", flush=True)
    print(f"after one ping each: VmRSS {rss2} KiB, VmHWM {hwm2} KiB",
          flush=True)
    for s in conns:
        s.close()

    ok = (opened == a.n and bad == 0 and lost == 0 and fresh_ok and
          fresh_ms <= a.prompt_ms)
    print(f"result: {'OK' if ok else 'FAILED'}: {opened} idle connections, "
          f"VmRSS {rss0} -> {rss1} KiB (+{(rss1 - rss0) / 1024:.1f} MiB)",
          flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
