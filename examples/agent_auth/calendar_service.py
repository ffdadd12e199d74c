"""A fake "calendar" API that requires an OAuth bearer token (the example's third party).

`GET /events` answers the events of the user the token was issued to, after asking the
OAuth provider whether the token is active (RFC 7662 introspection); a missing, unknown,
expired or revoked token gets 401. Every call is recorded (`GET /_calls`) without the token,
only whether it was valid and whose it was.

    python -m examples.agent_auth.calendar_service --port 8100 \
        --introspection-url http://127.0.0.1:4445/admin/oauth2/introspect
"""

from __future__ import annotations

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

EVENTS = {
    "alice": [{"title": "Design review", "at": "09:00"}, {"title": "1:1 with Bob", "at": "14:00"}],
    "bob": [{"title": "Dentist", "at": "11:30"}],
}


class Calendar:
    def __init__(self, introspection_url: str, auth: tuple[str, str] | None = None) -> None:
        self.introspection_url = introspection_url
        self.auth = auth
        self.calls: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def whose(self, token: str) -> dict[str, Any] | None:
        r = httpx.post(self.introspection_url, data={"token": token}, auth=self.auth, timeout=10)
        info: dict[str, Any] = r.json() if r.status_code == 200 else {}
        return info if info.get("active") else None

    def handler(self) -> type[BaseHTTPRequestHandler]:
        calendar = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/_calls":
                    with calendar.lock:
                        self._send(200, list(calendar.calls))
                    return
                if self.path != "/events":
                    self._send(404, {"detail": "not found"})
                    return
                header = self.headers.get("Authorization", "")
                info = None
                if header.startswith("Bearer "):
                    info = calendar.whose(header.removeprefix("Bearer "))
                scopes = str((info or {}).get("scope", "")).split()
                with calendar.lock:
                    calendar.calls.append(
                        {
                            "valid": info is not None,
                            "sub": (info or {}).get("sub"),
                            "scopes": scopes,
                        }
                    )
                if info is None:
                    self._send(401, {"detail": "a valid bearer token is required"})
                elif "calendar.read" not in scopes:
                    self._send(403, {"detail": "the token lacks scope calendar.read"})
                else:
                    self._send(200, {"user": info["sub"], "events": EVENTS.get(info["sub"], [])})

        return Handler


def serve(port: int, introspection_url: str) -> ThreadingHTTPServer:
    """Start the calendar on 127.0.0.1:port in a thread; `.shutdown()` stops it."""
    server = ThreadingHTTPServer(("127.0.0.1", port), Calendar(introspection_url).handler())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--introspection-url", required=True)
    args = parser.parse_args()
    server = ThreadingHTTPServer(
        ("127.0.0.1", args.port), Calendar(args.introspection_url).handler()
    )
    server.serve_forever()


if __name__ == "__main__":
    main()
