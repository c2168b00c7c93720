"""`sportello`: the daemon and the operator's commands. Messages for users are in Italian."""

from __future__ import annotations

import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import select

from daemon.cli import alerts as alerts_cli
from daemon.cli import pec as pec_cli
from daemon.cli import rules as rules_cli
from daemon.cli import sla as sla_cli
from daemon.cli import status as status_cli
from daemon.cli.common import ConfigOpt, JsonOpt, fail, get_config, get_service, out, print_json
from daemon.cli.tables import Column, fitted_table
from daemon.cli.views import (
    conversation_lines,
    inbound_view,
    outbox_status_label,
    outbox_view,
    outcome_label,
    ticket_detail,
    ticket_summary,
)
from daemon.config import ENV_CONFIG
from daemon.ops.logsetup import configure_logging
from storage.errors import StorageUnavailable
from storage.models import TICKET_STATES, InboundMessage, Outbox, Ticket

app = typer.Typer(
    help="sportello: instradamento delle email degli sportelli in pratiche.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
tickets_app = typer.Typer(help="Pratiche.", no_args_is_help=True)
outbox_app = typer.Typer(help="Email in uscita.", no_args_is_help=True)
inbound_app = typer.Typer(help="Messaggi ricevuti e loro esito.", no_args_is_help=True)
app.add_typer(tickets_app, name="tickets")
app.add_typer(outbox_app, name="outbox")
app.add_typer(inbound_app, name="inbound")
app.add_typer(rules_cli.app, name="rules")
app.add_typer(pec_cli.app, name="pec")
app.add_typer(sla_cli.app, name="sla")
app.add_typer(alerts_cli.app, name="alerts")
app.command("status")(status_cli.status)


@app.callback()
def _global_options(config: ConfigOpt = None) -> None:
    """sportello: instradamento delle email degli sportelli in pratiche."""
    # `sportello --config X cmd` as well as `sportello cmd --config X` (the command's own option wins):
    # before the command it means what SPORTELLO_CONFIG means, which every command (and the sender
    # process) already reads. One process runs one command, so nothing else sees the change.
    if config is not None:
        os.environ[ENV_CONFIG] = str(config)


@app.command()
def run(config: ConfigOpt = None, verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    """Avvia il servizio: lettura delle caselle, invio email, scadenze. Si ferma con SIGTERM/SIGINT; con
    SIGHUP ricarica regole, vocabolari, modelli e politiche SLA."""
    from daemon.ops.memory import limit_arenas
    from daemon.ops.supervisor import Supervisor

    limit_arenas()
    configure_logging(get_config(config).logging, verbose=verbose)
    service = get_service(config)
    try:
        Supervisor(service).run()
    finally:
        service.close()


def _parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        fail(f"--received-at non valido: {value!r} (atteso ISO 8601, es. 2026-11-20T09:30:00+01:00)")
    if parsed.tzinfo is None:
        from zoneinfo import ZoneInfo

        parsed = parsed.replace(tzinfo=ZoneInfo("Europe/Rome"))
    return parsed


@app.command()
def ingest(
    files: Annotated[list[Path], typer.Argument(help="File .eml da elaborare; - per lo standard input.")],
    mailbox: Annotated[str, typer.Option("--mailbox", "-m", help="Casella di arrivo (id).")],
    received_at: Annotated[str | None, typer.Option("--received-at", help="Ora di ricezione ISO 8601.")] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Elabora file .eml come se fossero arrivati nella casella indicata."""
    from daemon.core.pipeline import InboundItem

    when = _parse_time(received_at)
    if files == [Path("-")]:  # from a mail server's pipe: sysexits codes, 75 to have it retry
        from daemon.cli.delivery import deliver

        deliver(config, mailbox, when)
        return
    cfg = get_config(config)
    if mailbox not in {m.id for m in cfg.mailboxes}:
        fail(f"casella sconosciuta: {mailbox} (disponibili: {', '.join(m.id for m in cfg.mailboxes)})")
    items = []
    for f in files:
        try:
            items.append(InboundItem(raw=f.read_bytes(), mailbox_id=mailbox, source="ingest", received_at=when))
        except OSError as exc:
            fail(f"impossibile leggere {f}: {exc.strerror}")
    service = get_service(config)
    try:
        outcomes = service.ingest(items)
    except StorageUnavailable as exc:
        fail(f"{exc}; nessun messaggio registrato, riprovare", code=75)  # EX_TEMPFAIL, as for the MTA
    rows: list[dict[str, Any]] = [
        {
            "file": str(f),
            "outcome": o.outcome,
            "reason": o.reason,
            "ticket_id": o.ticket_id,
            "rule": o.rule_id,
            "duplicate": o.duplicate,
        }
        for f, o in zip(files, outcomes, strict=True)
    ]
    if as_json:
        print_json(rows)
    else:
        columns = [
            Column("file", 12, 2),
            Column("esito", 9, 5),
            Column("motivo", 12, 3),
            Column("pratica", 14, 4),
            Column("regola", 10, 1),
        ]
        cells = [
            [
                r["file"],
                outcome_label(r["outcome"]) + (" (già ricevuto)" if r["duplicate"] else ""),
                r["reason"] or "",
                r["ticket_id"] or "",
                r["rule"] or "",
            ]
            for r in rows
        ]
        out.print(fitted_table("Messaggi elaborati", columns, cells, out.width))
    if any(o.outcome == "quarantined" for o in outcomes):
        raise typer.Exit(3)


@app.command()
def explain(
    file: Annotated[Path, typer.Argument(help="File .eml da analizzare.")],
    mailbox: Annotated[str, typer.Option("--mailbox", "-m", help="Casella di arrivo (id).")],
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Prova a secco: mostra classificazione e instradamento, senza scrivere nulla né inviare email."""
    cfg = get_config(config)
    if mailbox not in {m.id for m in cfg.mailboxes}:
        fail(f"casella sconosciuta: {mailbox}")
    try:
        raw = file.read_bytes()
    except OSError as exc:
        fail(f"impossibile leggere {file}: {exc.strerror}")
    from daemon.core.explain import render_explanation

    service = get_service(config)
    result = service.explain(raw, mailbox)
    if as_json:
        print_json(result)
    else:
        out.print(render_explanation(result), highlight=False, markup=False)


@tickets_app.command("list")
def tickets_list(
    state: Annotated[str | None, typer.Option("--state", help="aperta, in_carico, in_attesa, chiusa")] = None,
    limit: Annotated[int, typer.Option("--limit")] = 200,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Elenco delle pratiche, per scadenza."""
    if state is not None and state not in TICKET_STATES:
        fail(f"stato sconosciuto: {state} (ammessi: {', '.join(TICKET_STATES)})")
    service = get_service(config)
    with service.session_factory() as session:
        q = select(Ticket).order_by(Ticket.due_at.is_(None), Ticket.due_at, Ticket.id).limit(limit)
        if state:
            q = q.where(Ticket.state == state)
        rows = [ticket_summary(t) for t in session.execute(q).scalars()]
    if as_json:
        print_json(rows)
        return
    columns = [
        Column("pratica", 14, 9),
        Column("stato", 9, 8),
        Column("casella", 10, 2),
        Column("coda", 8, 3),
        Column("richiedente", 14, 5),
        Column("oggetto", 16, 6),
        Column("ricevuta", 16, 1),
        Column("scadenza", 10, 7),
    ]
    cells = [
        [
            r["id"],
            r["state"],
            r["mailbox"],
            r["queue"] or "",
            r["requester"],
            r["subject"] or "",
            (r["received_at"] or "")[:16].replace("T", " "),
            (r["due_at"] or "-")[:10],
        ]
        for r in rows
    ]
    out.print(fitted_table(f"Pratiche ({len(rows)})", columns, cells, out.width))


@tickets_app.command("show")
def tickets_show(ticket_id: str, config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Dettaglio di una pratica: messaggi ed eventi."""
    service = get_service(config)
    with service.session_factory() as session:
        ticket = session.get(Ticket, ticket_id.upper())
        if ticket is None:
            fail(f"pratica non trovata: {ticket_id}", code=1)
        data = ticket_detail(ticket)
    if as_json:
        print_json(data)
        return
    out.print(f"[bold]{data['id']}[/] — {data['subject']}", highlight=False)
    for key, label in (
        ("state", "stato"),
        ("mailbox", "casella"),
        ("queue", "coda"),
        ("assignee", "assegnatario"),
        ("requester", "richiedente"),
        ("codici_fiscali", "codici fiscali"),
        ("received_at", "ricevuta"),
        ("due_at", "scadenza"),
        ("answered_at", "prima risposta"),
        ("closed_at", "chiusa"),
        ("close_outcome", "esito"),
        ("linked_to", "collegata a"),
    ):
        if data.get(key) not in (None, [], ""):
            out.print(f"  {label}: {data[key]}", highlight=False, markup=False)
    out.print("\n[bold]Conversazione[/]")
    for line in conversation_lines(data["messages"]):
        out.print(line, highlight=False, markup=False)
    columns = [Column("quando", 16, 4), Column("chi", 12, 1), Column("evento", 12, 3), Column("nota", 20, 2)]
    cells = [[(e["at"] or "")[:16].replace("T", " "), e["actor"], e["kind"], e["note"]] for e in data["events"]]
    out.print(fitted_table("Eventi", columns, cells, out.width))


@outbox_app.command("list")
def outbox_list(
    status: Annotated[str | None, typer.Option("--status", help="pending, sent, failed")] = None,
    limit: Annotated[int, typer.Option("--limit")] = 200,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Email in uscita e loro stato di invio."""
    service = get_service(config)
    with service.session_factory() as session:
        q = select(Outbox).order_by(Outbox.id).limit(limit)
        if status:
            q = q.where(Outbox.status == status)
        rows = [outbox_view(o) for o in session.execute(q).scalars()]
    if as_json:
        print_json(rows)
        return
    columns = [
        Column("id", 4, 9),
        Column("a", 16, 6),
        Column("oggetto", 18, 7),
        Column("modello", 12, 2),
        Column("stato", 10, 8),
        Column("tentativi", 9, 1),
    ]
    cells = [
        [
            str(r["id"]),
            ", ".join(r["to"]),
            r["subject"],
            r["template"],
            outbox_status_label(r["status"]),
            str(r["attempts"]),
        ]
        for r in rows
    ]
    out.print(fitted_table(f"Email in uscita ({len(rows)})", columns, cells, out.width))


@outbox_app.command("show")
def outbox_show(
    outbox_id: int,
    raw: Annotated[bool, typer.Option("--raw", help="i byte esatti dell'email, come inviati")] = False,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Una email in uscita: intestazioni e stato, o (--raw) i suoi byte esatti."""
    service = get_service(config)
    with service.session_factory() as session:
        row = session.get(Outbox, outbox_id)
        if row is None:
            fail(f"email non trovata: {outbox_id}", code=1)
        if raw:
            sys.stdout.buffer.write(row.raw)
            sys.stdout.buffer.flush()
            return
        data = outbox_view(row)
    if as_json:
        print_json(data)
        return
    for key, value in data.items():
        out.print(f"{key}: {value}", highlight=False, markup=False)


@inbound_app.command("list")
def inbound_list(
    outcome: Annotated[
        str | None, typer.Option("--outcome", help="opened, appended, rejected, ignored, quarantined")
    ] = None,
    limit: Annotated[int, typer.Option("--limit")] = 200,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Messaggi ricevuti con il loro esito."""
    service = get_service(config)
    with service.session_factory() as session:
        q = select(InboundMessage).order_by(InboundMessage.id).limit(limit)
        if outcome:
            q = q.where(InboundMessage.outcome == outcome)
        rows = [inbound_view(m) for m in session.execute(q).scalars()]
    if as_json:
        print_json(rows)
        return
    columns = [
        Column("id", 4, 9),
        Column("casella", 10, 2),
        Column("mittente", 16, 4),
        Column("oggetto", 16, 5),
        Column("esito", 9, 8),
        Column("motivo", 12, 6),
        Column("pratica", 14, 7),
    ]
    cells = [
        [
            str(r["id"]),
            r["mailbox"],
            r["sender"],
            r["subject"] or "",
            outcome_label(r["outcome"]),
            r["reason"] or "",
            r["ticket_id"] or "",
        ]
        for r in rows
    ]
    out.print(fitted_table(f"Messaggi ricevuti ({len(rows)})", columns, cells, out.width))


@app.command()
def demo(
    config: ConfigOpt = None,
    workdir: Annotated[Path, typer.Option("--workdir", help="Cartella dei dati della dimostrazione.")] = Path(
        "var/demo"
    ),
    timeout: Annotated[float, typer.Option("--timeout", help="Secondi massimi di attesa.")] = 60.0,
) -> None:
    """Dimostrazione completa: server IMAP e SMTP locali, posta di esempio, elaborazione, risultati."""
    from daemon.demo.run import run_demo

    cfg = get_config(config)
    configure_logging(cfg.logging.model_copy(update={"level": "warning"}))
    code = run_demo(cfg, workdir, timeout=timeout, console=out)
    raise typer.Exit(code)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover
        sys.exit(130)


if __name__ == "__main__":
    main()
