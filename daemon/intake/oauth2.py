"""OAuth2 access tokens for XOAUTH2 logins to IMAP and SMTP (Microsoft 365, Google Workspace, any token
endpoint): fetched when needed, reused until shortly before they expire, renewed at once when a server
refuses one."""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from daemon.config import OAuth2Settings

__all__ = ["AccessToken", "OAuth2Error", "TokenProvider", "token_provider", "xoauth2_string"]

log = logging.getLogger("sportello.oauth2")

_MICROSOFT_SCOPE = "https://outlook.office365.com/.default"
_HTTP_TIMEOUT = 30.0


class OAuth2Error(Exception):
    """No token could be obtained (endpoint unreachable, client refused, secret missing)."""


@dataclass(frozen=True)
class AccessToken:
    value: str
    expires_at: float  # time.time() scale


def xoauth2_string(user: str, token: str) -> str:
    """The SASL XOAUTH2 initial response, before base64 (IMAP and SMTP clients encode it)."""
    return f"user={user}\x01auth=Bearer {token}\x01\x01"


def _expiry(body: Mapping[str, object], now: float) -> float:
    expires_in = body.get("expires_in")
    try:
        return now + float(expires_in) if expires_in is not None else now + 3600.0  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return now + 3600.0


class TokenProvider(ABC):
    """A token shared by the sessions of one mailbox or SMTP profile (thread-safe)."""

    def __init__(self, refresh_before: float, clock: Callable[[], float] = time.time) -> None:
        self.refresh_before = refresh_before
        self.clock = clock
        self._lock = threading.Lock()
        self._current: AccessToken | None = None
        self.fetched = 0  # tokens obtained so far (for diagnostics and tests)

    def token(self) -> str:
        with self._lock:
            current = self._current
            if current is None or self.clock() >= current.expires_at - self.refresh_before:
                current = self._fetch()
                self._current = current
                self.fetched += 1
                log.info("token OAuth2 ottenuto, valido per %.0f s", current.expires_at - self.clock())
            return current.value

    def invalidate(self) -> None:
        """The server refused the token: the next `token()` gets a new one."""
        with self._lock:
            self._current = None

    @abstractmethod
    def _fetch(self) -> AccessToken: ...


class GenericTokenProvider(TokenProvider):
    """Any OAuth2 token endpoint: the refresh-token grant when a refresh token is configured (it is
    replaced in memory when the endpoint rotates it), the client-credentials grant otherwise."""

    def __init__(self, settings: OAuth2Settings, clock: Callable[[], float] = time.time) -> None:
        super().__init__(settings.refresh_before_seconds, clock)
        self.settings = settings
        self._refresh_token = settings.refresh_token()

    def _fetch(self) -> AccessToken:
        from authlib.integrations.requests_client import OAuth2Session

        s = self.settings
        secret = s.secret()
        if secret is None:
            raise OAuth2Error(f"segreto OAuth2 assente (variabile {s.client_secret_env} non impostata)")
        if s.refresh_token_env and self._refresh_token is None:
            raise OAuth2Error(f"refresh token OAuth2 assente (variabile {s.refresh_token_env} non impostata)")
        session = OAuth2Session(s.client_id, secret, scope=s.scope, token_endpoint_auth_method="client_secret_post")
        try:
            if self._refresh_token is not None:
                body = session.refresh_token(s.token_url, refresh_token=self._refresh_token, timeout=_HTTP_TIMEOUT)
            else:
                body = session.fetch_token(s.token_url, grant_type="client_credentials", timeout=_HTTP_TIMEOUT)
        except Exception as exc:  # authlib and requests raise many kinds; the caller retries later
            raise OAuth2Error(f"token OAuth2 non ottenuto da {s.token_url}: {type(exc).__name__}: {exc}") from exc
        finally:
            session.close()
        if body.get("refresh_token"):
            self._refresh_token = str(body["refresh_token"])
        if not body.get("access_token"):
            raise OAuth2Error(f"risposta senza access_token da {s.token_url}")
        return AccessToken(str(body["access_token"]), _expiry(body, self.clock()))


class MicrosoftTokenProvider(TokenProvider):
    """Microsoft Entra ID, client credentials (the application's permission on Exchange Online), via msal."""

    def __init__(self, settings: OAuth2Settings, clock: Callable[[], float] = time.time) -> None:
        super().__init__(settings.refresh_before_seconds, clock)
        self.settings = settings

    def _fetch(self) -> AccessToken:
        import msal

        s = self.settings
        secret = s.secret()
        if secret is None:
            raise OAuth2Error(f"segreto OAuth2 assente (variabile {s.client_secret_env} non impostata)")
        try:
            # A new application each time: msal's own cache would hand back the token just refused.
            app = msal.ConfidentialClientApplication(
                s.client_id,
                client_credential=secret,
                authority=f"https://login.microsoftonline.com/{s.tenant}",
                timeout=_HTTP_TIMEOUT,
            )
            body = app.acquire_token_for_client(scopes=[s.scope or _MICROSOFT_SCOPE])
        except Exception as exc:
            raise OAuth2Error(f"token Microsoft non ottenuto: {type(exc).__name__}: {exc}") from exc
        if not body or "access_token" not in body:
            error = (body or {}).get("error_description") or (body or {}).get("error") or "risposta vuota"
            raise OAuth2Error(f"token Microsoft non ottenuto: {error}")
        return AccessToken(str(body["access_token"]), _expiry(body, self.clock()))


def token_provider(settings: OAuth2Settings, clock: Callable[[], float] = time.time) -> TokenProvider:
    if settings.provider == "microsoft":
        return MicrosoftTokenProvider(settings, clock)
    return GenericTokenProvider(settings, clock)
