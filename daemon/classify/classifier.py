"""classify(message, vocabularies) -> Classification: what the subject (then the body) says.

Pure: the only outside question, which ticket a Message-ID belongs to, arrives as a function.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from daemon.classify.codes import find_codes, find_matricola
from daemon.classify.text import Tokens, find_phrase, tokens
from daemon.classify.vocabulary import Entry, Vocabularies
from daemon.message import ParsedMessage

__all__ = ["Classification", "classify", "find_ticket_ids"]

_TICKET_ID = re.compile(r"(?<![A-Za-z0-9])([A-Za-z]{2,4}-20[0-9]{2}-[0-9]{6})(?![0-9])")
_BODY_CHARS = 20_000  # what we read of the body: the request is at the top, quotes and signatures below


def find_ticket_ids(text: str) -> list[str]:
    """Ticket ids (FE-2026-000123) in the order they appear, upper-cased, without repeats."""
    out: list[str] = []
    for m in _TICKET_ID.finditer(text or ""):
        tid = m.group(1).upper()
        if tid not in out:
            out.append(tid)
    return out


@dataclass(frozen=True)
class Classification:
    codici_fiscali: tuple[str, ...] = ()
    codici_fiscali_non_validi: tuple[str, ...] = ()
    matricola: str | None = None
    gestione: str | None = None
    gestione_candidates: tuple[str, ...] = ()
    argomento: str | None = None
    unita: str | None = None
    istanza: bool = False
    telematizzata: str | None = None
    servizio_online: str | None = None
    sollecito: bool = False
    ticket_ref: str | None = None
    evidence: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "codici_fiscali": list(self.codici_fiscali),
            "codici_fiscali_non_validi": list(self.codici_fiscali_non_validi),
            "matricola": self.matricola,
            "gestione": self.gestione,
            "gestione_candidates": list(self.gestione_candidates),
            "argomento": self.argomento,
            "unita": self.unita,
            "istanza": self.istanza,
            "telematizzata": self.telematizzata,
            "servizio_online": self.servizio_online,
            "sollecito": self.sollecito,
            "ticket_ref": self.ticket_ref,
            "evidence": dict(self.evidence),
        }


def _abbreviation_re(abbrs: Sequence[str]) -> re.Pattern[str] | None:
    if not abbrs:
        return None
    return re.compile(r"(?<![A-Za-z0-9])(?:" + "|".join(re.escape(a) for a in abbrs) + r")(?![A-Za-z0-9])")


def _match(entry: Entry, raw: str, toks: Tokens) -> tuple[int, str] | None:
    """(score, evidence) for the best evidence of `entry` in a text, or None."""
    best: tuple[int, str] | None = None
    for p in entry.phrases:
        if (best is None or p.weight * 2 > best[0]) and find_phrase(p, toks):
            best = (p.weight * 2, p.text)
    abbr = _abbreviation_re(entry.abbreviations)
    if abbr is not None and (m := abbr.search(raw)):
        best = max(best or (0, ""), (2, m.group(0)))
    for rx in entry.patterns:
        if m := rx.search(raw):
            best = max(best or (0, ""), (3, m.group(0)))
    return best


def _pick(entries: Sequence[Entry], parts: Sequence[tuple[str, str, Tokens]]) -> tuple[list[Entry], str, str]:
    """The entries with the top score in the first part (subject, then body) where any matches."""
    for where, raw, toks in parts:
        scored = [(s, e, ev) for e in entries if (r := _match(e, raw, toks)) for s, ev in [r]]
        if not scored:
            continue
        top = max(s for s, _, _ in scored)
        winners = [(e, ev) for s, e, ev in scored if s == top]
        return [e for e, _ in winners], where, winners[0][1]
    return [], "", ""


def classify(
    msg: ParsedMessage,
    vocab: Vocabularies,
    resolve_message_id: Callable[[str], str | None] = lambda _mid: None,
) -> Classification:
    subject = msg.subject or ""
    body = (msg.text_body or "")[:_BODY_CHARS]
    parts = [("oggetto", subject, tokens(subject)), ("testo", body, tokens(body))]
    evidence: dict[str, str] = {}

    subject_codes = find_codes(subject)
    body_codes = find_codes(body)
    valid = list(subject_codes.valid) + [c for c in body_codes.valid if c not in subject_codes.valid]
    invalid = list(subject_codes.invalid) + [c for c in body_codes.invalid if c not in subject_codes.invalid]

    gestioni, where, ev = _pick(vocab.gestioni, parts)
    gestione = gestioni[0].id if len(gestioni) == 1 else None
    if gestioni:
        evidence["gestione"] = f"{where}: {ev}"

    argomenti, where, ev = _pick(vocab.argomenti, parts)
    argomento = argomenti[0] if argomenti else None
    if argomento:
        evidence["argomento"] = f"{where}: {ev}"

    istanza = False
    info_in_subject = _match(vocab.informativa, subject, parts[0][2]) is not None
    for where, raw, toks in parts:
        hit = _match(vocab.istanza, raw, toks)
        if hit and not info_in_subject:
            istanza = True
            evidence["istanza"] = f"{where}: {hit[1]}"
            break
        if where == "oggetto" and info_in_subject:
            break  # an information request about a procedure is not the procedure itself

    telematizzata: Entry | None = None
    if istanza:
        found, where, ev = _pick(vocab.telematizzate, parts)
        if found:
            telematizzata = found[0]
            evidence["telematizzata"] = f"{where}: {ev}"

    sollecito = False
    for where, raw, toks in parts[:1] + [("testo", body[:2000], tokens(body[:2000]))]:
        hit = _match(vocab.sollecito, raw, toks)
        if hit:
            sollecito = True
            evidence["sollecito"] = f"{where}: {hit[1]}"
            break

    ticket_ref = None
    ids = find_ticket_ids(subject) or find_ticket_ids(body)
    if ids:
        ticket_ref = ids[0]
    else:
        for mid in (*msg.in_reply_to, *reversed(msg.references)):
            found_ticket = resolve_message_id(mid)
            if found_ticket:
                ticket_ref = found_ticket
                break

    return Classification(
        codici_fiscali=tuple(valid),
        codici_fiscali_non_validi=tuple(invalid),
        matricola=find_matricola(subject) or find_matricola(body),
        gestione=gestione,
        gestione_candidates=tuple(e.id for e in gestioni) if len(gestioni) > 1 else (),
        argomento=argomento.id if argomento else None,
        unita=argomento.unit if argomento else None,
        istanza=istanza,
        telematizzata=telematizzata.id if telematizzata else None,
        servizio_online=telematizzata.online_service if telematizzata else None,
        sollecito=sollecito,
        ticket_ref=ticket_ref,
        evidence=evidence,
    )
