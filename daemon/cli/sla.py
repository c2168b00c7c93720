"""`sportello sla ...` commands: the SLA report, the check of sla.yaml and of the calendar, a ticket's ladder."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from daemon.cli.common import ConfigOpt, JsonOpt, fail, get_config, get_service, out, print_json
from daemon.clock import utcnow
from daemon.yamlfiles.source import YamlProblem

if TYPE_CHECKING:  # imported when needed: the CLI starts fast
    from daemon.service import Service
    from daemon.sla import SlaRuntime

app = typer.Typer(
    help="Scadenze (SLA): rapporto, controllo delle politiche, passi di una pratica.", no_args_is_help=True
)


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"{option} non valido: {value!r} (atteso AAAA-MM-GG, es. 2026-11-30)")


def _runtime(service: Service) -> SlaRuntime:
    runtime = service.sla
    if runtime is None:
        fail("routing_rules/sla.yaml assente: le scadenze sono disattivate")
    return runtime


def _fmt_days(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:g}"


@app.command("report")
def report(
    office: Annotated[str | None, typer.Option("--office", help="Solo questo ufficio (es. FE).")] = None,
    date_from: Annotated[
        str | None, typer.Option("--from", help="Pratiche ricevute da questo giorno (AAAA-MM-GG).")
    ] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="Pratiche ricevute fino a questo giorno incluso.")] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Per coda: pratiche aperte, scadute, risposte nei termini (%), tempo mediano di risposta in giorni lavorativi."""
    from daemon.sla.report import sla_report

    first, last = _day(date_from, "--from"), _day(date_to, "--to")
    if first and last and first > last:
        fail("--from è successivo a --to")
    cfg = get_config(config)
    if office is not None:
        office = office.upper()
        if office not in {o.id for o in cfg.offices}:
            fail(f"ufficio sconosciuto: {office} (definiti: {', '.join(o.id for o in cfg.offices)})")
    service = get_service(config)
    runtime = _runtime(service)
    now = utcnow()
    with service.session_factory() as session:
        rows = sla_report(session, runtime, now, office=office, date_from=first, date_to=last)
    if as_json:
        print_json([r.to_dict() for r in rows])
        return
    period = ""
    if first or last:
        period = f" ricevute {'dal ' + first.isoformat() if first else ''}{' ' if first and last else ''}"
        period += f"{'al ' + last.isoformat() if last else ''}"
    table = Table(
        title=f"Scadenze per coda{period}",
        caption="mediana: giorni lavorativi dalla ricezione alla risposta, senza le attese del richiedente",
    )
    for name, justify in (
        ("ufficio", "left"),
        ("coda", "left"),
        ("ricevute", "right"),
        ("aperte", "right"),
        ("scadute", "right"),
        ("risposte", "right"),
        ("in termini", "right"),
        ("mediana", "right"),
        ("mancato riscontro", "right"),
    ):
        # Office and queue are identifiers: never cut; the figures' headers wrap instead.
        table.add_column(name, justify=justify, no_wrap=justify == "left")  # type: ignore[arg-type]
    for r in rows:
        percent = "-" if r.in_time_percent is None else f"{r.in_time_percent:.1f}%"
        style = "bold" if r.queue == "totale" else None
        table.add_row(
            r.office,
            r.queue,
            str(r.received),
            str(r.open),
            str(r.overdue),
            str(r.answered),
            percent,
            _fmt_days(r.median_working_days),
            str(r.closed_no_answer),
            style=style,
        )
    out.print(table)


