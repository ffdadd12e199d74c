"""Times sequential HTTPS GETs; run by bench/proxy_overhead.py inside the sandbox namespace.

Standard library only (it runs under the system python3 as an unprivileged user). Prints the
per-request latencies in milliseconds as a JSON list. Modes: `keepalive` (one connection) or
`newconn` (a new TCP+TLS connection per request).
"""

from __future__ import annotations

import http.client
import json
import ssl
import sys
import time


def main() -> None:
    mode, host, path = sys.argv[1], sys.argv[2], sys.argv[3]
    n, warmup, bundle = int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
    ctx = ssl.create_default_context(cafile=bundle)
    latencies = []
    conn = http.client.HTTPSConnection(host, 443, timeout=30, context=ctx)
    for i in range(warmup + n):
        if mode == "newconn":
            conn.close()
            conn = http.client.HTTPSConnection(host, 443, timeout=30, context=ctx)
        t0 = time.perf_counter()
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        elapsed = (time.perf_counter() - t0) * 1000
        if resp.status != 200 or b"upstream" not in body:
            raise SystemExit(f"unexpected response {resp.status}: {body[:200]!r}")
        if i >= warmup:
            latencies.append(elapsed)
    print(json.dumps(latencies))


if __name__ == "__main__":
    main()
