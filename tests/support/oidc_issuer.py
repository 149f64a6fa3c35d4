"""An OpenID Connect issuer on 127.0.0.1 (http.server in a thread) for sign-in tests.

It does what a federation's issuer does for the authorization code flow with PKCE:
discovery, its signing keys (RSA, with a key id), an authorization endpoint that signs in
whoever the test chose (``next_claims``) and sends the browser back with a code and the
``state``, and a token endpoint that checks the client's secret (HTTP Basic), the code, the
redirect URI and the PKCE verifier before it returns an ID token. ``tamper`` changes what
the next ID token says or how it is signed, so a test can show each check refusing it.
``log`` keeps (method, path) of every request.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

CLIENT_ID = "schoolnet-collector"
CLIENT_SECRET = "issuer-test-secret-for-the-collector-client"


def _rsa_key() -> Any:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class FakeIssuer:
    def __init__(self) -> None:
        self.key, self.other_key = _rsa_key(), _rsa_key()
        self.kid = "key-1"
        self.next_claims: dict[str, Any] = {}
        self.tamper: dict[str, Any] = {}
        self.codes: dict[str, dict[str, Any]] = {}
        self.log: list[tuple[str, str]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeIssuer:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def discovery(self) -> dict[str, Any]:
        return {"issuer": self.url, "authorization_endpoint": f"{self.url}/authorize",
                "token_endpoint": f"{self.url}/token", "jwks_uri": f"{self.url}/jwks",
                "response_types_supported": ["code"], "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"]}

    def jwks(self) -> dict[str, Any]:
        public = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def authorize(self, query: dict[str, str]) -> str:
        """The redirect back to the client, with a fresh code for ``next_claims``."""
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"query": query, "claims": dict(self.next_claims)}
        return f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query.get('state', '')})}"

    def token(self, form: dict[str, str], authorization: str) -> tuple[int, dict[str, Any]]:
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if authorization != expected:
            return 401, {"error": "invalid_client"}
        grant = self.codes.pop(form.get("code", ""), None)  # a code works once
        if grant is None or form.get("grant_type") != "authorization_code":
            return 400, {"error": "invalid_grant"}
        query = grant["query"]
        if form.get("redirect_uri") != query["redirect_uri"]:
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri"}
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
        if query.get("code_challenge_method") != "S256" or challenge.decode() != query.get("code_challenge"):
            return 400, {"error": "invalid_grant", "error_description": "PKCE"}
        now = int(time.time())
        claims = {"iss": self.url, "aud": CLIENT_ID, "iat": now, "exp": now + 300,
                  "nonce": query.get("nonce"), **grant["claims"]}
        claims.update(self.tamper.get("claims", {}))
        for name in self.tamper.get("drop", ()):
            claims.pop(name, None)
        key = self.other_key if self.tamper.get("wrong_key") else self.key
        algorithm = self.tamper.get("algorithm", "RS256")
        if algorithm == "none":
            token = jwt.encode(claims, None, algorithm="none")
        elif algorithm == "HS256":
            token = jwt.encode(claims, CLIENT_SECRET, algorithm="HS256", headers={"kid": self.kid})
        else:
            token = jwt.encode(claims, key, algorithm=algorithm, headers={"kid": self.kid})
        return 200, {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer",
                     "id_token": token, "expires_in": 300}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _json(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                fake.log.append(("GET", parts.path))
                if parts.path == "/.well-known/openid-configuration":
                    self._json(200, fake.discovery())
                elif parts.path == "/jwks":
                    self._json(200, fake.jwks())
                elif parts.path == "/authorize":
                    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                    self.send_response(302)
                    self.send_header("Location", fake.authorize(query))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    self._json(404, {"error": "not found"})

            def do_POST(self) -> None:
                parts = urlsplit(self.path)
                fake.log.append(("POST", parts.path))
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if parts.path == "/token":
                    self._json(*fake.token(form, self.headers.get("Authorization", "")))
                else:
                    self._json(404, {"error": "not found"})

        return Handler
