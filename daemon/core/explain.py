"""The readable (Italian) form of `sportello explain`: what was found, where, and which rule decided."""

from __future__ import annotations

from typing import Any

_ACTIONS = {
    "open_ticket": "aprire una pratica",
    "append": "aggiungere il messaggio a una pratica esistente",
    "reject": "respingere il messaggio con una risposta al mittente",
    "ignore": "ignorare il messaggio (registrato, senza risposta)",
    "forward": "inoltrare il messaggio",
    "quarantine": "mettere il messaggio in quarantena",
}


def _yes(value: Any) -> str:
    return "sì" if value else "no"


def render_explanation(result: dict[str, Any]) -> str:
    lines: list[str] = []
    add = lines.append
    add(f"Casella: {result.get('mailbox')}")
    add(f"Message-ID: {result.get('message_id') or '-'}")
    add(f"Mittente: {result.get('sender') or '-'}")
    add(f"Oggetto: {result.get('subject') or '-'}")
    if result.get("unparseable"):
        add(f"Messaggio illeggibile: {result['unparseable']}")
    if result.get("automatic"):
        add(f"Messaggio automatico: {result['automatic']}")
    add("")
    add("PEC")
    add(f"  tipo: {result.get('pec_kind')}   verificata: {_yes(result.get('pec_verified'))}")
    for key, label in (
        ("pec_receipt_type", "ricevuta"),
        ("pec_identificativo", "identificativo"),
        ("pec_mittente", "mittente certificato"),
        ("pec_data", "data certificata"),
        ("pec_failure", "verifica non riuscita"),
    ):
        if result.get(key):
            add(f"  {label}: {result[key]}")
    add("")
    add("Classificazione")
    add(f"  codici fiscali validi: {', '.join(result.get('codici_fiscali') or []) or '-'}")
    if result.get("codici_fiscali_non_validi"):
        add(f"  codici fiscali NON validi: {', '.join(result['codici_fiscali_non_validi'])}")
    add(f"  matricola: {result.get('matricola') or '-'}")
    gestione = result.get("gestione") or "-"
    if not result.get("gestione") and result.get("gestione_candidates"):
        gestione = f"incerta tra {', '.join(result['gestione_candidates'])}"
    add(f"  gestione: {gestione}")
    add(f"  argomento: {result.get('argomento') or '-'}   unità: {result.get('unita') or '-'}")
    add(
        f"  istanza: {_yes(result.get('istanza'))}   domanda telematizzata: {_yes(result.get('telematizzata'))}"
        + (f" ({result['servizio_online']})" if result.get("servizio_online") else "")
    )
    add(
        f"  sollecito: {_yes(result.get('sollecito'))}   pratica citata: {result.get('ticket_ref') or '-'}"
        f"   risposta a pratica: {result.get('reply_to_ticket') or '-'}"
    )
    evidence = result.get("evidence") or []
    if evidence:
        add("  perché:")
        for ev in evidence:
            where = "nell'oggetto" if ev.get("where") == "oggetto" else f"nel {ev.get('where')}"
            add(f"    - {ev.get('field')} = {ev.get('value')}: «{ev.get('term')}» {where}")
    add("")
    add("Instradamento")
    add(f"  regola: {result.get('rule')} (versione regole {result.get('rules_version', '-')})")
    add(f"  decisione: {_ACTIONS.get(str(result.get('action')), result.get('action'))}")
    if result.get("reason"):
        add(f"  motivo: {result['reason']}")
    if result.get("queue"):
        add(f"  coda: {result['queue']}   SLA: {result.get('sla') or '-'}")
    if result.get("templates"):
        add(f"  email: {', '.join(result['templates'])}")
    trace = result.get("trace") or []
    if trace:
        add("  regole esaminate:")
        for step in trace:
            mark = "✔" if step.get("matched") else "✘"
            add(f"    {mark} {step.get('rule') or step.get('id')}: {step.get('why')}")
    return "\n".join(lines)
