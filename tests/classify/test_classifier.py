"""Behaviours of classify() that the corpus exercises only in passing, one by one."""

from __future__ import annotations

import pytest

from daemon.classify import Classification, Vocabularies, classify, find_codes, load_vocabularies
from tests.classify.corpus import RULES
from tests.support.messages import message


@pytest.fixture(scope="module")
def vocab() -> Vocabularies:
    return load_vocabularies(RULES)


def run(vocab: Vocabularies, subject: str, body: str = "", **kw: object) -> Classification:
    return classify(message(subject, body), vocab, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("subject", "body", "gestione", "candidates"),
    [
        ("CF RSSMRA85T10D548H - LD - richiesta estratto conto", "", "lavoratori_domestici", ()),
        ("Gestione Artigiani e Commercianti", "", None, ("artigiani", "commercianti")),
        ("Estratto conto Artigiani/Commercianti", "", None, ("artigiani", "commercianti")),
        ("Gestione separata - doppia contribuzione con artigiani", "", "gestione_separata", ()),
        ("Libretto di famiglia - baby sitter", "", "lavoro_occasionale", ()),
        ("Dipendenti pubblici - riscatto", "", "dipendenti_pubblici", ()),  # longer phrase over "dipendenti"
        ("ART. 116 L. 388/2000 - DM", "", "aziende_con_dipendenti", ()),  # ART. 116 is an article
        ("Colf - rispondere al più presto", "", "lavoratori_domestici", ()),  # not PrestO
        ("Richiesta", "sono il datore di lavoro di una badante", "lavoratori_domestici", ()),  # hint loses
        ("Info esonero - datore di lavoro", "per un apprendista", "aziende_con_dipendenti", ()),  # hint alone
        ("Artigiani - estratto conto", "la mia colf", "artigiani", ()),  # the subject wins
        ("Informazioni", "sono una commerciante di Cento", "commercianti", ()),  # only in the body
        ("Comerciante - avviso", "", "commercianti", ()),  # typo in a long word
        ("Info", "", None, ()),
    ],
)
def test_gestione(vocab: Vocabularies, subject: str, body: str, gestione: str | None, candidates: tuple) -> None:
    cls = run(vocab, subject, body)
    assert (cls.gestione, cls.gestione_candidates) == (gestione, candidates)


@pytest.mark.parametrize(
    ("subject", "body", "istanza", "telematizzata"),
    [
        ("Artigiani - rimborso", "Chiedo il rimborso dei contributi 2024 versati in eccesso.", True, None),
        ("LD - rimborso", "Chiedo il rimborso dei contributi versati due volte.", True, "rimborso_domestici"),
        ("Informazioni sulla domanda di rimborso - artigiani", "", False, None),
        ("Artigiani - rimborso", "Ho presentato domanda di rimborso, vorrei sapere i tempi.", False, None),
        ("Domanda di rimborso - artigiani", "", True, None),
        ("Gestione separata - domanda di iscrizione d'ufficio?", "Che cosa significa?", False, None),
        (
            "Commercianti - avviso di addebito",
            "Si chiede lo sgravio dell'avviso di addebito.",
            True,
            "sospensione_sgravio_cartelle",
        ),  # fmt: skip
        ("Quesito", "Si chiede se l'esonero si applichi anche ai soci.", False, None),
        ("Sollecito domanda di rimborso contributi colf", "", False, None),  # a reminder is not an istanza
        (
            "Aziende con dipendenti - CIGO marzo",
            "Si trasmette la domanda di cassa integrazione.",
            True,
            "cassa_integrazione",
        ),  # fmt: skip
    ],
)
def test_istanza(vocab: Vocabularies, subject: str, body: str, istanza: bool, telematizzata: str | None) -> None:
    cls = run(vocab, subject, body)
    assert (cls.istanza, cls.telematizzata) == (istanza, telematizzata)
    if telematizzata:
        assert cls.servizio_online


@pytest.mark.parametrize(
    ("subject", "body", "sollecito", "ticket"),
    [
        ("Sollecito FE-2026-000123", "", True, "FE-2026-000123"),
        ("sollecito pratica fe-2026-000333", "", True, "FE-2026-000333"),
        ("Estratto conto", "Non ho ricevuto risposta alla richiesta del 3 febbraio.", True, None),
        ("Commercianti - ricevuto sollecito di pagamento", "Ho già pagato.", False, None),
        ("Artigiani - estratto conto", "In attesa di un vostro cortese riscontro porgo distinti saluti.", False, None),
        ("Re: sollecito", "Grazie, ho ricevuto la risposta.", False, None),  # the reply's own text decides
        ("R: [FE-2026-000211] SOLLECITO", "Sollecitiamo una risposta.", True, "FE-2026-000211"),
        ("Pratica FE-2026-000412 - chiusura", "Potete chiudere la pratica.", False, "FE-2026-000412"),
    ],
)
def test_sollecito_and_ticket(
    vocab: Vocabularies, subject: str, body: str, sollecito: bool, ticket: str | None
) -> None:
    cls = run(vocab, subject, body)
    assert (cls.sollecito, cls.ticket_ref) == (sollecito, ticket)


def test_ticket_from_in_reply_to(vocab: Vocabularies) -> None:
    msg = message("Re: estratto conto", "Grazie")
    msg = type(msg)(**{**msg.__dict__, "in_reply_to": ("ack-1@sportello.example",)})
    cls = classify(msg, vocab, resolve_message_id=lambda mid: "FE-2026-000009" if mid.startswith("ack-1") else None)
    assert cls.ticket_ref == "FE-2026-000009"


def test_codes_in_every_form() -> None:
    text = (
        "CF rssmra85t10d548h, poi RSS MRA 85T10 D548H (lo stesso), RSS.MRA.85T10.D548H, "
        "l'omocodice RSSMRA85T10D54UE, uno sbagliato RSSMRA85T10D548X, la P.IVA 00743110157, "
        "tel. 05321234567, REGOLARIZZAZIONE e RIDETERMINAZIONE"
    )
    scan = find_codes(text)
    assert scan.valid == ("RSSMRA85T10D548H", "RSSMRA85T10D54UE", "00743110157")
    assert scan.invalid == ("RSSMRA85T10D548X",)
    assert find_codes("P.IVA 00743110158").invalid == ("00743110158",)  # labelled and wrong
    assert find_codes("n. 00743110158").invalid == ()  # any 11-digit number is no claim to be a code


def test_evidence_says_why(vocab: Vocabularies) -> None:
    cls = run(vocab, "CF RSSMRA85T10D548H - LD - cessazione", "Chiedo la cancellazione del rapporto di lavoro.")
    evidence = {e["field"]: e for e in cls.to_dict()["evidence"]}
    gestione = evidence["gestione"]
    assert (gestione["value"], gestione["term"].upper(), gestione["where"]) == ("lavoratori_domestici", "LD", "oggetto")
    assert evidence["istanza"]["where"] == "testo"
    assert evidence["telematizzata"]["value"] == "lavoratori_domestici_rapporto"
    assert cls.to_dict()["codici_fiscali"] == ["RSSMRA85T10D548H"]
