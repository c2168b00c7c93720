"""One SMTP connection to a configured profile, and the classification of its answers."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass

from daemon.config import SmtpProfile
from daemon.intake.oauth2 import OAuth2Error, TokenProvider, xoauth2_string

__all__ = ["SendResult", "SmtpConnection"]


@dataclass(frozen=True)
class SendResult:
    result: str  # sent | temporary | permanent
    code: int | None
    detail: str


def _decode(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class SmtpConnection:
    def __init__(self, profile: SmtpProfile, password: str | None = None, tokens: TokenProvider | None = None) -> None:
        self.profile = profile
        self.password = password if password is not None else profile.password()
        self.tokens = tokens  # for auth: oauth2, shared by the profile's sessions
        self._smtp: smtplib.SMTP | None = None
        self.sent = 0  # messages the server accepted in this session

    def open(self) -> None:
        p = self.profile
        if p.security == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                p.host, p.port, timeout=p.timeout_seconds, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(p.host, p.port, timeout=p.timeout_seconds)
            if p.security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
        try:
            if self.tokens is not None and p.username:
                self._oauth2_login(smtp, p.username, self.tokens)
            elif p.username:
                smtp.login(p.username, self.password or "")
        except BaseException:
            smtp.close()
            raise
        self._smtp = smtp
        self.sent = 0

    @staticmethod
    def _oauth2_login(smtp: smtplib.SMTP, user: str, tokens: TokenProvider) -> None:
        smtp.ehlo_or_helo_if_needed()

        def attempt() -> None:
            try:
                initial = xoauth2_string(user, tokens.token())
            except OAuth2Error as exc:
                raise smtplib.SMTPException(str(exc)) from exc
            # On a refusal the server sends a JSON challenge; the answer to it is an empty line.
            smtp.auth("XOAUTH2", lambda challenge=None: "" if challenge else initial)

        try:
            attempt()
        except smtplib.SMTPAuthenticationError:
            tokens.invalidate()  # refused before its expiry: one new token, one more try
            attempt()

    def send(self, sender: str, recipients: list[str], raw: bytes) -> SendResult:
        assert self._smtp is not None, "open() first"
        try:
            refused = self._smtp.sendmail(sender, recipients, raw)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [c for c, _ in exc.recipients.values()]
            code = max(codes) if codes else None
            kind = "permanent" if code and code >= 500 else "temporary"
            return SendResult(kind, code, "destinatari rifiutati: " + ", ".join(exc.recipients))
        except smtplib.SMTPResponseException as exc:
            kind = "permanent" if exc.smtp_code >= 500 else "temporary"
            return SendResult(kind, exc.smtp_code, _decode(exc.smtp_error))
        self.sent += 1
        if refused:
            # Some recipients accepted: the message is out; the refusals are recorded as detail.
            return SendResult("sent", 250, "rifiutati in parte: " + ", ".join(refused))
        return SendResult("sent", 250, "accettato")

    @property
    def exhausted(self) -> bool:
        """The session carried as many messages as the profile allows: the next one needs a new one."""
        return self.sent >= self.profile.max_messages_per_connection

    def close(self) -> None:
        if self._smtp is None:
            return
        try:
            self._smtp.quit()
        except (smtplib.SMTPException, OSError):
            self._smtp.close()
        self._smtp = None
