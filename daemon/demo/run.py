"""`sportello demo`: the whole daemon on embedded servers, on sample mail, showing what it did."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from sqlalchemy import func, select

from daemon.cli.views import conversation_lines, ticket_detail
from daemon.clock import utcnow
from daemon.config import Config
from daemon.demo.sample_mail import demo_messages, referent_reply
from storage.models import InboundMessage, Outbox, Ticket

if TYPE_CHECKING:
    from daemon.demo.imap_server import DemoImap
    from daemon.demo.smtp_sink import SmtpSink
    from daemon.service import Service

DEMO_PASSWORD = "demo"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def demo_config(config: Config, workdir: Path, imap_port: int, smtp_port: int) -> Config:
    """The shipped config pointed at the embedded servers and a private database."""
    mailboxes = tuple(
        m.model_copy(
            update={
                "imap": m.imap.model_copy(
                    update={
                        "host": "127.0.0.1",
                        "port": imap_port,
                        "security": "plain",
                        "password_env": "SPORTELLO_IMAP_PASSWORD",
                        "poll_seconds": 1.0,
                    }
                )
            }
        )
        if m.imap
        else m
        for m in config.mailboxes
    )
    profiles = tuple(
        p.model_copy(update={"host": "127.0.0.1", "port": smtp_port, "security": "plain"}) for p in config.smtp_profiles
    )
    return config.model_copy(
        update={
            "mailboxes": mailboxes,
            "smtp_profiles": profiles,
            "database": config.database.model_copy(update={"url": f"sqlite:///{workdir / 'sportello.db'}"}),
            "archive": config.archive.model_copy(update={"path": str(workdir / "archive")}),
            # A random secret for the demo, generated on first start and kept beside its data.
            "instance": config.instance.model_copy(update={"secret_file": str(workdir / "sportello.secret")}),
        }
    )


def run_demo(config: Config, workdir: Path, *, timeout: float, console: Console) -> int:
    from daemon.demo.imap_server import start_demo_imap
    from daemon.demo.smtp_sink import SmtpSink
    from daemon.service import Service

    workdir = workdir.resolve()
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    os.environ["SPORTELLO_IMAP_PASSWORD"] = DEMO_PASSWORD

    sink = SmtpSink("127.0.0.1", 0, spool_dir=workdir / "posta-inviata")
    sink.start()
    imap_port = _free_port()
    users = {m.imap.username: DEMO_PASSWORD for m in config.mailboxes if m.imap}
    imap = start_demo_imap("127.0.0.1", imap_port, users)
    service = None
    stop = threading.Event()
    try:
        cfg = demo_config(config, workdir, imap_port, sink.port)
        console.print(
            f"[bold]sportello demo[/]: IMAP su 127.0.0.1:{imap_port}, SMTP su 127.0.0.1:{sink.port}, dati in {workdir}"
        )
        addresses = {m.id: m.address for m in cfg.mailboxes}
        samples = demo_messages(addresses)
        for mailbox_id, raw in samples:
            imap.append(cfg.mailbox(mailbox_id).imap.username, raw)  # type: ignore[union-attr]
        console.print(f"Messaggi di esempio depositati: {len(samples)}")
        service = Service(cfg)
        runner = threading.Thread(target=service.run, args=(stop,), name="sportello", daemon=True)
        started = time.monotonic()
        runner.start()
        done = False
        while time.monotonic() - started < timeout:
            inbound, pending = _counts(service)
            if inbound >= len(samples) and pending == 0:
                done = True
                break
            time.sleep(0.3)
        if done:
            done = _referent_answers(service, cfg, imap, sink, console, started + timeout)
        elapsed = time.monotonic() - started
        stop.set()
        runner.join(timeout=20)
        _show(service, sink, console, elapsed)
        if not done:
            console.print(
                f"[bold red]Tempo scaduto[/] dopo {timeout:.0f} s: non tutti i messaggi sono stati elaborati."
            )
            return 1
        console.print(
            f"[bold green]Fatto[/]: {len(samples)} messaggi elaborati in {elapsed:.1f} s; "
            f"email inviate in {workdir / 'posta-inviata'}"
        )
        return 0
    finally:
        stop.set()
        if service is not None:
            service.close()
        imap.stop()
        sink.stop()


DEMO_REFERENT = "anna.bianchi@inps.example"


def _referent_answers(
    service: Service, cfg: Config, imap: DemoImap, sink: SmtpSink, console: Console, deadline: float
) -> bool:
    """Anna Bianchi answers the notice of a credito ticket from her mail client, then closes it by mail:
    the citizen gets her text from the institutional address, and the ticket ends `chiusa`."""
    notices = [m for m in sink.messages if DEMO_REFERENT in m.rcpt_tos and b"Nuova pratica" in m.raw]
    if not notices:
        return True
    notice = notices[0]
    box = cfg.mailbox("fe-credito")
    assert box.imap is not None
    steps = (
        "Gentile cliente,\nl'avviso bonario risulta già pagato: non deve fare nulla.\nCordiali saluti",
        "#chiudi risolta\nLa pratica è conclusa.",
    )
    ticket_id = None
    for text in steps:
        raw = referent_reply(
            notice.raw, sender=DEMO_REFERENT, name="Anna Bianchi", to=box.address, text=text, when=utcnow()
        )
        before = _counts(service)[0]
        imap.append(box.imap.username, raw)
        while time.monotonic() < deadline and ((counts := _counts(service))[0] <= before or counts[1]):
            time.sleep(0.3)
        with service.session_factory() as s:
            last = s.execute(select(InboundMessage).order_by(InboundMessage.id.desc()).limit(1)).scalar_one()
            ticket_id = last.ticket_id
    if ticket_id is None:
        return False
    with service.session_factory() as s:
        ticket = s.get(Ticket, ticket_id)
        assert ticket is not None
        lines = conversation_lines(ticket_detail(ticket)["messages"], body_lines=3)
        console.print(
            f"\n[bold]La referente risponde dal suo client di posta[/]: pratica {ticket_id}, stato {ticket.state}"
        )
    for line in lines:
        console.print(line, highlight=False, markup=False)
    return True


def _counts(service: Service) -> tuple[int, int]:
    """Messages recorded and emails still to send."""
    with service.session_factory() as s:
        recorded = s.execute(select(func.count()).select_from(InboundMessage)).scalar_one()
        pending = s.execute(select(func.count()).select_from(Outbox).where(Outbox.status == "pending")).scalar_one()
    return int(recorded), int(pending)


def _show(service: object, sink: object, console: Console, elapsed: float) -> None:
    from daemon.cli.tables import Column, fitted_table
    from daemon.cli.views import outbox_status_label, outcome_label

    factory = service.session_factory  # type: ignore[attr-defined]
    width = console.width
    with factory() as s:
        columns = [
            Column("casella", 10, 3),
            Column("mittente", 16, 2),
            Column("oggetto", 18, 6),
            Column("esito", 9, 8),
            Column("motivo", 12, 5),
            Column("regola", 10, 1),
            Column("pratica", 14, 7),
        ]
        cells = [
            [
                m.mailbox,
                m.sender,
                m.subject or "",
                outcome_label(m.outcome),
                m.reason or "",
                m.rule_id or "",
                m.ticket_id or "",
            ]
            for m in s.execute(select(InboundMessage).order_by(InboundMessage.id)).scalars()
        ]
        console.print(fitted_table("Messaggi ricevuti ed esito", columns, cells, width))
        columns = [
            Column("pratica", 14, 6),
            Column("stato", 9, 4),
            Column("coda", 8, 3),
            Column("richiedente", 16, 5),
            Column("codici fiscali", 16, 1),
            Column("scadenza", 10, 2),
        ]
        cells = [
            [
                t.id,
                t.state,
                t.queue or "",
                t.requester,
                ", ".join(t.codici_fiscali or []),
                t.due_at.date().isoformat() if t.due_at else "-",
            ]
            for t in s.execute(select(Ticket).order_by(Ticket.id)).scalars()
        ]
        console.print(fitted_table("Pratiche", columns, cells, width))
        columns = [Column("a", 16, 3), Column("oggetto", 24, 4), Column("modello", 14, 1), Column("stato", 10, 2)]
        cells = [
            [", ".join(o.to), o.subject, o.template, outbox_status_label(o.status)]
            for o in s.execute(select(Outbox).order_by(Outbox.id)).scalars()
        ]
        console.print(fitted_table("Email inviate (ricevute dal server SMTP locale)", columns, cells, width))
    console.print(f"Il server SMTP locale ha ricevuto {len(sink.messages)} email.")  # type: ignore[attr-defined]
