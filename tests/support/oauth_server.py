"""A local OAuth2 authorisation server for tests: a token endpoint (client credentials and refresh token
grants) and an RFC 7662 introspection endpoint, on a free loopback port, in a thread of the test."""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["OAuthServer"]


@dataclass
class _Issued:
    username: str
    expires_at: float
    revoked: bool = False


@dataclass
class OAuthServer:
    """Issues tokens for `username` to the client `client_id`/`client_secret`; `lifetime` seconds each.

    `grants` records the grant type of every token request, `introspections` every token checked."""

    client_id: str
    client_secret: str
    username: str
    lifetime: float = 3600.0
    refresh_token: str = "rt-0"
    grants: list[str] = field(default_factory=list)
    introspections: list[str] = field(default_factory=list)
    tokens: dict[str, _Issued] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
                auth = self.headers.get("Authorization", "")
                if self.path == "/token":
                    status, body = server._token(form, auth)
                elif self.path == "/introspect":
                    status, body = server._introspect(form)
                else:
                    status, body = 404, {"error": "not_found"}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self._http.server_address[1])
        self._thread = threading.Thread(target=self._http.serve_forever, name="oauth-test", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> OAuthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=5)

    def revoke_all(self) -> None:
        with self._lock:
            for issued in self.tokens.values():
                issued.revoked = True

    def user_of(self, token: str) -> str | None:
        """Who an active token belongs to (None if unknown, revoked or expired): for servers checking tokens."""
        return self._introspect({"token": token})[1].get("username")  # type: ignore[return-value]

    def _client_ok(self, form: dict[str, str], auth: str) -> bool:
        if auth.startswith("Basic "):
            import base64

            user, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            user, secret = urllib.parse.unquote(user), urllib.parse.unquote(secret)
        else:
            user, secret = form.get("client_id", ""), form.get("client_secret", "")
        return user == self.client_id and secret == self.client_secret

    def _token(self, form: dict[str, str], auth: str) -> tuple[int, dict[str, object]]:
        grant = form.get("grant_type", "")
        with self._lock:
            self.grants.append(grant)
            if not self._client_ok(form, auth):
                return 401, {"error": "invalid_client"}
            if grant == "refresh_token" and form.get("refresh_token") != self.refresh_token:
                return 400, {"error": "invalid_grant"}
            if grant not in ("client_credentials", "refresh_token"):
                return 400, {"error": "unsupported_grant_type"}
            token = f"at-{next(self._numbers)}"
            self.tokens[token] = _Issued(self.username, time.time() + self.lifetime)
            body: dict[str, object] = {"access_token": token, "token_type": "Bearer", "expires_in": self.lifetime}
            if grant == "refresh_token":  # rotation: the old refresh token is spent
                self.refresh_token = f"rt-{next(self._numbers)}"
                body["refresh_token"] = self.refresh_token
            return 200, body

    def _introspect(self, form: dict[str, str]) -> tuple[int, dict[str, object]]:
        token = form.get("token", "")
        with self._lock:
            self.introspections.append(token)
            issued = self.tokens.get(token)
            if issued is None or issued.revoked or issued.expires_at < time.time():
                return 200, {"active": False}
            return 200, {"active": True, "username": issued.username}
