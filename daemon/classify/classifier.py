"""classify(message, vocabularies) -> Classification: what the subject (then the body) says.

Pure: the only outside question, which ticket a Message-ID belongs to, arrives as a function.

How a choice among the entries of a vocabulary is made (gestione, argomento, telematizzata):
proper words beat weak ones (`indizi`) wherever they are; the subject beats the body; where a longer
phrase of one entry covers a shorter one of another ("dipendenti pubblici" over "dipendenti"), the
longer counts. Then, for the gestione, the first one mentioned wins, unless the next one is written
beside it ("Artigiani e Commercianti", "LD/GS"): the text names more than one and we say so
(candidates). For argomento and telematizzata the most specific evidence wins (the longest phrase,
an expression), the first mentioned among equals.

Istanza: an explicit phrase, or a request verb followed closely by a procedure ("si chiede lo
sgravio"), or (weaker) a request noun with a procedure ("domanda di rimborso") in a message that
neither asks questions nor refers to a request already sent; never in a sollecito, never when the
subject asks for information. The telematizzata is looked for only in an istanza.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from daemon.classify.codes import find_codes, find_matricola
from daemon.classify.subject import TICKET_ID_PATTERN, check_subject
from daemon.classify.text import Found, Phrase, Tokens, tokens
from daemon.classify.vocabulary import Entry, Grammar, Vocabularies
from daemon.mail.message import ParsedMessage

__all__ = ["Classification", "Evidence", "classify", "find_ticket_ids"]

_BODY_CHARS = 6_000  # what we read of the body: the request is at the top, quotes and signatures below
_SOLLECITO_BODY_CHARS = 2_000
_CONJUNCTIONS = frozenset({"e", "ed", "o", "od", "oppure", "sia", "and", "or"})
_JOINERS = frozenset({"", "/", ",", "&", "+", "e/o"})  # what may stand between two names written together
_STRONG, _WEAK = 2, 1
_REPLY = re.compile(r"^\s*(?:(?:re|r|risp|aw|sv|antw)\s*(?:\[\d+\])?\s*:\s*)+", re.IGNORECASE)
_QUOTE_START = re.compile(
    r"^(?:>|-{2,}\s*(?:messaggio originale|original message|messaggio inoltrato|forwarded message)|"
    r"(?:il|on)\b.{0,120}\b(?:ha scritto|wrote)\s*:\s*$|da:\s|from:\s)",
    re.IGNORECASE | re.MULTILINE,
)


def _own_text(body: str) -> str:
    """The body before the quoted message it answers."""
    m = _QUOTE_START.search(body)
    return body[: m.start()] if m else body


def find_ticket_ids(text: str) -> list[str]:
    """Ticket ids (FE-2026-000123) in the order they appear, upper-cased, without repeats."""
    out: list[str] = []
    if "-20" not in (text or ""):  # much cheaper than the pattern, which needs it in any case
        return out
    for m in TICKET_ID_PATTERN.finditer(text or ""):
        tid = m.group(0).upper()
        if tid not in out:
            out.append(tid)
    return out


@dataclass(frozen=True)
class Evidence:
    field: str  # gestione, argomento, istanza, telematizzata, sollecito
    value: str
    term: str  # the vocabulary word that matched, as the admin wrote it
    where: str  # oggetto / testo

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "value": self.value, "term": self.term, "where": self.where}


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
    evidence: tuple[Evidence, ...] = field(default=())
    # Labels of the ids above, for the texts people read.
    gestione_label: str | None = None
    argomento_label: str | None = None
    unita_label: str | None = None
    telematizzata_label: str | None = None
    # The text says the position is not active yet, or the problem is a general one (002, 2.2).
    email_ammessa: bool = False
    # The subject rule of 002 (2.2, 2.3): what the subject lacks, and the subject to write instead.
    oggetto_mancante: tuple[str, ...] = ()
    oggetto_proposto: str = ""

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
            "telematizzata": self.telematizzata is not None,
            "telematizzata_id": self.telematizzata,
            "servizio_online": self.servizio_online,
            "sollecito": self.sollecito,
            "ticket_ref": self.ticket_ref,
            "evidence": [e.to_dict() for e in self.evidence],
            "gestione_etichetta": self.gestione_label,
            "argomento_etichetta": self.argomento_label,
            "unita_etichetta": self.unita_label,
            "telematizzata_etichetta": self.telematizzata_label,
            "email_ammessa": self.email_ammessa,
            "oggetto_mancante": list(self.oggetto_mancante),
            "oggetto_proposto": self.oggetto_proposto,
        }


class _Hit(NamedTuple):  # a named tuple: several are built per message, and a frozen dataclass is slower to build
    entry: Entry
    start: int  # word positions in the part
    end: int
    term: str
    weight: int  # how specific the evidence is: words of the phrase; 1 for an abbreviation, 3 for an expression
    typo: bool = False  # matched only through the one-typo tolerance


class _Part:
    """One text (subject or body) with every vocabulary phrase and abbreviation found in it."""

    def __init__(self, name: str, text: str, vocab: Vocabularies, within: _Part | None = None) -> None:
        """`within`: an already scanned part whose text starts with `text`, so its phrases can be reused."""
        self.name = name
        self.toks: Tokens = tokens(text)
        if within is None:
            self.found: Found = vocab.lexicon.scan(self.toks)
        else:
            self.found = vocab.lexicon.scan_prefix(self.toks, within.toks, within.found)
        self.roles: dict[tuple[int, str], list[tuple[Phrase, tuple[int, int]]]] = {}
        self.present: dict[int, set[int]] = {_STRONG: set(), _WEAK: set()}  # ids of entries with words here
        roles, strong, weak = self.roles, self.present[_STRONG], self.present[_WEAK]
        for words, spans in self.found.items():
            for key, role, p in vocab.owners.get(words, ()):
                pairs = [(p, span) for span in spans]
                if (known := roles.get((key, role))) is None:
                    roles[key, role] = pairs
                else:
                    known += pairs
                if role == "phrase":
                    strong.add(key)
                elif role == "hint":
                    weak.add(key)
        self.abbreviations: dict[int, list[_Hit]] = {}
        self._pattern_matches: dict[re.Pattern[str], list[tuple[int, int, str]]] = {}
        self.vocab = vocab
        self._some_expression: bool | None = None  # whether any expression of the vocabularies matches
        if vocab.abbreviations is not None and self.toks.words:
            for m in vocab.abbreviations.finditer(self.toks.folded):
                start, end = self._span(m)
                for e in vocab.abbreviation_owners[m.group(0)]:
                    self.abbreviations.setdefault(id(e), []).append(_Hit(e, start, end, m.group(0), 1))
                    self.present[_STRONG].add(id(e))

    def _span(self, m: re.Match[str]) -> tuple[int, int]:
        start = self.toks.position(m.start())
        return start, max(start + 1, self.toks.position(m.end()))

    def matches(self, rx: re.Pattern[str]) -> list[tuple[int, int, str]]:
        """(start, end, text) where an expression matches: run once per part, since entries share them."""
        found = self._pattern_matches.get(rx)
        if found is None:
            found = self._pattern_matches[rx] = [(*self._span(m), m.group(0)) for m in rx.finditer(self.toks.folded)]
        return found

    def some_expression(self) -> bool:
        """Whether any expression of the vocabularies matches here (one search for all of them)."""
        if self._some_expression is None:
            rx = self.vocab.expressions
            self._some_expression = rx is not None and rx.search(self.toks.folded) is not None
        return self._some_expression

    def expressions_match(self, entry: Entry) -> bool:
        return self.some_expression() and any(map(self.matches, entry.patterns))

    def spans(self, entry: Entry, role: str) -> list[tuple[Phrase, tuple[int, int]]]:
        return self.roles.get((id(entry), role), [])

    def separator(self, left: int, right: int) -> str:
        """The characters between word `left` and word `right`, stripped."""
        end = self.toks.starts[left] + len(self.toks.words[left])
        return self.toks.folded[end : self.toks.starts[right]].strip()

    def hits(self, entry: Entry, tier: int) -> list[_Hit]:
        role = "phrase" if tier == _STRONG else "hint"
        words = self.toks.words
        out = [_Hit(entry, s, e, p.text, p.weight, words[s:e] != p.words) for p, (s, e) in self.spans(entry, role)]
        if tier == _STRONG:
            out += self.abbreviations.get(id(entry), ())
            for rx in entry.patterns:
                out += (_Hit(entry, s, e, text, 3) for s, e, text in self.matches(rx))
        if out and entry.exceptions:
            excluded = [span for _, span in self.spans(entry, "exception")]
            out = [h for h in out if not any(s <= h.start and h.end <= e for s, e in excluded)]
        return out


def _resolve(hits: Sequence[_Hit], part: _Part, by_weight: bool) -> tuple[list[Entry], _Hit]:
    """The entry the text names first (more than one when written side by side), and its evidence;
    `by_weight`: the entry with the most specific evidence, the first named among equals."""
    if len(hits) == 1:  # the usual case, and what the general one gives
        return [hits[0].entry], hits[0]
    kept = [
        h
        for h in hits
        if not any(
            o.entry is not h.entry and o.start <= h.start and h.end <= o.end and o.end - o.start > h.end - h.start
            for o in hits
        )
    ]
    kept.sort(key=lambda h: (h.start, h.start - h.end, h.typo))
    if by_weight:
        best = max(h.weight for h in kept)
        first = next(h for h in kept if h.weight == best)
        return [first.entry], first
    first = kept[0]
    winners = [first.entry]
    end = first.end
    words = part.toks.words
    for h in kept[1:]:
        gap = h.start - end
        together = gap == 0 and part.separator(end - 1, h.start) in _JOINERS
        together = together or (
            gap == 1
            and words[end] in _CONJUNCTIONS
            and not part.separator(end - 1, end)
            and not part.separator(end, h.start)
        )
        if gap < 0 or together:
            if h.entry not in winners:
                winners.append(h.entry)
            end = max(end, h.end)
            continue
        break
    return winners, first


def _choose(
    entries: Sequence[Entry],
    group: int,
    parts: Sequence[_Part],
    allowed: Callable[[Entry], bool] = lambda _e: True,
    by_weight: bool = False,
) -> tuple[list[Entry], _Hit | None, str]:
    for tier in (_STRONG, _WEAK):
        for part in parts:
            present = part.present[tier]
            if tier == _WEAK and not present:
                continue  # no entry has a weak word here (expressions count only as strong)
            if tier == _STRONG and part.some_expression():
                # An entry without words here has hits only if one of its expressions matches.
                candidates = [e for e in entries if id(e) in present or (e.patterns and part.expressions_match(e))]
            else:  # the usual case: only the entries with words here, in their order
                index = part.vocab.index
                found = sorted(index[i][1:] for i in present if i in index and index[i][0] == group)
                candidates = [e for _pos, e in found]
            hits = [h for e in candidates if allowed(e) for h in part.hits(e, tier)]
            if hits:
                winners, hit = _resolve(hits, part, by_weight)
                return winners, hit, part.name
    return [], None, ""


def _grammar_hit(entry: Entry, grammar: Grammar, part: _Part, role: str) -> str | None:
    """The first "verb/noun ... procedure" of the part, as evidence text, or None."""
    heads = part.spans(entry, role)
    if not heads:
        return None
    objects = sorted((s, e, p.text) for p, (s, e) in part.spans(entry, "object"))
    if not objects:
        return None
    words = part.toks.words
    for p, (_s, e) in sorted(heads, key=lambda x: x[1]):
        for o_start, _o_end, o_text in objects:
            if o_start < e or o_start - e > grammar.window:
                continue
            if any(words[i] in grammar.stops for i in range(e, o_start)):
                continue
            return f"{p.text} … {o_text}"
    return None


def _request(vocab: Vocabularies, part: _Part) -> tuple[str, bool] | None:
    """(evidence, strong) for a service request in this part: an explicit phrase or a verb + procedure
    is strong; a noun + procedure ("domanda di rimborso") may also just name a request."""
    entry = vocab.istanza
    for p, _span in part.spans(entry, "phrase"):
        return p.text, True
    if entry.grammar is None:
        return None
    if (ev := _grammar_hit(entry, entry.grammar, part, "verb")) is not None:
        return ev, True
    if (ev := _grammar_hit(entry, entry.grammar, part, "noun")) is not None:
        return ev, False
    return None


def _any(part: _Part, entry: Entry, role: str) -> str | None:
    """The first phrase of `entry` in the role found in the part (outside its exceptions), or None."""
    excluded = [span for _, span in part.spans(entry, "exception")] if entry.exceptions else []
    for p, (s, e) in sorted(part.spans(entry, role), key=lambda x: x[1]):
        if not any(a <= s and e <= b for a, b in excluded):
            return str(p.text)
    return None


def classify(
    msg: ParsedMessage,
    vocab: Vocabularies,
    resolve_message_id: Callable[[str], str | None] = lambda _mid: None,
) -> Classification:
    subject = msg.subject or ""
    body = (msg.text_body or "")[:_BODY_CHARS]
    parts = [_Part("oggetto", subject, vocab), _Part("testo", body, vocab)]
    evidence: list[Evidence] = []

    subject_codes = find_codes(subject)
    body_codes = find_codes(body)
    valid = list(subject_codes.valid) + [c for c in body_codes.valid if c not in subject_codes.valid]
    invalid = list(subject_codes.invalid) + [c for c in body_codes.invalid if c not in subject_codes.invalid]

    gestioni, hit, where = _choose(vocab.gestioni, 0, parts)
    gestione = gestioni[0].id if len(gestioni) == 1 else None
    if hit is not None:
        evidence.append(Evidence("gestione", gestione or "/".join(e.id for e in gestioni), hit.term, where))

    argomenti, hit, argomento_where = _choose(vocab.argomenti, 1, parts, by_weight=True)
    argomento = argomenti[0] if argomenti else None
    if argomento is not None and hit is not None:
        evidence.append(Evidence("argomento", argomento.id, hit.term, argomento_where))

    sollecito = False
    head = parts[1]
    if len(body) > _SOLLECITO_BODY_CHARS:
        head = _Part("testo", body[:_SOLLECITO_BODY_CHARS], vocab, within=parts[1])
    # In a reply the subject is the conversation's: what this message says is in its own text.
    reply = _REPLY.match(subject) is not None and bool(_own_text(body).strip())
    for part in (head,) if reply else (parts[0], head):
        term = _any(part, vocab.sollecito, "phrase")
        if term is not None:
            sollecito = True
            evidence.append(Evidence("sollecito", "sì", term, part.name))
            break

    istanza = False
    # A reminder is not a new request; a subject asking for information is not one either.
    if not sollecito and _any(parts[0], vocab.informativa, "phrase") is None:
        found = [(part, r) for part in parts if (r := _request(vocab, part)) is not None]
        strong = next(((part, r) for part, r in found if r[1]), None)
        weak = found[0] if found else None
        if strong is not None:
            istanza = True
            evidence.append(Evidence("istanza", "sì", strong[1][0], strong[0].name))
        elif (
            weak is not None
            and "?" not in subject
            and "?" not in body
            and _any(parts[1], vocab.informativa, "context") is None
        ):
            istanza = True
            evidence.append(Evidence("istanza", "sì", weak[1][0], weak[0].name))

    telematizzata: Entry | None = None
    if istanza:
        named = {gestione} if gestione else {e.id for e in gestioni}
        found_t, hit, where = _choose(
            vocab.telematizzate,
            2,
            parts,
            lambda e: not e.gestioni or bool(named.intersection(e.gestioni)),
            by_weight=True,
        )
        if found_t and hit is not None:
            telematizzata = found_t[0]
            evidence.append(Evidence("telematizzata", telematizzata.id, hit.term, where))

    email_ammessa = vocab.email_ammessa is not None and any(
        _any(part, vocab.email_ammessa, "phrase") is not None for part in parts
    )
    subject_part = parts[0]
    index = vocab.index
    gestione_spans = [
        _chars(subject_part, h.start, h.end)
        for tier in (_STRONG, _WEAK)
        for i in subject_part.present[tier]
        if i in index and index[i][0] == 0
        for h in subject_part.hits(index[i][2], tier)
    ]
    # The argomento found in the subject, if that is where it was found; else any in the subject.
    argomento_in_subject = argomento_where == "oggetto" or any(
        subject_part.hits(index[i][2], _STRONG)
        for i in subject_part.present[_STRONG]
        if i in index and index[i][0] == 1
    )
    sole = gestioni[0] if len(gestioni) == 1 else None
    check = check_subject(
        subject,
        body,
        gestione_spans=gestione_spans,
        gestione_label=sole.label if sole else None,
        domestic=gestione == "lavoratori_domestici",
        subject_codes=subject_codes.valid,
        body_codes=body_codes.valid,
        argomento_in_subject=argomento_in_subject,
        argomento_label=argomento.label if argomento else None,
    )

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
        evidence=tuple(evidence),
        gestione_label=sole.label if sole else None,
        argomento_label=argomento.label if argomento else None,
        unita_label=vocab.units.get(argomento.unit) if argomento and argomento.unit else None,
        telematizzata_label=telematizzata.label if telematizzata else None,
        email_ammessa=email_ammessa,
        oggetto_mancante=check.missing,
        oggetto_proposto=check.proposal,
    )


def _chars(part: _Part, start: int, end: int) -> tuple[int, int]:
    """Character span in the part's text of words start..end."""
    starts = part.toks.starts
    return starts[start], starts[end - 1] + len(part.toks.words[end - 1])
