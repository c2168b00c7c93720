"""`sportello alerts`: the admins' alerts (quarantine, unverified PEC, failed sends, mailbox outages...)."""

from __future__ import annotations

from typing import Annotated

import typer

from daemon.alerts.store import acknowledge, list_alerts
from daemon.cli.common import ConfigOpt, JsonOpt, fail, get_service, out, print_json
from daemon.cli.tables import Column, fitted_table
from daemon.clock import utcnow

app = typer.Typer(help="Segnalazioni per gli amministratori.", no_args_is_help=True)


@app.command("list")
def alerts_list(
    open_only: Annotated[bool, typer.Option("--open", help="Solo quelle non ancora prese in visione.")] = False,
    kind: Annotated[str | None, typer.Option("--kind", help="Solo questo tipo (es. quarantena).")] = None,
    limit: Annotated[int, typer.Option("--limit")] = 200,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Elenco delle segnalazioni, dalla più recente."""
    service = get_service(config)
    with service.session_factory() as session:
        rows = list_alerts(session, open_only=open_only, kind=kind, limit=limit)
    if as_json:
        print_json([r.to_dict() for r in rows])
        return
    columns = [
        Column("n.", 4, 9),
        Column("quando", 16, 7),
        Column("tipo", 22, 8),
        Column("casella", 10, 3),
        Column("pratica", 14, 2),
        Column("nota", 20, 6),
        Column("vista", 10, 4),
    ]
    cells = [
        [
            str(r.id),
            r.at.strftime("%Y-%m-%d %H:%M"),
            r.kind,
            r.mailbox or "",
            r.ticket_id or "",
            r.note,
            r.acknowledged_at.strftime("%Y-%m-%d") if r.acknowledged_at else "no",
        ]
        for r in rows
    ]
    title = "Segnalazioni da prendere in visione" if open_only else "Segnalazioni"
    out.print(fitted_table(f"{title} ({len(rows)})", columns, cells, out.width))


@app.command("ack")
def alerts_ack(
    ids: Annotated[list[int], typer.Argument(help="Numero della segnalazione (anche più d'uno).")],
    config: ConfigOpt = None,
) -> None:
    """Prende in visione una o più segnalazioni: non compaiono più in `alerts list --open`."""
    service = get_service(config)
    now = utcnow()
    with service.session_factory() as session, session.begin():
        missing = [i for i in ids if acknowledge(session, i, now) is None]
        if missing:
            session.rollback()
            fail(f"segnalazione inesistente: {', '.join(map(str, missing))}")
    word = "segnalazione presa" if len(ids) == 1 else "segnalazioni prese"
    out.print(f"{word.capitalize()} in visione: {', '.join(map(str, ids))}", highlight=False)
