"""Every email template rendered with realistic data reads as Italian text: no `None`, no unrendered
Jinja, no internal ids where a label belongs, no missing spaces or stray blank lines, dates in words.

The classification comes from the real classifier on a realistic message, so the labels the templates
show are the ones users will read.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import pytest

from daemon.classify import classify, load_vocabularies
from daemon.mail.message import parse_message
from daemon.outbound.templates import TemplateRenderer
from tests.support.paths import ROOT

RENDERER = TemplateRenderer(ROOT / "templates")
VOCAB = load_vocabularies(ROOT / "routing_rules")
MONDAY = datetime(2026, 11, 16, 9, 30, tzinfo=UTC)
DUE = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)


def _classification(subject: str, body: str) -> dict[str, Any]:
    msg = EmailMessage()
    msg["From"] = "Studio Verdi <studio.verdi@commercialisti.example>"
    msg["To"] = "GestioneCredito.Ferrara@inps.example"
    msg["Subject"] = subject
    msg.set_content(body)
    return classify(parse_message(msg.as_bytes()), VOCAB).to_dict()


# Per template: the message it answers and the rule parameters it receives (as the shipped rules give them).
MESSAGES: dict[str, tuple[str, str, dict[str, str]]] = {
    "rifiuto_canale_non_ammesso": (
        "Artigiani - FRRLCU70E21D548L - avviso bonario rata maggio",
        "Ho ricevuto l'avviso bonario per la rata di maggio ma ho già pagato.",
        {
            "canale": "la Comunicazione bidirezionale del Cassetto previdenziale per artigiani e commercianti",
            "destinatari": "le posizioni attive di artigiani e commercianti",
            "email_ammessa": "sì",
        },
    ),
    "rifiuto_oggetto_non_conforme": (
        "colf - pagamento contributi 3 trimestre",
        "Sono Mantovani Carla (cf MNTCRL55A70D548C), datrice di lavoro della colf.",
        {},
    ),
    "rifiuto_domanda_telematizzata": (
        "Artigiani - richiesta di rateazione",
        "Chiedo la rateazione dell'avviso di addebito notificato a ottobre.",
        {},
    ),
    "rifiuto_casella_dismessa": (
        "Colf - avviso di pagamento trimestre",
        "Non ho ricevuto l'avviso di pagamento per la colf.",
        {
            "canale": "la casella istituzionale per i lavoratori domestici (gestione del credito)",
            "indirizzo": "GestioneCredito.Ferrara@inps.example",
        },
    ),
    "rifiuto_casella_non_competente": (
        "Libretto Famiglia - informazioni sul portafoglio",
        "Vorrei sapere come ricaricare il portafoglio.",
        {"indirizzo_corretto": "lavoro.occasionale.emiliaromagna@inps.example"},
    ),
    "rifiuto_mittente_non_abilitato": (
        "Quesito normativo sulla circolare 45/2026",
        "Si chiede un chiarimento sull'applicazione della circolare.",
        {"canale": "l'Ordine dei Dottori Commercialisti e degli Esperti Contabili di Ferrara"},
    ),
    "rifiuto_istanza_non_pec": (
        "Artigiani - richiesta di rimborso contributi versati in eccedenza",
        "Si chiede il rimborso dei contributi versati in eccedenza nel 2025.",
        {"indirizzo_pec": "direzione.provinciale.ferrara@postacert.inps.example"},
    ),
}
DEFAULT_MESSAGE = (
    "Lavoratori domestici - MNTCRL55A70D548C Mantovani Carla - avviso di pagamento 3 trimestre",
    "Buongiorno, l'avviso di pagamento del terzo trimestre riporta un importo errato.",
    {},
)


def _context(name: str) -> dict[str, Any]:
    subject, body, params = MESSAGES.get(name, DEFAULT_MESSAGE)
    pratica = {
        "id": "FE-2026-000123",
        "protocollo": "FE-2026-000123",
        "identificativo_pec": "opec210.20261116093000.12345.01.1.1@pec.example",
        "ricevuta_il": MONDAY,
        "ricevuta_breve": "16/11/2026",
        "casella": "GestioneCredito.Ferrara@inps.example",
        "nome_richiedente": "Carla Mantovani",
        "richiedente": "carla.mantovani@posta.example",
        "oggetto": subject,
        "message_id": "abc123@posta.example",
        "coda": "credito",
        "scadenza": DUE,
        "scadenza_breve": "30/11/2026",
        "giorni_ritardo": 3,
        "stato": "in_carico",
        "stato_descrizione": "presa in carico",
        "esito": "risolta",
        "chiusa_il": None,
        "aggiornata_il": MONDAY,
        "codici_fiscali": ["MNTCRL55A70D548C"],
        "gestione": "Lavoratori domestici",
        "argomento": None,
        "collegata_a": None,
        "assegnatario": "referente.credito",
    }
    return {
        "messaggio": {
            "oggetto": subject,
            "mittente": "carla.mantovani@posta.example",
            "nome_mittente": "Carla Mantovani",
            "data_ricezione": MONDAY,
            "message_id": "abc123@posta.example",
        },
        "casella": {
            "id": "fe-credito",
            "indirizzo": "GestioneCredito.Ferrara@inps.example",
            "nome": "Gestione del credito — Ferrara",
            "tipo": "ordinaria",
        },
        "ufficio": {"id": "FE", "nome": "Direzione provinciale di Ferrara"},
        "ticket": {"id": "FE-2026-000123", "scadenza": DUE, "coda": "credito"},
        "motivo": "regola di smistamento",
        "classificazione": _classification(subject, body),
        "parametri": params,
        "giorni_risposta": 10,
        "pratica": pratica,
        "conteggio": {"giorni": 10, "scadenza": DUE, "scadenza_breve": "30/11/2026", "avvio": MONDAY},
        "prossimo_passo": {"previsto_il": DUE, "descrizione": "sollecito al responsabile dell'Agenzia", "id": "x"},
        "assegnatario": {"nome": "Anna Bianchi", "indirizzo": "anna.bianchi@inps.example"},
        "direttore": {"nome": "Giulia Russo"},
        "oggi": MONDAY,
        "oggi_breve": "16/11/2026",
        "persona": {"id": "referente.credito", "nome": "Anna Bianchi"},
        # The conversation: a notice, a relayed answer, a wrong command, a status request, a hand-over.
        "nuova": True,
        "testo": body,
        "risposta": "Gentile signora Mantovani,\nil versamento risulta registrato.\nCordiali saluti",
        "errori": ["riga 1 «#chuidi»: comando sconosciuto #chuidi; forse #chiudi?"],
        "destinazione": {"indirizzo": "direzione.emiliaromagna@inps.example", "nome": "Direzione regionale"},
        "stato_richiesto": {
            **pratica,
            "stato": "in_carico",
            "stato_descrizione": "presa in carico",
            "esito": None,
            "chiusa_il": None,
            "aggiornata_il": MONDAY,
            "ultimo_aggiornamento": {"data": MONDAY, "testo": "Il versamento risulta registrato."},
        },
        "totale": 3,
        "scadute": 1,
        "elencate": 2,
        "pratiche": [
            {**pratica, "scaduta": True, "stato": "in_carico", "giorni_residui": None, "assegnata": True},
            {
                **pratica,
                "id": "FE-2026-000124",
                "scaduta": False,
                "stato": "in_attesa",
                "giorni_residui": 4,
                "assegnata": False,
                "coda": "fe-credito",
            },
        ],
        "ricevuta": {"tipo": "mancata consegna", "errore": "casella piena"},
        "testo_originale": "L'Ordine chiede un chiarimento sull'applicazione della circolare 45/2026.",
        "per_tipo": [("casella_non_leggibile", 1), ("quarantena", 2)],
        "segnalazioni": [
            {
                "id": 7,
                "quando": MONDAY,
                "tipo": "quarantena",
                "casella": "fe-credito",
                "pratica": None,
                "nota": "messaggio in quarantena (messaggio_illeggibile); copia esatta in archivio",
            },
            {
                "id": 8,
                "quando": MONDAY,
                "tipo": "casella_non_leggibile",
                "casella": "fe-pec",
                "pratica": "FE-2026-000123",
                "nota": "connessione rifiutata dal server IMAP (127.0.0.1:993)",
            },
        ],
    }


# Emails to administrators name alert kinds by their ids: the values `sportello alerts list --kind` takes.
FOR_ADMINS = {"segnalazioni_amministratori"}
INTERNAL_ID = re.compile(r"\b[a-z]+_[a-z_]+\b")  # avvisi_bonari, in_attesa, lavoratori_domestici, ...
GLUED = re.compile(r"[a-zàèéìòù][A-Z][a-z]")  # "parolaAltra": a space lost around an inserted label


@pytest.mark.parametrize("name", sorted(RENDERER.names()))
def test_template_reads_as_text(name: str) -> None:
    email = RENDERER.render(name, _context(name))
    for text in (email.subject, email.text):
        assert "None" not in text, text
        assert "{{" not in text and "{%" not in text and "}}" not in text, text
        assert " ." not in text and " ," not in text and "( " not in text, text
        assert "\n\n\n" not in text, f"righe vuote ripetute:\n{text}"
        words = [w for w in text.split() if "@" not in w and "." not in w.strip(".,;:")]
        if name not in FOR_ADMINS:
            assert not [w for w in words if INTERNAL_ID.search(w)], text
        assert not [w for w in words if GLUED.search(w)], text
        assert "sportello tickets" not in text, "comandi da terminale in un'email per persone"
    assert not email.text.startswith("\n") and email.subject.strip() == email.subject


def test_dates_are_written_out_in_italian() -> None:
    email = RENDERER.render("conferma_ricezione", _context("conferma_ricezione"))
    assert "lunedì 16 novembre 2026" in email.text


def test_subject_rejection_shows_the_subject_built_from_the_message() -> None:
    text = RENDERER.render("rifiuto_oggetto_non_conforme", _context("rifiuto_oggetto_non_conforme")).text
    # The codice fiscale and the name were only in the body: the proposed subject carries them.
    assert "Lavoratori domestici - MNTCRL55A70D548C Mantovani Carla - pagamento contributi 3 trimestre" in text
    assert "il codice fiscale del contribuente" in text


def test_cassetto_rejection_names_the_argomento_and_the_route() -> None:
    text = RENDERER.render("rifiuto_canale_non_ammesso", _context("rifiuto_canale_non_ammesso")).text
    assert "«Avvisi bonari»" in text
    assert "Cassetto previdenziale per artigiani e commercianti" in text
    assert "posizioni non ancora attive" in text


def test_digest_shows_states_as_words() -> None:
    text = RENDERER.render("sla_riepilogo", _context("sla_riepilogo")).text
    assert "stato: in carico" in text and "in attesa del richiedente" in text


@pytest.mark.parametrize("name", ["sla_promemoria", "sla_sollecito", "sla_escalation_regionale"])
def test_queues_are_shown_by_their_label(name: str) -> None:
    context = _context(name)
    context["pratica"]["coda"] = "lavoro_occasionale"
    text = RENDERER.render(name, context).text
    assert "referenti regionali del lavoro occasionale" in text
    assert "lavoro_occasionale" not in text


def test_digest_shows_mailbox_queues_by_their_label() -> None:
    text = RENDERER.render("sla_riepilogo", _context("sla_riepilogo")).text
    assert "coda: casella Gestione del credito" in text and "fe-credito" not in text
