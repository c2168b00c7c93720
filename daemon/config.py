"""config.yaml: offices, people, mailboxes, SMTP profiles, database, archive, intake settings.

Validated with pydantic; every problem is reported in Italian with file, line and key path.
Secrets are never written in the file: it names environment variables (`password_env`).
`SPORTELLO_DATABASE_URL` and `SPORTELLO_ARCHIVE_DIR` override the database URL and archive path.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from daemon.workcalendar import CalendarSettings
from daemon.yamlfiles.source import (
    YamlDocument,
    YamlProblem,
    YamlProblems,
    YamlSyntaxError,
    load_yaml,
    pydantic_problems,
)

__all__ = [
    "ArchiveConfig",
    "Config",
    "ConfigError",
    "DatabaseConfig",
    "ImapSettings",
    "LmtpConfig",
    "LoggingConfig",
    "Mailbox",
    "OAuth2Settings",
    "MetricsConfig",
    "Office",
    "Person",
    "SmtpProfile",
    "load_config",
    "resolve_config_path",
    "split_listen",
]

ENV_CONFIG = "SPORTELLO_CONFIG"
ENV_DATABASE_URL = "SPORTELLO_DATABASE_URL"
ENV_ARCHIVE_DIR = "SPORTELLO_ARCHIVE_DIR"

Security = Literal["tls", "starttls", "plain"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _secret(env_name: str | None) -> str | None:
    return os.environ.get(env_name) if env_name else None


class Office(_Strict):
    id: str = Field(pattern=r"^[A-Z]{2,4}$")
    name: str = Field(min_length=1)
    province: str = Field(pattern=r"^[A-Z]{2}$")
    region: str = Field(min_length=1)
    kind: Literal["provinciale", "regionale", "nazionale"] = "provinciale"
    timezone: str = "Europe/Rome"


class Person(_Strict):
    id: str = Field(pattern=r"^[a-z0-9_.-]+$")
    name: str = Field(min_length=1)
    address: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    roles: tuple[str, ...] = ()
    offices: tuple[str, ...] = ()


class OAuth2Settings(_Strict):
    """Where an XOAUTH2 access token comes from; the secrets are named by environment variables."""

    # microsoft: client credentials on Microsoft Entra ID (msal); generic: any OAuth2 token endpoint.
    provider: Literal["microsoft", "generic"]
    client_id: str = Field(min_length=1)
    client_secret_env: str = Field(min_length=1)
    tenant: str | None = None  # microsoft: the directory (tenant) id or domain
    token_url: str | None = None  # generic: the token endpoint
    # generic: a refresh token (e.g. Google Workspace) in this variable; absent: client credentials grant.
    refresh_token_env: str | None = None
    # microsoft default: https://outlook.office365.com/.default (IMAP and SMTP of Exchange Online).
    scope: str | None = None
    # A token is renewed this long before it expires (and at once if the server refuses it).
    refresh_before_seconds: float = Field(default=300.0, ge=0)

    @model_validator(mode="after")
    def _provider_fields(self) -> OAuth2Settings:
        if self.provider == "microsoft" and not self.tenant:
            raise ValueError("provider microsoft: indicare tenant")
        if self.provider == "generic" and not self.token_url:
            raise ValueError("provider generic: indicare token_url")
        return self

    def secret(self) -> str | None:
        return _secret(self.client_secret_env)

    def refresh_token(self) -> str | None:
        return _secret(self.refresh_token_env)


def _oauth2_given(auth: str, oauth2: OAuth2Settings | None) -> None:
    if auth == "oauth2" and oauth2 is None:
        raise ValueError("auth: oauth2 richiede la sezione oauth2 (provider, client_id, client_secret_env, ...)")


class ImapSettings(_Strict):
    host: str
    port: int = Field(ge=1, le=65535)
    security: Security = "tls"
    username: str
    password_env: str | None = None
    # password: LOGIN with the password in password_env; oauth2: XOAUTH2 with a token (section oauth2).
    auth: Literal["password", "oauth2"] = "password"
    oauth2: OAuth2Settings | None = None
    folder: str = "INBOX"
    processed_folder: str = "Elaborati"
    idle: bool = True
    idle_timeout_seconds: int = Field(default=300, ge=5, le=1740)
    poll_seconds: float = Field(default=30, gt=0, le=3600)
    batch_size: int = Field(default=200, ge=1, le=5000)
    timeout_seconds: float = Field(default=30, gt=0, le=600)
    # Servers limit the messages of one session (some with a 421, some with 4xx answers to MAIL):
    # the sender starts a new session before reaching the limit.
    max_messages_per_connection: int = Field(default=100, ge=1, le=100_000)

    def password(self) -> str | None:
        return _secret(self.password_env)

    @model_validator(mode="after")
    def _auth(self) -> ImapSettings:
        _oauth2_given(self.auth, self.oauth2)
        return self

    @property
    def sync_period_seconds(self) -> float:
        """How often a healthy worker syncs at least: at the end of each IDLE period, or each poll."""
        return float(self.idle_timeout_seconds) if self.idle else self.poll_seconds


class SmtpProfile(_Strict):
    id: str
    host: str
    port: int = Field(ge=1, le=65535)
    security: Security = "starttls"
    username: str | None = None
    password_env: str | None = None
    auth: Literal["password", "oauth2"] = "password"
    oauth2: OAuth2Settings | None = None
    pec: bool = False
    timeout_seconds: float = Field(default=30, gt=0, le=600)
    # Servers limit the messages of one session (some with a 421, some with 4xx answers to MAIL):
    # the sender starts a new session before reaching the limit.
    max_messages_per_connection: int = Field(default=100, ge=1, le=100_000)

    def password(self) -> str | None:
        return _secret(self.password_env)

    @model_validator(mode="after")
    def _auth(self) -> SmtpProfile:
        _oauth2_given(self.auth, self.oauth2)
        if self.auth == "oauth2" and not self.username:
            raise ValueError("auth: oauth2 richiede username (l'indirizzo della casella)")
        return self


class Mailbox(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    address: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    name: str = ""
    office: str
    kind: Literal["ordinaria", "pec"] = "ordinaria"
    status: Literal["attiva", "dismessa"] = "attiva"
    level: Literal["provinciale", "regionale", "nazionale"] = "provinciale"
    smtp_profile: str
    imap: ImapSettings | None = None
    # Addresses allowed to write here (empty: anyone); rules decide what to do with the others.
    allowed_senders: tuple[str, ...] = ()


class DatabaseConfig(_Strict):
    url: str = "sqlite:///var/sportello.db"
    echo: bool = False


class ArchiveConfig(_Strict):
    path: str = "var/archive"
    fsync: bool = True


class IntakeConfig(_Strict):
    max_message_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    reconnect_min_seconds: float = Field(default=1.0, gt=0)
    reconnect_max_seconds: float = Field(default=300.0, gt=0)
    # A mailbox unreadable for this long raises an alert for the admin (once per outage).
    alert_after_seconds: float = Field(default=300.0, gt=0)
    # Longest analysis of one message (parse, PEC, classification, rules); past it: quarantine and alert.
    analysis_budget_seconds: float = Field(default=5.0, gt=0)
    # Several instances on one database: each mailbox is read by the instance holding its lease,
    # renewed while that instance lives and taken over by another once it has expired.
    lease_seconds: float = Field(default=30.0, ge=1.0, le=3600.0)


class LmtpConfig(_Strict):
    # "host:port" (loopback only: LMTP has no authentication) or the path of a unix socket.
    listen: str = Field(min_length=1)


class OutboundConfig(_Strict):
    max_attempts: int = Field(default=12, ge=1, le=100)
    retry_min_seconds: float = Field(default=30.0, gt=0)
    retry_max_seconds: float = Field(default=3600.0, gt=0)
    poll_seconds: float = Field(default=2.0, gt=0)
    batch_size: int = Field(default=200, ge=1)
    # Deliver from a separate process (both cores busy); false keeps the sender in a thread.
    sender_process: bool = True
    # Acknowledgements to one address within 24 hours; past this, none (a loop brake).
    max_acks_per_sender_per_day: int = Field(default=20, ge=1)


class MetricsConfig(_Strict):
    # host:port of the HTTP endpoint with /metrics, /healthz and /readyz; absent: nothing is served.
    listen: str | None = Field(default=None, pattern=r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$")
    # /readyz fails when an email due for sending has waited this long (the sender is not working).
    outbox_stuck_seconds: float = Field(default=900.0, gt=0)
    # A mailbox must have synced within its IDLE period (or poll interval) plus this margin.
    sync_grace_seconds: float = Field(default=120.0, gt=0)

    @property
    def address(self) -> tuple[str, int] | None:
        if self.listen is None:
            return None
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


class LoggingConfig(_Strict):
    # text: one readable line per event; json: one JSON object per line, for a log collector.
    format: Literal["text", "json"] = "text"
    level: Literal["debug", "info", "warning", "error"] = "info"


class InstanceConfig(_Strict):
    name: str = "sportello"
    message_id_domain: str = Field(default="sportello.invalid", pattern=r"^[A-Za-z0-9.-]+$")
    answer_working_days: int = Field(default=10, ge=1, le=90)
    # The HMAC secret that signs the tokens of our Message-IDs and our loop header: read from this
    # environment variable; unset, a random one is generated once and kept in `secret_file`.
    secret_env: str = "SPORTELLO_SECRET"
    secret_file: str = "var/sportello.secret"


class AuthenticationConfig(_Strict):
    """Who may speak for a referent or an allowed sender (RFC 8601 Authentication-Results)."""

    # Only the topmost Authentication-Results, and only from these receiving servers, is believed.
    trusted_authserv_ids: tuple[str, ...] = ()


class ConversationConfig(_Strict):
    # A requester's reply within this many working days of the closing reopens the ticket; later
    # it opens a new ticket linked to the old one.
    reopen_working_days: int = Field(default=10, ge=0, le=365)
    # Mail between our own mailboxes (escalations) is work up to this many hops, then a loop.
    max_hops: int = Field(default=3, ge=1, le=10)
    # Notices to the people who work a ticket (new ticket, new message from the requester).
    notify_workers: bool = True


class Config(_Strict):
    instance: InstanceConfig = InstanceConfig()
    database: DatabaseConfig = DatabaseConfig()
    archive: ArchiveConfig = ArchiveConfig()
    intake: IntakeConfig = IntakeConfig()
    outbound: OutboundConfig = OutboundConfig()
    # Delivery by the mail server (LMTP); absent: mail is only read over IMAP.
    lmtp: LmtpConfig | None = None
    metrics: MetricsConfig = MetricsConfig()
    logging: LoggingConfig = LoggingConfig()
    authentication: AuthenticationConfig = AuthenticationConfig()
    conversation: ConversationConfig = ConversationConfig()
    offices: tuple[Office, ...] = Field(min_length=1)
    people: tuple[Person, ...] = ()
    # Who reads the alerts digest: ids of people above, or email addresses.
    admins: tuple[str, ...] = ()
    smtp_profiles: tuple[SmtpProfile, ...] = Field(min_length=1)
    mailboxes: tuple[Mailbox, ...] = Field(min_length=1)
    # The working-day calendar (daemon.workcalendar owns its model and its arithmetic).
    calendar: CalendarSettings = CalendarSettings()
    # Extra sections owned by later components (PEC, rules) live under their own keys.
    pec: dict[str, object] = Field(default_factory=dict)
    routing: dict[str, object] = Field(default_factory=dict)

    # Where the file was loaded from, for resolving relative paths.
    base_dir: str = Field(default=".", exclude=True)

    def office(self, office_id: str) -> Office:
        return next(o for o in self.offices if o.id == office_id)

    def mailbox(self, mailbox_id: str) -> Mailbox:
        for m in self.mailboxes:
            if m.id == mailbox_id:
                return m
        raise KeyError(mailbox_id)

    def smtp_profile(self, profile_id: str) -> SmtpProfile:
        return next(p for p in self.smtp_profiles if p.id == profile_id)

    def person(self, person_id: str) -> Person | None:
        return next((p for p in self.people if p.id == person_id), None)

    def person_by_address(self, address: str) -> Person | None:
        address = address.lower()
        return next((p for p in self.people if p.address.lower() == address), None)

    def people_with_role(self, role: str, office: str | None = None) -> list[Person]:
        return [p for p in self.people if role in p.roles and (office is None or not p.offices or office in p.offices)]

    @property
    def admin_addresses(self) -> tuple[str, ...]:
        people = {p.id: p.address for p in self.people}
        return tuple(dict.fromkeys(people.get(a, a) for a in self.admins))

    @property
    def own_addresses(self) -> frozenset[str]:
        return frozenset(m.address.lower() for m in self.mailboxes)

    def resolve_path(self, value: str) -> Path:
        path = Path(value)
        return path if path.is_absolute() else Path(self.base_dir) / path

    @property
    def archive_dir(self) -> Path:
        return self.resolve_path(self.archive.path)

    @property
    def database_url(self) -> str:
        url = self.database.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
            return prefix + str(self.resolve_path(url[len(prefix) :]).resolve())
        return url


class ConfigError(YamlProblems):
    """Problems in a configuration file."""


def _cross_check(doc: YamlDocument, cfg: Config) -> list[YamlProblem]:
    problems: list[YamlProblem] = []
    for section in ("offices", "people", "smtp_profiles", "mailboxes"):
        seen: set[str] = set()
        for i, item in enumerate(getattr(cfg, section)):
            if item.id in seen:
                problems.append(doc.problem([section, i, "id"], f"identificativo duplicato: {item.id}"))
            seen.add(item.id)
    plain = "security: plain è ammesso solo verso 127.0.0.1/localhost; usare tls o starttls"
    for i, m in enumerate(cfg.mailboxes):
        if m.imap and m.imap.security == "plain" and not _is_loopback(m.imap.host):
            problems.append(doc.problem(["mailboxes", i, "imap", "host"], plain))
    for i, p in enumerate(cfg.smtp_profiles):
        if p.security == "plain" and not _is_loopback(p.host):
            problems.append(doc.problem(["smtp_profiles", i, "host"], plain))
    offices = {o.id for o in cfg.offices}
    profiles = {p.id for p in cfg.smtp_profiles}
    for i, m in enumerate(cfg.mailboxes):
        if m.office not in offices:
            problems.append(
                doc.problem(
                    ["mailboxes", i, "office"],
                    f"ufficio sconosciuto: {m.office} (definiti: {', '.join(sorted(offices))})",
                )
            )
        if m.smtp_profile not in profiles:
            problems.append(
                doc.problem(["mailboxes", i, "smtp_profile"], f"profilo SMTP sconosciuto: {m.smtp_profile}")
            )
    for i, person in enumerate(cfg.people):
        for off in person.offices:
            if off not in offices:
                problems.append(doc.problem(["people", i, "offices"], f"ufficio sconosciuto: {off}"))
    people_ids = {p.id for p in cfg.people}
    for i, admin in enumerate(cfg.admins):
        if admin not in people_ids and "@" not in admin:
            problems.append(doc.problem(["admins", i], f"né una persona di people né un indirizzo email: {admin}"))
    for office_id in cfg.calendar.patron_subdivision:
        if office_id not in offices:
            where = ["calendar", "patron_subdivision", office_id]
            problems.append(doc.problem(where, f"ufficio sconosciuto: {office_id}"))
    for i, closure in enumerate(cfg.calendar.closures):
        for off in closure.uffici:
            if off not in offices:
                problems.append(doc.problem(["calendar", "closures", i, "uffici"], f"ufficio sconosciuto: {off}"))
    if cfg.lmtp is not None:
        problems.extend(_lmtp_problems(doc, cfg.lmtp))
    addresses: dict[str, int] = {}
    for i, m in enumerate(cfg.mailboxes):
        key = m.address.lower()
        if key in addresses:
            problems.append(
                doc.problem(
                    ["mailboxes", i, "address"], f"indirizzo già usato dalla casella {cfg.mailboxes[addresses[key]].id}"
                )
            )
        addresses[key] = i
    return problems


def split_listen(value: str) -> tuple[str, int] | str:
    """LMTP `listen`: (host, port) for "host:port", the path itself for a unix socket."""
    if value.startswith(("/", ".")):
        return value
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(value)
    return host.strip("[]"), int(port)


def _lmtp_problems(doc: YamlDocument, lmtp: LmtpConfig) -> list[YamlProblem]:
    try:
        where = split_listen(lmtp.listen)
    except ValueError:
        message = (
            f"indirizzo non valido: {lmtp.listen!r} (atteso host:porta, es. 127.0.0.1:2424, o il percorso di un socket)"
        )
        return [doc.problem(["lmtp", "listen"], message)]
    if isinstance(where, tuple) and not _is_loopback(where[0]):
        message = "LMTP non ha autenticazione: ammesso solo 127.0.0.1/localhost o un socket unix"
        return [doc.problem(["lmtp", "listen"], message)]
    return []


def resolve_config_path(path: str | Path | None) -> Path:
    if path:
        return Path(path)
    return Path(os.environ.get(ENV_CONFIG, "config.yaml"))


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Load and validate config.yaml; raise `ConfigError` with every problem found."""
    env = os.environ if env is None else env
    file = resolve_config_path(path)
    if not file.exists():
        raise ConfigError([YamlProblem(str(file), None, "", "file di configurazione non trovato")])
    try:
        doc = load_yaml(file)
    except YamlSyntaxError as exc:
        raise ConfigError([exc.problem]) from exc
    if not isinstance(doc.data, dict):
        raise ConfigError([doc.problem([], "il file deve contenere una mappa chiave: valore")])
    data = dict(doc.data)
    data["base_dir"] = str(file.resolve().parent)
    if env.get(ENV_DATABASE_URL):
        data["database"] = {**(data.get("database") or {}), "url": env[ENV_DATABASE_URL]}
    if env.get(ENV_ARCHIVE_DIR):
        data["archive"] = {**(data.get("archive") or {}), "path": env[ENV_ARCHIVE_DIR]}
    _reject_inline_secrets(doc, data)
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(pydantic_problems(doc, exc)) from None
    problems = _cross_check(doc, cfg)
    if problems:
        raise ConfigError(problems)
    return cfg


def _reject_inline_secrets(doc: YamlDocument, data: dict[str, object]) -> None:
    problems: list[YamlProblem] = []

    def walk(node: object, path: list[str | int]) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if str(k).lower() in {"password", "secret", "token", "pass"}:
                    problems.append(
                        doc.problem(
                            [*path, k],
                            "i segreti non vanno scritti nel file: "
                            "indicare il nome di una variabile d'ambiente con password_env",
                        )
                    )
                walk(v, [*path, k])
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, [*path, i])

    walk(data, [])
    if problems:
        raise ConfigError(problems)
