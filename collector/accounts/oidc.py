"""Sign-in through OpenID Connect: the authorization code flow with PKCE (RFC 7636).

A board can let its people sign in with the education sector's federated identity instead
of a local password. The collector is a confidential client of one issuer (settings
``oidc_*``): it sends the browser to the issuer's authorization endpoint, takes the code
back at ``/login/oidc/callback``, exchanges it for an ID token at the token endpoint, and
checks that token fully: signature against the issuer's published keys, ``iss``, ``aud``
(and ``azp`` when there are several audiences), ``exp``/``iat`` with a minute's leeway, and
the ``nonce`` it sent.

No state is kept on the server between the two legs. A random secret goes into a short-lived
HttpOnly cookie, and the ``state``, the ``nonce`` and the PKCE verifier are HMACs of it: only
the browser that started the sign-in can finish it, across collector replicas, and nothing
needs cleaning up.

Who may sign in is still decided here, not by the issuer: an identity is an account when an
account is linked to it (``users.oidc_issuer`` + ``oidc_subject``), or, the first time, when
exactly one enabled account has the e-mail address the issuer vouches for
(``email_verified``), which is then linked; never a collector admin's account (in a
federation any member's identity provider could vouch for the admin's address). An identity
without an account is refused: a federation vouches for who someone is, not for what they
may see here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
from sqlalchemy import Engine, func, select, update

from collector.db.engine import writer
from collector.db.schema import users

# Signature algorithms accepted for ID tokens: asymmetric only (an HMAC-signed token would
# be signed with our own client secret, which a token endpoint we talk to over TLS already
# proves; refusing them keeps "alg" games out altogether).
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
LEEWAY = 60.0
# How long the issuer's discovery document and keys are reused before they are asked again.
CACHE_SECONDS = 3600.0
TIMEOUT = httpx.Timeout(10.0)
STATE_COOKIE = "schoolnet_oidc"
STATE_LIFETIME = 600  # seconds a sign-in may take at the issuer
ADMIN_BY_PASSWORD = "a collector admin signs in with a password, not through the identity provider"


class OidcError(Exception):
    """The sign-in did not succeed; the message is one line for the person signing in."""


@dataclass(frozen=True)
class Issuer:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


@dataclass(frozen=True)
class Identity:
    issuer: str
    subject: str
    email: str | None
    email_verified: bool
    name: str | None


def derived(secret: str, purpose: str) -> str:
    """The state, nonce or PKCE verifier of one sign-in (43 URL-safe characters)."""
    digest = hmac.new(secret.encode(), f"schoolnet oidc {purpose}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def new_sign_in_secret() -> str:
    return secrets.token_urlsafe(32)


def pkce_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class IssuerClient:
    """The issuer's endpoints and keys, fetched on first use and kept for CACHE_SECONDS."""

    def __init__(self, issuer: str, client_id: str, client_secret: str,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.issuer_url = issuer
        self.client_id = client_id
        self.client_secret = client_secret
        self._http = httpx.Client(timeout=TIMEOUT, transport=transport, follow_redirects=False)
        self._lock = threading.RLock()
        self._issuer: tuple[float, Issuer] | None = None
        self._keys: tuple[float, jwt.PyJWKSet] | None = None

    def close(self) -> None:
        self._http.close()

    def metadata(self) -> Issuer:
        with self._lock:
            if self._issuer is None or time.monotonic() - self._issuer[0] > CACHE_SECONDS:
                self._issuer = (time.monotonic(), self._discover())
            return self._issuer[1]

    def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            response = self._http.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise OidcError(f"the identity provider did not answer ({what}: {type(exc).__name__})") from None
        if response.status_code != 200:
            raise OidcError(f"the identity provider answered {response.status_code} ({what})")
        try:
            document = response.json()
        except ValueError:
            raise OidcError(f"the identity provider's {what} is not JSON") from None
        if not isinstance(document, dict):
            raise OidcError(f"the identity provider's {what} is not a JSON object")
        return document

    def _discover(self) -> Issuer:
        document = self._get_json(f"{self.issuer_url}/.well-known/openid-configuration", "discovery")
        # OpenID Connect Discovery 1.0, section 4.3: the document must name the issuer we asked.
        if str(document.get("issuer", "")).rstrip("/") != self.issuer_url:
            raise OidcError("the identity provider's discovery document names another issuer")
        fields = {}
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            value = document.get(name)
            if not isinstance(value, str) or not value.startswith(("https://", "http://")):
                raise OidcError(f"the identity provider's discovery document has no {name}")
            fields[name] = value
        return Issuer(issuer=str(document["issuer"]), **fields)

    def keys(self, refresh: bool = False) -> jwt.PyJWKSet:
        with self._lock:
            if refresh or self._keys is None or time.monotonic() - self._keys[0] > CACHE_SECONDS:
                document = self._get_json(self.metadata().jwks_uri, "keys")
                try:
                    self._keys = (time.monotonic(), jwt.PyJWKSet.from_dict(document))
                except jwt.PyJWTError:
                    raise OidcError("the identity provider published no usable keys") from None
            return self._keys[1]

    def authorization_url(self, redirect_uri: str, scopes: str, secret: str) -> str:
        endpoint = self.metadata().authorization_endpoint
        query = urlencode({
            "response_type": "code", "client_id": self.client_id, "redirect_uri": redirect_uri,
            "scope": scopes, "state": derived(secret, "state"), "nonce": derived(secret, "nonce"),
            "code_challenge": pkce_challenge(derived(secret, "pkce")),
            "code_challenge_method": "S256",
        })
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"

    def identity(self, code: str, redirect_uri: str, secret: str, now: float | None = None) -> Identity:
        """Exchanges the code and checks the ID token; the identity it vouches for."""
        token = self._exchange(code, redirect_uri, derived(secret, "pkce"))
        claims = self._verify(token, derived(secret, "nonce"), time.time() if now is None else now)
        email = claims.get("email")
        name = claims.get("name") or claims.get("preferred_username")
        return Identity(issuer=self.issuer_url, subject=str(claims["sub"]),
                        email=email.strip().lower() if isinstance(email, str) and email.strip() else None,
                        email_verified=claims.get("email_verified") is True,
                        name=name if isinstance(name, str) else None)

    def _exchange(self, code: str, redirect_uri: str, verifier: str) -> str:
        try:
            response = self._http.post(
                self.metadata().token_endpoint,
                data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                      "code_verifier": verifier},
                auth=(self.client_id, self.client_secret),  # client_secret_basic, the default
                headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise OidcError(f"the identity provider did not answer (token: {type(exc).__name__})") from None
        if response.status_code != 200:
            raise OidcError(f"the identity provider refused the sign-in code ({response.status_code})")
        try:
            body = response.json()
        except ValueError:
            body = None
        token = body.get("id_token") if isinstance(body, dict) else None
        if not isinstance(token, str):
            raise OidcError("the identity provider sent no ID token")
        return token

    def _verify(self, token: str, nonce: str, now: float) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise OidcError("the ID token is not a JWT") from None
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise OidcError(f"the ID token is signed with {algorithm!r}, which is not accepted")
        key = self._key_for(header.get("kid"))
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key=key, algorithms=[algorithm], audience=self.client_id,
                issuer=self.metadata().issuer, leeway=LEEWAY,
                options={"require": ["iss", "sub", "aud", "exp", "iat"], "verify_iat": True})
        except jwt.ExpiredSignatureError:
            raise OidcError("the ID token has expired; sign in again") from None
        except jwt.PyJWTError as exc:
            raise OidcError(f"the ID token is not valid ({type(exc).__name__})") from None
        if float(claims["iat"]) > now + LEEWAY or float(claims["exp"]) < now - LEEWAY:
            raise OidcError("the ID token is not valid now (check the clocks)")
        if not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
            raise OidcError("the ID token belongs to another sign-in")
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.client_id:
            raise OidcError("the ID token was issued to another client")
        if not str(claims.get("sub", "")).strip():
            raise OidcError("the ID token names no subject")
        return claims

    def _key_for(self, kid: Any) -> Any:
        for refresh in (False, True):  # a new key id: the issuer rotated its keys
            for key in self.keys(refresh=refresh).keys:
                if kid is None or key.key_id == kid:
                    return key.key
        raise OidcError("the ID token is signed with a key the identity provider does not publish")