@app.command("check")
def check(config: ConfigOpt = None) -> None:
    """Controlla sla.yaml: 0 se valido, 1 con l'elenco dei problemi (la sezione calendar si controlla
    con il resto di config.yaml: uscita 2)."""
    from daemon.outbound.templates import TemplateRenderer
    from daemon.sla.policies import PolicyError, load_policies

    cfg = get_config(config)
    base = Path(cfg.base_dir)
    problems: list[YamlProblem] = []
    policies = None
    try:
        policies = load_policies(base / "routing_rules", cfg, TemplateRenderer(base / "templates").names())
    except PolicyError as exc:
        problems.extend(exc.problems)
    if problems:
        word = "problema" if len(problems) == 1 else "problemi"
        out.print(f"Politiche SLA non valide ({len(problems)} {word}):", markup=False, soft_wrap=True)
        for p in problems:
            out.print(f"  {p}", markup=False, soft_wrap=True)
        raise typer.Exit(1)
    assert policies is not None
    out.print(
        f"Politiche SLA valide (versione {policies.version}): {', '.join(policies.policies)}; "
        f"predefinita {policies.default}.",
        markup=False,
        soft_wrap=True,
    )


@app.command("show")
def show(ticket_id: str, config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """I conteggi di una pratica e la sua scala di passi: eseguiti e previsti."""
    from sqlalchemy import select

    from daemon.sla.clock import plan
    from storage.models import Ticket
    from storage.models_sla import SlaClock, SlaStepRun

    service = get_service(config)
    runtime = _runtime(service)
    rows: list[dict[str, Any]] = []
    with service.session_factory() as session:
        ticket = session.get(Ticket, ticket_id.upper())
        if ticket is None:
            fail(f"pratica non trovata: {ticket_id}", code=1)
        cal = runtime.calendar(ticket.office)
        clocks = session.execute(
            select(SlaClock).where(SlaClock.ticket_id == ticket.id).order_by(SlaClock.id)
        ).scalars()
        for clock in clocks:
            runs = {
                (r.policy, r.step): r
                for r in session.execute(
                    select(SlaStepRun).where(SlaStepRun.clock_id == clock.id, SlaStepRun.cycle == clock.cycle)
                ).scalars()
            }
            policies = [clock.policy, *(p for p, _s in runs if p != clock.policy)]
            for policy_id in dict.fromkeys(policies):
                policy = runtime.policies.get(policy_id)
                steps = plan(cal, policy, clock.started_at, clock.due_at, clock.paused_days) if policy else []
                for p in steps:
                    run = runs.get((policy_id, p.step.id))
                    if run is None and policy_id != clock.policy:
                        continue
                    if run is not None:
                        state = {"sent": "inviato", "skipped": "non applicabile", "no_recipients": "senza destinatari"}
                        status, when = state.get(run.result, "eseguito"), run.executed_at
                    elif clock.stopped_at is not None:
                        status, when = "non eseguito (conteggio fermo)", None
                    elif clock.paused_at is not None:
                        status, when = "sospeso", p.at
                    else:
                        status, when = "previsto", p.at
                    rows.append(
                        {
                            "conteggio": clock.track,
                            "politica": policy_id,
                            "passo": p.step.id,
                            "descrizione": p.step.description,
                            "stato": status,
                            "quando": when.astimezone(cal.tz).isoformat() if when else None,
                        }
                    )
        head = {
            "pratica": ticket.id,
            "stato": ticket.state,
            "politica": ticket.sla_policy,
            "ricevuta": ticket.received_at.astimezone(cal.tz).isoformat(),
            "scadenza": ticket.due_at.astimezone(cal.tz).isoformat() if ticket.due_at else None,
        }
    if as_json:
        print_json({**head, "passi": rows})
        return
    out.print(
        f"[bold]{head['pratica']}[/] — stato {head['stato']}, politica {head['politica']}, "
        f"ricevuta {(head['ricevuta'] or '-')[:16]}, scadenza {(head['scadenza'] or '-')[:10]}",
        highlight=False,
    )
    table = Table("conteggio", "politica", "passo", "stato", "quando", "descrizione", title="Passi")
    for r in rows:
        table.add_row(
            r["conteggio"], r["politica"], r["passo"], r["stato"], (r["quando"] or "-")[:16], r["descrizione"]
        )
    out.print(table)
