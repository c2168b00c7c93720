"""A test bench for tickets over time: the shipped configuration on a private database, a Service with a
clock the test moves, the sweep, the outbox sender and a real SMTP sink that receives what is sent."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import format_datetime, getaddresses
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from daemon.config import Config
from daemon.core.pipeline import InboundItem, Outcome
from daemon.core.tickets import TicketWriter
from daemon.demo.smtp_sink import SmtpSink
from daemon.outbound.sender import OutboxSender
from daemon.service import Service
from daemon.sla import SlaRuntime
from daemon.sla.sweep import SlaSweeper, SweepStats
from storage.models import Outbox, Ticket, TicketEvent
from tests.support.mail import authenticated
from tests.support.stack import stack_config

ROME = ZoneInfo("Europe/Rome")


def rome(y: int, m: int, d: int, h: int = 10, mi: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, h, mi, tzinfo=ROME)


def mail(
    to: str,
    sender: str,
    subject: str,
    body: str = "Buongiorno,\nchiedo chiarimenti.\nGrazie\n",
    *,
    name: str = "",
    message_id: str | None = None,
    date: dt.datetime | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"{name} <{sender}>" if name else sender
    msg["To"] = to
    msg["Subject"] = subject
    # The sender's own Date header is never the receipt time: make it obviously wrong.
    msg["Date"] = format_datetime(date or dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    msg["Message-ID"] = f"<{message_id or 'm' + str(abs(hash((to, sender, subject))))}@posta.example>"
    msg.set_content(body)
    return msg.as_bytes()


@dataclass
class SentMail:
    template: str
    to: list[str]
    cc: list[str]
    rcpt: set[str]
    subject: str
    text: str  # the plain body with its whitespace collapsed: phrases survive line wrapping
    headers: Any
    ticket_id: str | None
    raw: bytes = b""


@dataclass
class SlaBench:
    config: Config
    service: Service
    runtime: SlaRuntime
    sweeper: SlaSweeper
    sender: OutboxSender
    sink: SmtpSink
    now: list[dt.datetime]
    seen: int = 0
    log: list[SentMail] = field(default_factory=list)

    def clock(self) -> dt.datetime:
        return self.now[0]

    def set_time(self, when: dt.datetime) -> None:
        self.now[0] = when

    def ingest(self, raw: bytes, mailbox: str, received_at: dt.datetime) -> Outcome:
        self.set_time(max(self.now[0], received_at))
        return self.service.ingest([InboundItem(raw=raw, mailbox_id=mailbox, source="imap", received_at=received_at)])[
            0
        ]

    def sweep_at(self, when: dt.datetime) -> SweepStats:
        self.set_time(when)
        return self.sweeper.sweep()

    def deliver(self) -> list[SentMail]:
        """Send the outbox to the sink; the messages it received since the last call."""
        while self.sender.send_due():
            pass
        with self.service.session_factory() as s:
            rows = {o.message_id: o for o in s.execute(select(Outbox)).scalars()}
        new = []
        for m in self.sink.messages[self.seen :]:
            row = rows[m.message_id]
            msg = message_from_bytes(m.raw, policy=default_policy)
            new.append(
                SentMail(
                    template=row.template,
                    to=[a for _n, a in getaddresses([str(msg["To"] or "")])],
                    cc=[a for _n, a in getaddresses([str(msg["Cc"] or "")])] if msg["Cc"] else [],
                    rcpt=set(m.rcpt_tos),
                    subject=str(msg["Subject"]),
                    text=" ".join(msg.get_body(preferencelist=("plain",)).get_content().split()),
                    headers=msg,
                    ticket_id=row.ticket_id,
                    raw=m.raw,
                )
            )
        self.seen = len(self.sink.messages)
        self.log.extend(new)
        return new

    def step(self, when: dt.datetime) -> list[SentMail]:
        """Move the clock, sweep, deliver: the SLA emails (not acknowledgements) that went out."""
        self.sweep_at(when)
        return [m for m in self.deliver() if m.template not in ("conferma_ricezione", "notifica_referente")]

    def ticket(self, ticket_id: str) -> Ticket:
        with self.service.session_factory() as s:
            t = s.get(Ticket, ticket_id)
            assert t is not None
            return t

    def events(self, ticket_id: str, kind: str | None = None) -> list[TicketEvent]:
        with self.service.session_factory() as s:
            q = select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id)
            if kind:
                q = q.where(TicketEvent.kind == kind)
            return list(s.execute(q).scalars())

    def set_state(self, ticket_id: str, state: str, when: dt.datetime) -> None:
        self.set_time(when)
        with self.service.session_factory() as s, s.begin():
            t = s.get(Ticket, ticket_id)
            assert t is not None
            self.service.tickets.change_state(TicketWriter(s), t, state, actor="anna.bianchi@inps.example", at=when)


@contextmanager
def sla_bench(cfg: Config) -> Iterator[SlaBench]:
    """A bench on `cfg`, whose SMTP profiles are pointed at a sink started here."""
    sink = SmtpSink("127.0.0.1", 0)
    sink.start()
    profiles = tuple(p.model_copy(update={"port": sink.port}) for p in cfg.smtp_profiles)
    cfg = cfg.model_copy(update={"smtp_profiles": profiles})
    now = [rome(2026, 11, 2, 9)]
    service = Service(cfg, clock=lambda: now[0])
    runtime = service.sla
    assert runtime is not None
    bench = SlaBench(
        config=cfg,
        service=service,
        runtime=runtime,
        sweeper=SlaSweeper(runtime, service.session_factory, service.tickets, clock=lambda: now[0]),
        sender=OutboxSender(service.session_factory, cfg, clock=lambda: now[0]),
        sink=sink,
        now=now,
    )
    try:
        yield bench
    finally:
        service.close()
        sink.stop()


def sqlite_bench(shipped_config: Config, tmp_path: Path) -> Iterator[SlaBench]:
    """The generator of the `bench`/`sla` fixtures: the shipped configuration on a SQLite database in
    `tmp_path`, with no mailbox read over IMAP."""
    cfg = stack_config(shipped_config, tmp_path / "data", imap_port=1, smtp_port=1, mailboxes=[])
    with sla_bench(cfg) as bench:
        yield bench


CITIZEN = "mario.rossi@posta.example"
ANNA = "anna.bianchi@inps.example"  # referente, unità credito (FE)
LUCIA = "lucia.neri@inps.example"  # responsabile dell'unità (FE)
PAOLO = "paolo.gialli@inps.example"  # responsabile dell'Agenzia flussi contributivi (FE)
GIULIA = "giulia.russo@inps.example"  # direttore provinciale (FE)
DR = "direzione.emiliaromagna@inps.example"  # direzione regionale (ER)
ORDINE = "info@odcec-fe.example"
CODER = "presidenza@coder-er.example"
SARA = "sara.conti@inps.example"  # referente regionale lavoro occasionale (ER)
LUCA = "luca.ferri@inps.example"  # referente nazionale lavoro occasionale (DG)
NAZIONALE = "lavoro.occasionale@inps.example"


def credito_ticket(sla: SlaBench, received: dt.datetime, n: int = 1) -> str:
    address = sla.config.mailbox("fe-credito").address
    raw = mail(
        address,
        CITIZEN,
        f"Artigiani - richiesta informazioni avviso bonario n. {n}/2026",
        name="Mario Rossi",
        message_id=f"credito{n}",
    )
    outcome = sla.ingest(raw, "fe-credito", received)
    assert outcome.outcome == "opened" and outcome.rule_id == "unita_credito"
    assert outcome.ticket_id is not None
    return outcome.ticket_id


def only(mails: list, template: str):  # type: ignore[no-untyped-def]
    mails = [m for m in mails if m.template != "notifica_referente"]  # the notices have their own tests
    assert [m.template for m in mails] == [template], [(m.template, m.to) for m in mails]
    return mails[0]


def normativa_ticket(sla: SlaBench, received: dt.datetime, n: int = 1) -> str:
    raw = authenticated(
        mail(
            sla.config.mailbox("fe-direzione").address,
            ORDINE,
            f"Quesito normativo n. {n}: gestione separata, aliquota per i professionisti",
            "Si chiede il parere della Direzione sull'aliquota applicabile.",
            name="Ordine dei Dottori Commercialisti di Ferrara",
            message_id=f"quesito{n}",
        ),
        "odcec-fe.example",
    )
    outcome = sla.ingest(raw, "fe-direzione", received)
    assert outcome.outcome == "opened" and outcome.rule_id == "quesito_normativo_ordine"
    assert outcome.ticket_id is not None
    return outcome.ticket_id