def account_for(engine: Engine, identity: Identity, now: float) -> int:
    """The enabled account of this identity (linking it by verified e-mail the first time);
    raises OidcError when there is none."""
    with writer(engine) as conn, conn.begin():
        linked = conn.execute(select(users.c.id, users.c.disabled_at, users.c.role).where(
            users.c.oidc_issuer == identity.issuer, users.c.oidc_subject == identity.subject)).first()
        if linked is not None:
            if linked.disabled_at is not None:
                raise OidcError("this account is disabled")
            if linked.role == "admin":
                # Linked before it was made an admin: admins still sign in with their password.
                raise OidcError(ADMIN_BY_PASSWORD)
            conn.execute(update(users).where(users.c.id == linked.id).values(last_login_at=now))
            return int(linked.id)
        if not identity.email or not identity.email_verified:
            raise OidcError("no account here is linked to this identity, and the identity provider "
                            "did not vouch for an e-mail address to find one by")
        matches = conn.execute(select(users.c.id, users.c.oidc_subject, users.c.role).where(
            func.lower(users.c.email) == identity.email, users.c.disabled_at.is_(None))).all()
        if len(matches) == 1 and matches[0].role == "admin":
            # A federation is many identity providers; one careless member vouching for the
            # admin's address must not hand over the whole collector. Admins sign in with
            # their password.
            raise OidcError(ADMIN_BY_PASSWORD)
        if len(matches) != 1 or matches[0].oidc_subject is not None:
            raise OidcError(f"no account here for {identity.email}: ask your board's admin to add "
                            "you with this address")
        conn.execute(update(users).where(users.c.id == matches[0].id).values(
            oidc_issuer=identity.issuer, oidc_subject=identity.subject, last_login_at=now,
            updated_at=now))
        return int(matches[0].id)
