"""The subject rule of the Ferrara protocol (002, allegato 1, 2.2 and 2.3), on real messages.

The gestione and a short content must be in the subject; for lavoratori domestici also the codice
fiscale and the name of the contribuente, in the subject (not only in the body). Each case is written
against the mistake it catches: looking at the body instead of the subject, counting the gestione word
as content, taking any two words beside a code for a name.
"""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from daemon.classify import Classification, classify, load_vocabularies
from daemon.classify.subject import find_name, name_code, surname_code
from daemon.mail.message import parse_message
from tests.support.paths import ROOT

VOCAB = load_vocabularies(ROOT / "routing_rules")
CARLA = "MNTCRL55A70D548C"  # Mantovani Carla
GRAZIA = "DLCMGR51R50D548E"  # De Luca Maria Grazia


def run(subject: str, body: str = "Buongiorno, attendo un riscontro.") -> Classification:
    msg = EmailMessage()
    msg["From"] = "utente@posta.example"
    msg["To"] = "GestioneCredito.Ferrara@inps.example"
    msg["Subject"] = subject
    msg.set_content(body)
    return classify(parse_message(msg.as_bytes()), VOCAB)


@pytest.mark.parametrize(
    ("subject", "body", "missing"),
    [
        ("Artigiani - avviso bonario rata di maggio", "", ()),
        ("Gestione separata - informazioni", "", ()),
        # A gestione and nothing else: the gestione's own words are not a content.
        ("ARTIGIANI", "Ho ricevuto un avviso bonario.", ("contenuto",)),
        # The code in the body, and no name beside it in the subject.
        ("Lavoratori domestici", f"Rossi, {CARLA}", ("codice_fiscale", "nome", "contenuto")),
        # A code and nothing else.
        (CARLA, "Sono una commerciante, allego i documenti.", ("gestione", "contenuto")),
        # The gestione only in the body does not make the subject conforming.
        ("Richiesta chiarimenti", "Sono un artigiano e non capisco la comunicazione.", ("gestione",)),
        # Two gestioni written together: named, the office decides which.
        ("Artigiani e Commercianti - aliquote 2026", "", ()),
        # Domestic work: code and name in the subject, either order.
        (f"Lavoratori domestici - {CARLA} Mantovani Carla - estratto conto", "", ()),
        (f"LD - Carla Mantovani {CARLA} - estratto conto", "", ()),
        (f"colf {GRAZIA} De Luca Maria Grazia - avviso pagoPA", "", ()),
        # ... the code only in the body,
        ("colf - pagamento contributi", f"Sono Mantovani Carla, cf {CARLA}.", ("codice_fiscale", "nome")),
        # ... the code without the name,
        (f"LD {CARLA} - estratto conto", "", ("nome",)),
        # ... a name that is not the code's (two words beside the code are not enough).
        (f"LD {CARLA} Rossi Mario - estratto conto", "", ("nome",)),
    ],
)
def test_what_the_subject_lacks(subject: str, body: str, missing: tuple[str, ...]) -> None:
    assert run(subject, body).oggetto_mancante == missing


def test_the_proposed_subject_is_built_from_what_the_message_contains() -> None:
    cls = run("colf - pagamento contributi 3 trimestre", f"Buongiorno, sono MANTOVANI CARLA (cf {CARLA}).")
    assert cls.oggetto_proposto == f"Lavoratori domestici - {CARLA} Mantovani Carla - pagamento contributi 3 trimestre"


def test_the_proposal_marks_what_the_message_does_not_contain() -> None:
    cls = run("Lavoratori domestici", "Il codice rapporto non è più visibile.")
    assert cls.oggetto_proposto == (
        "Lavoratori domestici - [codice fiscale] [cognome e nome del contribuente]"
        " - [breve descrizione della richiesta]"
    )
    assert run("Richiesta chiarimenti").oggetto_proposto.startswith("[gestione] - ")


def test_a_conforming_subject_has_no_proposal() -> None:
    assert run("Commercianti - rimborso contributi 2023").oggetto_proposto == ""


@pytest.mark.parametrize(
    ("surname", "name", "code"),
    [
        ("Rossi", "Mario", "RSSMRA"),
        ("Fo", "Ida", "FOXDIA"),
        ("De Luca", "Maria Grazia", "DLCMGR"),
        ("Hoxha", "Elvira", "HXHLVR"),
    ],
)
def test_codice_fiscale_letters_of_surname_and_name(surname: str, name: str, code: str) -> None:
    # Names with four consonants or more take the 1st, 3rd and 4th ("Maria Grazia" -> M, G, R).
    assert surname_code(surname.replace(" ", "")) + name_code(name.replace(" ", "")) == code


def test_a_name_far_from_its_surname_is_not_a_name() -> None:
    assert find_name("Mantovani - estratto conto - Carla", CARLA) is None
    assert find_name("estratto conto Mantovani Carla", CARLA) == (15, 30)


@pytest.mark.parametrize(
    ("subject", "body", "allowed"),
    [
        ("Commercianti - versamenti F24", "La posizione non risulta ancora attiva.", True),
        ("Artigiani - aliquote", "Segnalo un problema generale sul calcolo.", True),
        ("Artigiani - posizione cessata, estratto conto", "Mancano due anni.", True),
        ("Artigiani - avviso bonario", "La mia posizione è attiva dal 2010.", False),
    ],
)
def test_email_stays_open_for_inactive_positions_and_general_problems(subject: str, body: str, allowed: bool) -> None:
    assert run(subject, body).email_ammessa is allowed


def test_labels_travel_with_the_ids() -> None:
    data = run("Aziende con dipendenti – note di rettifica").to_dict()
    assert (data["argomento"], data["argomento_etichetta"]) == ("uniemens", "Flussi UniEmens")
    assert data["gestione_etichetta"] == "Aziende con dipendenti"
    assert data["unita_etichetta"] == "Anagrafica e flussi"
