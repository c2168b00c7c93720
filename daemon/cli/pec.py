"""`sportello pec ...` commands: the verification report of a PEC message."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from daemon.cli.common import fail, get_config, out
from daemon.pec import PecAnalysis, analyse_pec
from daemon.pec.settings import PecSettingsError, load_pec_trust

app = typer.Typer(help="Posta elettronica certificata: verifica dei messaggi.", no_args_is_help=True)


EXIT_GENUINE = 0
EXIT_NOT_GENUINE = 1
EXIT_ERROR = 2

_KINDS = {
    "posta-certificata": "busta di trasporto (posta certificata)",
    "ricevuta": "ricevuta PEC",
    "anomalia": "busta di anomalia (posta ordinaria, non certificata)",
    "non_verificata": "PEC non verificata",
    "none": "non è un messaggio PEC",
}

_DATICERT_LABELS = (
    ("tipo", "tipo"),
    ("errore", "errore"),
    ("mittente", "mittente"),
    ("destinatari", "destinatari"),
    ("risposte", "risposte a"),
    ("oggetto", "oggetto"),
    ("gestore_emittente", "gestore emittente"),
    ("data", "data e ora"),
    ("identificativo", "identificativo"),
    ("msgid", "msgid"),
    ("ricevuta", "ricevuta"),
    ("consegna", "consegna"),
    ("errore_esteso", "errore esteso"),
)


def is_genuine(analysis: PecAnalysis) -> bool:
    """Genuine PEC: a verified transport envelope or receipt. An anomaly envelope never is."""
    return analysis.verified and analysis.kind in ("posta-certificata", "ricevuta")


def _kind_text(analysis: PecAnalysis) -> str:
    text = _KINDS.get(analysis.kind, analysis.kind)
    if analysis.kind == "ricevuta" and analysis.receipt_type:
        text = f"ricevuta PEC di {analysis.receipt_type}"
    if analysis.kind == "non_verificata" and analysis.looks_like:
        claimed = _KINDS.get(analysis.looks_like, analysis.looks_like)
        if analysis.receipt_type:
            claimed = f"ricevuta PEC di {analysis.receipt_type}"
        text = f"{text} (si presenta come {claimed})"
    return text


def _signature_text(analysis: PecAnalysis) -> str:
    if analysis.signature_valid is None:
        return "non controllata" if analysis.kind != "none" else "-"
    return "valida (contenuto integro)" if analysis.signature_valid else "NON valida"


def _daticert_value(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key == "destinatari":
        return ", ".join(f"{d['indirizzo']} ({d['tipo'] or '?'})" for d in value) or "-"
    return str(value)


def _render(file: Path, bundle: Path, analysis: PecAnalysis) -> None:
    genuine = is_genuine(analysis)
    table = Table("voce", "valore", title=f"Verifica PEC: {file.name}", show_header=False, title_justify="left")
    table.add_row("file", str(file))
    table.add_row("tipo", _kind_text(analysis))
    table.add_row("firma", _signature_text(analysis))
    table.add_row("firmatario", analysis.signer or "-")
    table.add_row("emittente del firmatario", analysis.issuer or "-")
    table.add_row("autorità PEC configurate", str(bundle))
    if analysis.wrapped:
        table.add_row("busta", "trovata dentro un altro messaggio (lista di distribuzione o inoltro come allegato)")
    if analysis.addressed_to_us is not None:
        table.add_row("indirizzata alla casella", "sì" if analysis.addressed_to_us else "NO: non è tra i destinatari")
    if analysis.chain_checked_at is not None:
        outcome = "valida" if analysis.verified else "NON valida"
        when = analysis.chain_checked_at.isoformat()
        table.add_row("catena del firmatario", f"{outcome}, verificata alla data certificata {when}")
    else:
        table.add_row("catena del firmatario", "non verificata")
    if analysis.verified:
        table.add_row("identificativo", analysis.identificativo or "-")
        table.add_row("mittente certificato", analysis.mittente or "-")
        table.add_row("data certificata", analysis.data.isoformat() if analysis.data else "-")
        if analysis.riferimento_message_id:
            table.add_row("riferimento Message-ID", analysis.riferimento_message_id)
    result = "[bold green]PEC AUTENTICA[/]" if genuine else "[bold red]NON è una PEC autentica[/]"
    table.add_row("esito", result)
    table.add_row("motivo", analysis.failure or "-")
    out.print(table, highlight=False)

    if analysis.daticert is not None:
        caption = "firmati e verificati" if analysis.verified else "NON verificati: non fanno fede"
        dati = Table("campo", "valore", title=f"Dati di certificazione (daticert.xml, {caption})", title_justify="left")
        values = analysis.daticert.to_dict()
        for key, label in _DATICERT_LABELS:
            dati.add_row(label, _daticert_value(key, values.get(key)))
        out.print(dati, highlight=False)


@app.command("verify")
def verify(
    file: Annotated[Path, typer.Argument(help="File .eml da verificare.")],
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="File di configurazione (predefinito ./config.yaml o $SPORTELLO_CONFIG)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Uscita in JSON.")] = False,
    mailbox: Annotated[
        str | None,
        typer.Option("--mailbox", "-m", help="Casella di arrivo (id): i destinatari del daticert devono includerla."),
    ] = None,
) -> None:
    """Verifica un messaggio PEC: firma, catena del gestore alla data certificata, daticert.

    Esce con 0 se è una PEC autentica, 1 se non lo è (o non è PEC), 2 se il file o la configurazione
    non sono utilizzabili.
    """
    try:
        raw = file.read_bytes()
    except OSError as exc:
        fail(f"impossibile leggere {file}: {exc.strerror or exc}")
    cfg = get_config(config)
    try:
        trust = load_pec_trust(cfg)
    except PecSettingsError as exc:
        fail(str(exc))
    if trust is None:
        fail("verifica PEC non configurata: indicare pec.ca_bundle in config.yaml")
        raise typer.Exit(EXIT_ERROR)

    address = None
    if mailbox is not None:
        known = {m.id: m.address for m in cfg.mailboxes}
        if mailbox not in known:
            fail(f"casella sconosciuta: {mailbox} (disponibili: {', '.join(known)})")
        address = known[mailbox]
    analysis = analyse_pec(raw, trust, address)
    genuine = is_genuine(analysis)
    if as_json:
        data = {"file": str(file), "ca_bundle": str(trust.ca_bundle), "genuine": genuine, **analysis.report_dict()}
        sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
    else:
        _render(file, trust.ca_bundle, analysis)
    raise typer.Exit(EXIT_GENUINE if genuine else EXIT_NOT_GENUINE)
