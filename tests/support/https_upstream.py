"""HTTPS (443) and HTTP (80) server standing in for an API on the internet.

Run as a script inside the upstream network namespace (tests/support/sandbox_net.py):
it appends each request's headers to a JSON-lines file and answers without echoing any
header value, saying only whether Authorization carried the expected secret.
"""

from __future__ import annotations

import http.server
import json
import ssl
import sys
import threading
from pathlib import Path

LOG_PATH, CERT, KEY, SECRET_FILE = sys.argv[1:5]
SECRET = Path(SECRET_FILE).read_text(encoding="utf-8").strip()
_lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body are separate writes: without this, Nagle plus delayed ACK
    # stall every keep-alive response by 40 ms.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        record = {
            "host": self.headers.get("Host"),
            "path": self.path,
            "headers": dict(self.headers.items()),
        }
        with _lock, open(LOG_PATH, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        auth_ok = self.headers.get("Authorization", "") == "Bearer " + SECRET
        body = f"upstream {self.headers.get('Host')} {self.path} auth-ok={auth_ok}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


def main() -> None:
    tls = Server(("0.0.0.0", 443), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(CERT, KEY)
    tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
    plain = Server(("0.0.0.0", 80), Handler)
    threading.Thread(target=plain.serve_forever, daemon=True).start()
    print("ready", flush=True)
    tls.serve_forever()


if __name__ == "__main__":
    main()
