"""A fake UniFi Network controller on 127.0.0.1 (http.server in a thread), replaying a
recorded ``stat/sta`` answer behind either login style.

``style="unifi_os"``: POST /api/auth/login sets a TOKEN cookie and an X-CSRF-Token header;
/proxy/network/api/s/<site>/stat/sta needs both; /api/login does not exist (404), as on a
UniFi OS console. ``style="classic"``: POST /api/login sets a unifises cookie;
/api/s/<site>/stat/sta needs it; /api/auth/login is a 404. A wrong password gets HTTP 400
with {"meta": {"rc": "error", "msg": "api.err.Invalid"}} (classic) or 401 (UniFi OS); an
unknown site gets api.err.NoSiteContext. ``log`` records (method, path) of every request.
"""

from __future__ import annotations

import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal


def _error(message: str) -> dict[str, Any]:
    return {"meta": {"rc": "error", "msg": message}, "data": []}


class FakeUnifiController:
    def __init__(self, clients: dict[str, Any], *, style: Literal["unifi_os", "classic"],
                 username: str = "census", password: str = "correct horse", site: str = "default") -> None:
        self.clients, self.style, self.site = clients, style, site
        self.username, self.password = username, password
        self.log: list[tuple[str, str]] = []
        self.logins: list[dict[str, Any]] = []
        self.session, self.csrf = secrets.token_hex(8), secrets.token_hex(8)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeUnifiController:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _cookie_ok(self, name: str) -> bool:
                return f"{name}={fake.session}" in (self.headers.get("Cookie") or "")

            def do_POST(self) -> None:
                fake.log.append(("POST", self.path))
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                login_path = "/api/auth/login" if fake.style == "unifi_os" else "/api/login"
                if self.path == login_path:
                    fake.logins.append(body)
                    good = body.get("username") == fake.username and body.get("password") == fake.password
                    if fake.style == "unifi_os":
                        if not good:
                            return self._send(401, {"code": "AUTHENTICATION_FAILED_INVALID_CREDENTIALS"})
                        return self._send(200, {"username": fake.username}, {
                            "Set-Cookie": f"TOKEN={fake.session}; Path=/; HttpOnly",
                            "X-CSRF-Token": fake.csrf})
                    if not good:
                        return self._send(400, _error("api.err.Invalid"))
                    return self._send(200, {"meta": {"rc": "ok"}, "data": []},
                                      {"Set-Cookie": f"unifises={fake.session}; Path=/"})
                if self.path in ("/api/auth/logout", "/api/logout"):
                    return self._send(200, {})
                return self._send(404, {"error": "not found"})

            def do_GET(self) -> None:
                fake.log.append(("GET", self.path))
                prefix = "/proxy/network/api/s/" if fake.style == "unifi_os" else "/api/s/"
                if not self.path.startswith(prefix) or not self.path.endswith("/stat/sta"):
                    return self._send(404, {"error": "not found"})
                if fake.style == "unifi_os":
                    if not (self._cookie_ok("TOKEN") and self.headers.get("X-CSRF-Token") == fake.csrf):
                        return self._send(401, {"error": "unauthorized"})
                elif not self._cookie_ok("unifises"):
                    return self._send(401, _error("api.err.LoginRequired"))
                site = self.path[len(prefix):-len("/stat/sta")]
                if site != fake.site:
                    return self._send(400, _error("api.err.NoSiteContext"))
                return self._send(200, fake.clients)

        return Handler
