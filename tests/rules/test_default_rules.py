"""One test per shipped rule (routing_rules/rules.yaml), through the full pipeline.

A message goes in with `service.ingest`; the recorded outcome, reason and rule are checked; for rules
that answer, the outbox sender delivers the reply to a real SMTP sink and the reply is checked there
(template of the outbox row, Subject, recipient, sending mailbox, threading). Rules that need state
first open a ticket. Genuine PEC (istanza_pec, ricevute_pec) is signed by the test certification
authority of tests/pec/factory.py, which the PEC desk trusts. `generale` is a safety net that no
shipped mailbox reaches: it is tested on a configuration with one more mailbox.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import make_msgid
from pathlib import Path

import pytest
from sqlalchemy import select

from daemon.config import Config, Mailbox
from daemon.core.pipeline import InboundItem, Outcome
from daemon.demo.smtp_sink import SmtpSink, SunkMessage
from daemon.outbound.sender import OutboxSender
from daemon.rules import RoutingFacts, evaluate, load_ruleset
from daemon.service import Service
from storage.models import InboundMessage, Outbox, Ticket, TicketEvent
from tests.pec.factory import ITALY_WINTER, PROVIDER, anomaly, default_pki, envelope, receipt
from tests.rules.facts import make_facts
from tests.support.stack import stack_config

ROOT = Path(__file__).resolve().parents[2]
CITIZEN = "mario.rossi@posta.example"
NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)  # a Friday, 10:30 in Ferrara


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[SmtpSink]:
    sink = SmtpSink("127.0.0.1", 0, spool_dir=tmp_path / "sink")
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()


@dataclass
class Desk:
    """The service with its outbox sender and the SMTP sink its replies reach."""

    service: Service
    config: Config
    sink: SmtpSink

    def receive(
        self,
        mailbox: str,
        subject: str,
        body: str = "Buongiorno,\ncordiali saluti.\n",
        *,
        sender: str = CITIZEN,
        name: str = "Mario Rossi",
        headers: dict[str, str] | None = None,
    ) -> tuple[Outcome, EmailMessage]:
        msg = EmailMessage()
        msg["From"] = f"{name} <{sender}>"
        msg["To"] = self.config.mailbox(mailbox).address
        msg["Subject"] = subject
        msg["Date"] = "Fri, 20 Nov 2026 10:00:00 +0100"
        msg["Message-ID"] = make_msgid(domain="posta.example")
        for key, value in (headers or {}).items():
            msg[key] = value
        msg.set_content(body)
        [outcome] = self.service.ingest([InboundItem(raw=msg.as_bytes(), mailbox_id=mailbox)])
        return outcome, msg

    def deliver(self) -> list[SunkMessage]:
        """Send what is due; return the messages the sink received in this round."""
        before = len(self.sink.messages)
        OutboxSender(self.service.session_factory, self.config, clock=lambda: NOW).send_due()
        return self.sink.messages[before:]

    def outbox(self, inbound_id: int) -> list[Outbox]:
        with self.service.session_factory() as s:
            rows = s.execute(select(Outbox).where(Outbox.inbound_id == inbound_id).order_by(Outbox.id)).scalars()
            return list(rows)

    def ticket(self, ticket_id: str) -> Ticket:
        with self.service.session_factory() as s:
            ticket = s.get(Ticket, ticket_id)
            assert ticket is not None
            s.expunge(ticket)
            return ticket

    def inbound(self, inbound_id: int) -> InboundMessage:
        with self.service.session_factory() as s:
            row = s.get(InboundMessage, inbound_id)
            assert row is not None
            s.expunge(row)
            return row

    def events(self, ticket_id: str) -> list[str]:
        with self.service.session_factory() as s:
            rows = s.execute(select(TicketEvent.kind).where(TicketEvent.ticket_id == ticket_id)).scalars()
            return list(rows)


@pytest.fixture
def desk(shipped_config: Config, sink: SmtpSink, tmp_path: Path) -> Iterator[Desk]:
    workdir = tmp_path / "data"
    workdir.mkdir()
    # The replies of the rules only: the notices to referents have their own tests (tests/conversation).
    cfg = stack_config(shipped_config, workdir, imap_port=1, smtp_port=sink.port, mailboxes=[], notices=False)
    service = Service(cfg, clock=lambda: NOW)
    try:
        yield Desk(service, cfg, sink)
    finally:
        service.close()


def parsed(sunk: SunkMessage) -> EmailMessage:
    return message_from_bytes(sunk.raw, policy=default_policy)  # type: ignore[return-value]


def text_of(sunk: SunkMessage) -> str:
    body = parsed(sunk).get_body(preferencelist=("plain",))
    assert body is not None
    return " ".join(body.get_content().split())


TESTED: set[str] = set()


def covers(*rule_ids: str):
    TESTED.update(rule_ids)
    return lambda f: f


# -- 1. automatic mail: ignored, never answered ------------------------------------------------


@covers("messaggi_automatici")
@pytest.mark.parametrize(
    ("reason", "mailbox", "sender", "subject", "headers"),
    [
        ("auto_reply", "fe-credito", CITIZEN, "Artigiani - avviso bonario", {"Auto-Submitted": "auto-replied"}),
        ("auto_reply", "fe-dismessa", CITIZEN, "Fuori sede fino al 30 novembre", {}),
        ("bounce", "fe-anagrafica", "MAILER-DAEMON@posta.example", "Undelivered Mail Returned to Sender", {}),
        ("loop", "fe-credito", CITIZEN, "Conferma di ricezione", {"X-Sportello-Loop": "sportello-ferrara"}),
    ],
    ids=["risposta_automatica", "risposta_automatica_a_casella_dismessa", "mancato_recapito", "loop"],
)
def test_messaggi_automatici_are_ignored_without_reply(
    desk: Desk, reason: str, mailbox: str, sender: str, subject: str, headers: dict[str, str]
) -> None:
    outcome, _ = desk.receive(mailbox, subject, sender=sender, headers=headers)
    assert (outcome.outcome, outcome.reason, outcome.rule_id) == ("ignored", reason, "messaggi_automatici")
    assert outcome.ticket_id is None
    assert desk.outbox(outcome.inbound_id) == []
    assert desk.deliver() == []


# -- rejections: the reply reaches the sink, from the mailbox that received the message ----------


@dataclass(frozen=True)
class Rejection:
    rule: str
    mailbox: str
    subject: str
    body: str
    reason: str
    template: str
    reply_subject: str  # the reply's Subject starts with this, then quotes the original subject
    hint: str  # what the reply tells the sender to do instead
    sender: str = CITIZEN
    name: str = ""  # test id, when a rule has more than one case

    @property
    def id(self) -> str:
        return self.name or self.rule


PEC_ADDRESS = "direzione.provinciale.ferrara@postacert.inps.example"

REJECTIONS = [
    Rejection(
        "casella_dismessa",
        "fe-dismessa",
        "Artigiani - richiesta informazioni avviso bonario",
        "Buongiorno, chiedo informazioni sull'avviso bonario.",
        "casella_dismessa",
        "rifiuto_casella_dismessa",
        "Casella non più attiva: ",
        "Comunicazione bidirezionale del Cassetto previdenziale",
    ),
    Rejection(
        "casella_dismessa",
        "fe-verifica-dismessa",
        "Aziende con dipendenti - controllo versamenti TFR",
        "Abbiamo ricevuto una comunicazione sul controllo dei versamenti al fondo tesoreria.",
        "casella_dismessa",
        "rifiuto_casella_dismessa",
        "Casella non più attiva: ",
        "Comunicazione bidirezionale del Cassetto previdenziale",
        name="casella_dismessa_verifica_amministrativa",
    ),
    Rejection(
        "casella_dismessa_domanda_online",
        "fe-dismessa",
        "Artigiani - richiesta di rateazione",
        "Chiedo la rateazione dell'avviso di addebito notificato a ottobre.",
        "casella_dismessa",
        "rifiuto_casella_dismessa",
        "Casella non più attiva: ",
        "«Dilazioni amministrative»",
    ),
    Rejection(
        "casella_dismessa_istanza",
        "fe-dismessa",
        "Aziende con dipendenti - istanza di compensazione",
        "Si chiede la compensazione del credito con il debito del mese di ottobre.",
        "casella_dismessa",
        "rifiuto_casella_dismessa",
        "Casella non più attiva: ",
        "Posta Elettronica Certificata della Direzione provinciale: " + "direzione.provinciale.ferrara@postacert",
    ),
    Rejection(
        "casella_dismessa_domestici_credito",
        "fe-dismessa",
        "Colf - avviso di pagamento trimestre",
        "Non ho ricevuto l'avviso di pagamento per la colf.",
        "casella_dismessa",
        "rifiuto_casella_dismessa",
        "Casella non più attiva: ",
        "lavoratori domestici (gestione del credito): GestioneCredito.Ferrara@inps.example",
    ),
    Rejection(
        "casella_dismessa_domestici",
        "fe-dismessa",
        "badante - estratto conto",
        "Vorrei l'estratto conto della badante di mia madre.",
        "casella_dismessa",
        "rifiuto_casella_dismessa",
        "Casella non più attiva: ",
        "lavoratori domestici (anagrafica e flussi): AnagraficaFlussi.Ferrara@inps.example",
    ),
    Rejection(
        "casella_dismessa_appuntamento",
        "fe-dismessa",
        "Richiesta appuntamento con un funzionario",
        "Vorrei fissare un appuntamento per una questione complessa.",
        "casella_dismessa",
        "rifiuto_casella_dismessa",
        "Casella non più attiva: ",
        "Agenda appuntamenti su inps.it",
    ),
    Rejection(
        "sollecito_senza_riferimenti",
        "fe-credito",
        "Sollecito - Artigiani avviso bonario",
        "Non ho ricevuto risposta alla mia richiesta di qualche settimana fa.",
        "sollecito_senza_riferimenti",
        "rifiuto_sollecito_senza_riferimenti",
        "Sollecito senza riferimenti: ",
        "numero di pratica tra parentesi quadre",
    ),
    Rejection(
        "nazionale_solo_uffici_regionali",
        "dg-lavoro-occasionale",
        "Libretto Famiglia - compenso non ricevuto",
        "Il compenso del mese di ottobre non è arrivato.",
        "mittente_non_abilitato",
        "rifiuto_mittente_non_abilitato",
        "Mittente non abilitato: ",
        "lavoro.occasionale.emiliaromagna@inps.example",
    ),
    Rejection(
        "quesiti_normativi_solo_ordine",
        "fe-direzione",
        "Quesito normativo sulla circolare 45/2026",
        "Si chiede un chiarimento sull'applicazione della circolare.",
        "mittente_non_abilitato",
        "rifiuto_mittente_non_abilitato",
        "Mittente non abilitato: ",
        "Ordine dei Dottori Commercialisti e degli Esperti Contabili di Ferrara",
        sender="studio.bianchi@commercialisti.example",
    ),
    Rejection(
        "pec_non_certificata",
        "fe-pec",
        "Artigiani - informazioni sulla posizione contributiva",
        "Buongiorno, vorrei sapere se risultano versamenti mancanti.",
        "istanza_non_pec",
        "rifiuto_istanza_non_pec",
        "Messaggio non accettato dalla casella PEC: ",
        PEC_ADDRESS,
    ),
    Rejection(
        "pec_non_certificata",
        "fe-pec",
        "Commercianti - richiesta di rimborso contributi",
        "Si chiede il rimborso dei contributi versati due volte.",
        "istanza_non_pec",
        "rifiuto_istanza_non_pec",
        "Istanza non accettata per email ordinaria: ",
        PEC_ADDRESS,
        name="pec_non_certificata_istanza_per_email_ordinaria",
    ),
    Rejection(
        "domanda_telematizzata",
        "fe-anagrafica",
        "Aziende con dipendenti - istanza di accentramento contributivo",
        "Si presenta istanza di accentramento contributivo per la matricola 1234567890.",
        "domanda_telematizzata",
        "rifiuto_domanda_telematizzata",
        "Domanda da presentare online: ",
        "Cassetto previdenziale — «Accentramento contributivo»",
    ),
    Rejection(
        "istanza_non_pec",
        "fe-credito",
        "Artigiani - richiesta di rimborso contributi versati in eccedenza",
        "Si chiede il rimborso dei contributi versati in eccedenza nel 2025.",
        "istanza_non_pec",
        "rifiuto_istanza_non_pec",
        "Istanza non accettata per email ordinaria: ",
        PEC_ADDRESS,
    ),
    Rejection(
        "lavoro_occasionale_in_casella_provinciale",
        "fe-anagrafica",
        "Libretto Famiglia - informazioni sul portafoglio",
        "Vorrei sapere come ricaricare il portafoglio.",
        "casella_non_competente",
        "rifiuto_casella_non_competente",
        "Casella non competente: ",
        "lavoro.occasionale.emiliaromagna@inps.example",
    ),
    Rejection(
        "durc_casella_non_competente",
        "fe-durc",
        "Artigiani - avviso bonario n. 45/2026 chiarimenti",
        "Chiedo chiarimenti sull'avviso bonario ricevuto.",
        "casella_non_competente",
        "rifiuto_casella_non_competente",
        "Casella non competente: ",
        "GestioneCredito.Ferrara@inps.example",
    ),
    Rejection(
        "cassetto_aziende_con_dipendenti",
        "fe-credito",
        "Aziende con dipendenti - avviso bonario, informazioni",
        "Chiediamo informazioni sull'avviso bonario ricevuto per la matricola 1234567890.",
        "canale_non_ammesso",
        "rifiuto_canale_non_ammesso",
        "Argomento da trattare nel Cassetto previdenziale: ",
        "«Avvisi bonari») è tra quelli che, per le aziende con dipendenti, si trattano esclusivamente con la "
        "Comunicazione bidirezionale del Cassetto previdenziale aziende",
    ),
    Rejection(
        "cassetto_aziende_con_dipendenti",
        "fe-anagrafica",
        "Aziende con dipendenti – note di rettifica",
        "Abbiamo ricevuto una nota di rettifica per il mese di giugno, matricola 1234567890.",
        "canale_non_ammesso",
        "rifiuto_canale_non_ammesso",
        "Argomento da trattare nel Cassetto previdenziale: ",
        "«Flussi UniEmens»",
        name="cassetto_aziende_con_dipendenti_note_di_rettifica",
    ),
    Rejection(
        "cassetto_aziende_agricole",
        "fe-anagrafica",
        "Azienda agricola - agevolazione GIOV/AGR DL 91/2014",
        "Chiediamo perché l'agevolazione non è stata riconosciuta.",
        "canale_non_ammesso",
        "rifiuto_canale_non_ammesso",
        "Argomento da trattare nel Cassetto previdenziale: ",
        "Cassetto previdenziale aziende agricole",
    ),
    Rejection(
        "cassetto_artigiani_commercianti",
        "fe-credito",
        "Artigiani - FRRLCU70E21D548L - avviso bonario rata maggio",
        "Ho ricevuto l'avviso bonario per la rata di maggio ma ho già pagato.",
        "canale_non_ammesso",
        "rifiuto_canale_non_ammesso",
        "Argomento da trattare nel Cassetto previdenziale: ",
        "Cassetto previdenziale per artigiani e commercianti",
    ),
    Rejection(
        "cassetto_gestione_separata_committenti",
        "fe-credito",
        "Gestione separata committente 01234567897 - F24 compensi amministratori",
        "Come committente abbiamo versato con F24 i contributi degli amministratori.",
        "canale_non_ammesso",
        "rifiuto_canale_non_ammesso",
        "Argomento da trattare nel Cassetto previdenziale: ",
        "Cassetto previdenziale per committenti della gestione separata",
    ),
    Rejection(
        "cassetto_gestione_separata_professionisti",
        "fe-credito",
        "Gestione separata - rimborso contributi 2024",
        "Sono un libero professionista (CF BNCGLI47S42A944D); vorrei sapere lo stato del rimborso.",
        "canale_non_ammesso",
        "rifiuto_canale_non_ammesso",
        "Argomento da trattare nel Cassetto previdenziale: ",
        "Cassetto previdenziale liberi professionisti",
    ),
    Rejection(
        "oggetto_non_conforme",
        "fe-credito",
        "Lavoratori domestici - avviso bonario, informazioni",
        "Buongiorno, ho ricevuto un avviso bonario per la mia colf.",
        "oggetto_non_conforme",
        "rifiuto_oggetto_non_conforme",
        "Oggetto non conforme: ",
        "manca: - il codice fiscale del contribuente; La invitiamo",
        name="oggetto_non_conforme_domestici_senza_codice_fiscale",
    ),
    Rejection(
        "oggetto_non_conforme",
        "fe-credito",
        "colf - pagamento contributi 3 trimestre",
        "Sono Mantovani Carla (cf MNTCRL55A70D548C), datrice di lavoro della colf.",
        "oggetto_non_conforme",
        "rifiuto_oggetto_non_conforme",
        "Oggetto non conforme: ",
        "Lavoratori domestici - MNTCRL55A70D548C Mantovani Carla - pagamento contributi 3 trimestre",
        name="oggetto_non_conforme_codice_fiscale_solo_nel_testo",
    ),
    Rejection(
        "oggetto_non_conforme",
        "fe-anagrafica",
        "ARTIGIANI",
        "Buongiorno, vi scrivo per l'avviso ricevuto il mese scorso.",
        "oggetto_non_conforme",
        "rifiuto_oggetto_non_conforme",
        "Oggetto non conforme: ",
        "manca: - una breve descrizione della richiesta; La invitiamo",
        name="oggetto_non_conforme_solo_la_gestione",
    ),
    Rejection(
        "oggetto_non_conforme",
        "fe-credito",
        "Richiesta informazioni",
        "Buongiorno, vorrei qualche informazione.",
        "oggetto_non_conforme",
        "rifiuto_oggetto_non_conforme",
        "Oggetto non conforme: ",
        "manca: - la gestione previdenziale (per esempio Artigiani, Commercianti, Gestione separata, Lavoratori",
        name="oggetto_non_conforme_senza_gestione",
    ),
]
covers(*(r.rule for r in REJECTIONS))


@pytest.mark.parametrize("case", REJECTIONS, ids=[r.id for r in REJECTIONS])
def test_rejection_rule_replies_with_its_template(desk: Desk, case: Rejection) -> None:
    outcome, original = desk.receive(case.mailbox, case.subject, case.body, sender=case.sender)
    assert (outcome.outcome, outcome.reason, outcome.rule_id) == ("rejected", case.reason, case.rule)
    assert outcome.ticket_id is None
    inbound = desk.inbound(outcome.inbound_id)
    assert inbound.rules_version == desk.service.rules.version

    [row] = desk.outbox(outcome.inbound_id)
    mailbox_address = desk.config.mailbox(case.mailbox).address
    assert row.template == case.template
    assert row.to == [case.sender]
    assert row.sender == mailbox_address, "il rifiuto parte dalla casella che ha ricevuto il messaggio"

    [reply] = desk.deliver()
    assert reply.rcpt_tos == (case.sender,)
    assert reply.message_id == row.message_id
    message = parsed(reply)
    assert str(message["Subject"]) == case.reply_subject + case.subject
    assert mailbox_address in str(message["From"])
    assert str(message["In-Reply-To"]).strip("<>") == str(original["Message-ID"]).strip("<>")
    assert message["Auto-Submitted"]
    body = text_of(reply)
    assert f"«{case.subject}»" in body, "la risposta cita l'oggetto originale"
    assert "venerdì 20 novembre 2026 alle 10:30" in body, "la risposta cita la data del messaggio"
    assert case.hint in body
    assert desk.outbox(outcome.inbound_id)[0].status == "sent"


# -- tickets opened: the acknowledgement reaches the sink -------------------------------------


@dataclass(frozen=True)
class Opening:
    rule: str
    mailbox: str
    subject: str
    body: str
    queue: str
    sla: str
    assignee: str | None
    sender: str = CITIZEN
    name: str = ""  # test id, when a rule has more than one case

    @property
    def id(self) -> str:
        return self.name or self.rule


OPENINGS = [
    Opening(
        "lavoro_occasionale_regionale",
        "er-lavoro-occasionale",
        "Libretto Famiglia - compenso non ricevuto",
        "Il compenso del mese di ottobre non è arrivato.",
        "lavoro_occasionale",
        "lavoro_occasionale_regionale",
        "referente.lo.er",
    ),
    Opening(
        "lavoro_occasionale_nazionale",
        "dg-lavoro-occasionale",
        "Libretto Famiglia - caso non risolto in sede regionale",
        "Si inoltra il caso, non risolto a livello regionale.",
        "lavoro_occasionale_nazionale",
        "lavoro_occasionale_regionale",
        "referente.lo.dg",
        sender="lavoro.occasionale.bologna@inps.example",
    ),
    Opening(
        # The regional mailbox is one of our own addresses, but the national one expects its mail:
        # an office handing on a case, not a loop.
        "lavoro_occasionale_nazionale",
        "dg-lavoro-occasionale",
        "Libretto Famiglia - abbinamento F24 non risolto in regione",
        "Trasmettiamo il caso, non risolto a livello regionale.",
        "lavoro_occasionale_nazionale",
        "lavoro_occasionale_regionale",
        "referente.lo.dg",
        sender="lavoro.occasionale.emiliaromagna@inps.example",
        name="lavoro_occasionale_nazionale_dalla_casella_regionale",
    ),
    Opening(
        "quesito_normativo_ordine",
        "fe-direzione",
        "Quesito normativo sulla circolare 45/2026",
        "L'Ordine chiede un chiarimento sull'applicazione della circolare.",
        "normativa",
        "normativa_ordine",
        "direttore.fe",
        sender="info@odcec-fe.example",
    ),
    Opening(
        "durc_preavvisi",
        "fe-durc",
        "Preavviso di accertamento - DURC matricola 1234567890",
        "Si trasmette la documentazione richiesta con il preavviso di accertamento.",
        "verifica",
        "risposta_10gg",
        None,
    ),
    Opening(
        "unita_credito",
        "fe-credito",
        "Artigiani - richiesta informazioni avviso bonario n. 12/2026",
        "Buongiorno, chiedo chiarimenti sull'avviso bonario n. 12/2026.",
        "credito",
        "risposta_10gg",
        "referente.credito",
    ),
    Opening(
        "unita_anagrafica",
        "fe-anagrafica",
        "Commercianti - estratto conto contributivo, contributi mancanti",
        "Nell'estratto conto mancano i contributi del 2019.",
        "anagrafica",
        "risposta_10gg",
        "referente.anagrafica",
    ),
    Opening(
        "unita_verifica",
        "fe-credito",
        "Commercianti - informazioni sulle agevolazioni per le assunzioni",
        "Vorrei sapere quali agevolazioni spettano per una nuova assunzione.",
        "verifica",
        "risposta_10gg",
        None,
    ),
    Opening(
        "caselle_regionali",
        "er-consulenza",
        "Informazioni generiche",
        "Buongiorno, vorrei un chiarimento.",
        "regionale_er-consulenza",
        "risposta_10gg",
        None,
    ),
    Opening(
        "caselle_regionali",
        "er-direzione",
        "Informazioni generiche",
        "Buongiorno, vorrei un chiarimento.",
        "regionale_er-direzione",
        "risposta_10gg",
        None,
        name="caselle_regionali_direzione",
    ),
    Opening(
        "unita_vigilanza",
        "fe-credito",
        "Lavoratori domestici - RSSMRA58C10D548V Rossi Mario - verbale ispettivo",
        "Ho ricevuto un verbale ispettivo relativo alla colf.",
        "vigilanza",
        "risposta_10gg",
        None,
    ),
    Opening(
        "unita_ricorsi",
        "fe-anagrafica",
        "Lavoratori domestici - RSSMRA58C10D548V Rossi Mario - contenzioso amministrativo",
        "Il contenzioso amministrativo per la colf non ha ancora avuto esito.",
        "ricorsi",
        "risposta_10gg",
        None,
    ),
    Opening(
        "per_casella",
        "fe-credito",
        "Gestione separata - aliquota per i collaboratori",
        "Buongiorno, vorrei un appuntamento.",
        "fe-credito",
        "risposta_10gg",
        None,
    ),
    Opening(
        "per_casella",
        "fe-anagrafica",
        "Gestione separata - aliquota per i collaboratori",
        "Buongiorno, vorrei un appuntamento.",
        "fe-anagrafica",
        "risposta_10gg",
        None,
        name="per_casella_anagrafica",
    ),
]
covers(*(o.rule for o in OPENINGS))


@pytest.mark.parametrize("case", OPENINGS, ids=[o.id for o in OPENINGS])
def test_opening_rule_opens_ticket_and_acknowledges(desk: Desk, case: Opening) -> None:
    # Offices and the Ordine are allowed senders: their word counts only with our server's verdict.
    domain = case.sender.rsplit("@", 1)[1]
    auth = {"Authentication-Results": f"mx.inps.example; dkim=pass header.d={domain}"}
    headers = auth if case.sender != CITIZEN else None
    outcome, original = desk.receive(case.mailbox, case.subject, case.body, sender=case.sender, headers=headers)
    assert (outcome.outcome, outcome.reason, outcome.rule_id) == ("opened", None, case.rule)
    assert outcome.ticket_id is not None
    ticket = desk.ticket(outcome.ticket_id)
    assert (ticket.mailbox, ticket.queue, ticket.sla_policy) == (case.mailbox, case.queue, case.sla)
    assert ticket.assignee == case.assignee
    assert ticket.requester == case.sender

    [row] = desk.outbox(outcome.inbound_id)
    assert row.template == "conferma_ricezione"
    assert row.ticket_id == outcome.ticket_id
    [ack] = desk.deliver()
    assert ack.rcpt_tos == (case.sender,)
    message = parsed(ack)
    assert str(message["Subject"]) == f"[{outcome.ticket_id}] Conferma di ricezione: {case.subject}"
    assert desk.config.mailbox(case.mailbox).address in str(message["From"])
    assert str(message["In-Reply-To"]).strip("<>") == str(original["Message-ID"]).strip("<>")
    assert f"La pratica è registrata con il numero {outcome.ticket_id}" in text_of(ack)


@pytest.mark.parametrize("mailbox", ["er-consulenza", "er-direzione"])
def test_cassetto_rule_spares_regional_mailboxes(desk: Desk, mailbox: str) -> None:
    outcome, _ = desk.receive(mailbox, "Aziende con dipendenti - flussi UniEmens scartati, caso complesso")
    assert (outcome.outcome, outcome.rule_id) == ("opened", "caselle_regionali")
    assert desk.ticket(outcome.ticket_id).queue == f"regionale_{mailbox}"
    [ack] = desk.deliver()
    assert str(parsed(ack)["Subject"]).startswith(f"[{outcome.ticket_id}] Conferma di ricezione: ")


def test_cassetto_rule_spares_the_durc_mailbox(desk: Desk) -> None:
    outcome, _ = desk.receive("fe-durc", "Aziende con dipendenti - DURC irregolare, preavviso di accertamento")
    assert (outcome.outcome, outcome.rule_id) == ("opened", "durc_preavvisi")
    assert desk.ticket(outcome.ticket_id).queue == "verifica"


def test_istanza_by_ordinary_email_on_a_regional_mailbox_is_taken_in(desk: Desk) -> None:
    """istanza_non_pec is for provincial mailboxes only."""
    outcome, _ = desk.receive(
        "er-consulenza",
        "Artigiani - richiesta di rimborso contributi versati in eccedenza",
        "Si chiede il rimborso dei contributi versati in eccedenza nel 2025.",
    )
    assert (outcome.outcome, outcome.rule_id) == ("opened", "caselle_regionali")


# -- rules that need a ticket first --------------------------------------------------------------


def _open_and_acknowledge(desk: Desk) -> tuple[str, SunkMessage]:
    outcome, _ = desk.receive(
        "fe-credito", "Artigiani - richiesta informazioni avviso bonario n. 7/2026", "Chiedo chiarimenti."
    )
    assert outcome.outcome == "opened" and outcome.ticket_id
    [ack] = desk.deliver()
    return outcome.ticket_id, ack


@covers("risposta_a_pratica")
def test_risposta_a_pratica_by_in_reply_to_the_acknowledgement(desk: Desk) -> None:
    ticket_id, ack = _open_and_acknowledge(desk)
    outcome, _ = desk.receive(
        "fe-credito",
        "Re: Conferma di ricezione",  # no ticket number: only the threading header links it
        "Allego la ricevuta del pagamento.",
        headers={"In-Reply-To": f"<{ack.message_id}>", "References": f"<{ack.message_id}>"},
    )
    assert (outcome.outcome, outcome.reason, outcome.rule_id) == ("appended", None, "risposta_a_pratica")
    assert outcome.ticket_id == ticket_id
    assert desk.outbox(outcome.inbound_id) == []
    assert desk.deliver() == []
    assert "messaggio" in desk.events(ticket_id)


@covers("risposta_a_pratica")
def test_risposta_a_pratica_by_ticket_number_in_the_subject(desk: Desk) -> None:
    ticket_id, _ack = _open_and_acknowledge(desk)
    outcome, _ = desk.receive(
        "fe-anagrafica",  # another mailbox of the office: the number still finds the ticket
        f"Re: [{ticket_id}] Conferma di ricezione: Artigiani - avviso bonario",
        "Integro con la documentazione richiesta.",
    )
    assert (outcome.outcome, outcome.rule_id, outcome.ticket_id) == ("appended", "risposta_a_pratica", ticket_id)
    assert desk.deliver() == []


@covers("sollecito_con_riferimento")
def test_sollecito_con_riferimento_appends_to_the_ticket(desk: Desk) -> None:
    ticket_id, _ack = _open_and_acknowledge(desk)
    outcome, _ = desk.receive(
        "fe-credito",
        "Sollecito - Artigiani avviso bonario",
        f"Non ho ricevuto risposta alla richiesta registrata come pratica {ticket_id}.",
    )
    assert (outcome.outcome, outcome.reason, outcome.rule_id) == ("appended", None, "sollecito_con_riferimento")
    assert outcome.ticket_id == ticket_id
    assert "sollecito" in desk.events(ticket_id)
    assert desk.deliver() == []


@covers("sollecito_con_riferimento")
def test_sollecito_in_reply_to_the_acknowledgement_appends_to_the_ticket(desk: Desk) -> None:
    """The second branch of the rule's `una_di`: no ticket number, only the threading header."""
    ticket_id, ack = _open_and_acknowledge(desk)
    outcome, _ = desk.receive(
        "fe-credito",
        "Sollecito - Artigiani avviso bonario",
        "Non ho ancora ricevuto risposta.",
        headers={"In-Reply-To": f"<{ack.message_id}>", "References": f"<{ack.message_id}>"},
    )
    assert (outcome.outcome, outcome.rule_id, outcome.ticket_id) == ("appended", "sollecito_con_riferimento", ticket_id)
    assert "sollecito" in desk.events(ticket_id)
    assert desk.deliver() == []


def test_sollecito_citing_an_unknown_ticket_is_rejected(desk: Desk) -> None:
    outcome, _ = desk.receive("fe-credito", "Sollecito pratica FE-2026-999999 - Artigiani", "Ancora in attesa.")
    assert (outcome.outcome, outcome.rule_id) == ("rejected", "sollecito_senza_riferimenti")
    [reply] = desk.deliver()
    assert str(parsed(reply)["Subject"]).startswith("Sollecito senza riferimenti: ")


# -- genuine PEC: signed by the test certification authority, which the PEC desk trusts ---------

PEC_CITIZEN = "mario.rossi@pec.example"
PEC_ISTANZA = "Istanza di rimborso contributi versati in eccesso - Artigiani"


@pytest.fixture
def pec_desk(desk: Desk, tmp_path: Path) -> Iterator[Desk]:
    """The desk, its configuration trusting the test CA (`pec.ca_bundle`), on the same database."""
    bundle = default_pki().write_bundle(tmp_path)
    cfg = desk.config.model_copy(update={"pec": {"ca_bundle": str(bundle)}})
    service = Service(cfg, clock=lambda: NOW)
    try:
        yield Desk(service, cfg, desk.sink)
    finally:
        service.close()


def _ingest(desk: Desk, raw: bytes, mailbox: str = "fe-pec") -> Outcome:
    [outcome] = desk.service.ingest([InboundItem(raw=raw, mailbox_id=mailbox)])
    return outcome


def _genuine_istanza(n: int = 1) -> bytes:
    return envelope(
        sender=PEC_CITIZEN,
        subject=PEC_ISTANZA,
        data=NOW.astimezone(ITALY_WINTER),
        identificativo=f"opec-regole.20261120103000.{n:05d}.01.1.1@{PROVIDER}",
        msgid=f"<istanza-regole-{n}@pec.example>",
    ).raw()


@covers("istanza_pec")
def test_istanza_pec_opens_a_ticket_in_the_istanze_queue_and_acknowledges(pec_desk: Desk) -> None:
    outcome = _ingest(pec_desk, _genuine_istanza())
    assert (outcome.outcome, outcome.reason, outcome.rule_id) == ("opened", None, "istanza_pec")
    ticket = pec_desk.ticket(outcome.ticket_id)
    assert (ticket.mailbox, ticket.queue, ticket.sla_policy) == ("fe-pec", "istanze", "risposta_10gg")
    assert ticket.tags == ["istanza"]
    assert ticket.requester == PEC_CITIZEN, "il richiedente è il mittente certificato, non il gestore"
    [row] = pec_desk.outbox(outcome.inbound_id)
    assert (row.template, row.to, row.sender) == ("conferma_ricezione", [PEC_CITIZEN], PEC_ADDRESS)
    [ack] = pec_desk.deliver()
    assert ack.rcpt_tos == (PEC_CITIZEN,)
    assert str(parsed(ack)["Subject"]) == f"[{outcome.ticket_id}] Conferma di ricezione: {PEC_ISTANZA}"


@covers("ricevute_pec")
@pytest.mark.parametrize("receipt_type", ["accettazione", "avvenuta-consegna"])
def test_ricevute_pec_are_filed_on_their_ticket_without_reply(pec_desk: Desk, receipt_type: str) -> None:
    opened = _ingest(pec_desk, _genuine_istanza())
    [ack] = pec_desk.deliver()
    raw = receipt(
        receipt_type,
        our_msgid=f"<{ack.message_id}>",
        recipient=PEC_CITIZEN,
        subject=str(parsed(ack)["Subject"]),
        data=NOW.astimezone(ITALY_WINTER),
        identificativo=f"opec-regole.20261120103100.00009.01.1.1@{PROVIDER}",
    ).raw()
    outcome = _ingest(pec_desk, raw)
    assert (outcome.outcome, outcome.reason, outcome.rule_id) == ("ignored", "ricevuta_pec", "ricevute_pec")
    assert outcome.ticket_id == opened.ticket_id
    assert f"ricevuta_pec_{receipt_type}" in pec_desk.events(opened.ticket_id)
    assert pec_desk.outbox(outcome.inbound_id) == []
    assert pec_desk.deliver() == []


@covers("pec_non_certificata")
def test_anomaly_envelope_on_the_pec_box_is_rejected(pec_desk: Desk) -> None:
    """A busta di anomalia: ordinary mail that the provider wrapped, not certified."""
    outcome = _ingest(pec_desk, anomaly(sender="luigi.bianchi@gmail.example", subject=PEC_ISTANZA))
    assert (outcome.outcome, outcome.reason, outcome.rule_id) == ("rejected", "istanza_non_pec", "pec_non_certificata")
    assert outcome.ticket_id is None


# -- the rules on their facts ---------------------------------------------------------------------


def pec_facts(**changes: object) -> RoutingFacts:
    """A genuine PEC istanza on fe-pec."""
    pec = {
        "mailbox": "fe-pec",
        "mailbox_kind": "pec",
        "sender": "studio.rossi@pec.commercialisti.example",
        "sender_domain": "pec.commercialisti.example",
        "pec_kind": "posta-certificata",
        "argomento": "rimborsi",
        "argomento_cassetto": True,
        "istanza": True,
        "has_valid_cf": True,
        "subject": "Artigiani - RSSMRA80A01D548U - richiesta di rimborso contributi",
        "body": "Si chiede il rimborso dei contributi versati in eccedenza.",
        "attachment_count": 1,
        "attachment_bytes": 120_000,
    }
    return make_facts(**{**pec, **changes})


def _load_config(extra_mailboxes: tuple[Mailbox, ...] = ()) -> Config:
    from daemon.config import load_config

    config = load_config(ROOT / "config.yaml", env={})
    if extra_mailboxes:
        config = config.model_copy(update={"mailboxes": (*config.mailboxes, *extra_mailboxes)})
    return config


def _shipped_rules(config: Config):
    from daemon.outbound.templates import TemplateRenderer
    from daemon.rules.loader import vocabulary_values

    names = TemplateRenderer(ROOT / "templates").names()
    return load_ruleset(ROOT / "routing_rules", config, names, vocabulary_values(ROOT / "routing_rules"))


@pytest.fixture(scope="module")
def shipped_rules():
    return _shipped_rules(_load_config())


@pytest.mark.parametrize("receipt_type", ["accettazione", "avvenuta-consegna", "errore-consegna"])
def test_ricevute_pec_are_ignored(shipped_rules, receipt_type: str) -> None:
    facts = pec_facts(
        pec_kind="ricevuta", pec_receipt_type=receipt_type, istanza=False, sender="posta-certificata@pec.example"
    )
    decision = evaluate(shipped_rules, facts)
    assert (decision.rule_id, decision.action, decision.reason) == ("ricevute_pec", "ignore", "ricevuta_pec")
    assert decision.templates == ()


def test_istanza_pec_decision(shipped_rules) -> None:
    decision = evaluate(shipped_rules, pec_facts())
    assert (decision.rule_id, decision.action, decision.reason) == ("istanza_pec", "open_ticket", None)
    assert (decision.queue, decision.sla, decision.tags) == ("istanze", "risposta_10gg", ("istanza",))
    assert decision.templates == ()  # the pipeline sends the acknowledgement


@pytest.mark.parametrize("kind", ["none", "non_verificata", "anomalia"])
@pytest.mark.parametrize("istanza", [True, False], ids=["istanza", "non_istanza"])
def test_anything_on_the_pec_box_that_is_not_genuine_pec_is_rejected(shipped_rules, kind: str, istanza: bool) -> None:
    decision = evaluate(shipped_rules, pec_facts(pec_kind=kind, istanza=istanza))
    assert (decision.rule_id, decision.action, decision.reason) == ("pec_non_certificata", "reject", "istanza_non_pec")
    assert decision.templates == ("rifiuto_istanza_non_pec",)
    assert decision.params["indirizzo_pec"] == PEC_ADDRESS


def test_genuine_pec_that_is_not_an_istanza_goes_to_the_unit_or_the_mailbox_queue(shipped_rules) -> None:
    assert evaluate(shipped_rules, pec_facts(istanza=False)).rule_id == "unita_credito"
    decision = evaluate(shipped_rules, pec_facts(istanza=False, unita=None, argomento=None))
    assert (decision.rule_id, decision.queue) == ("per_casella", "fe-pec")


def test_domanda_telematizzata_by_pec_is_still_rejected(shipped_rules) -> None:
    decision = evaluate(shipped_rules, pec_facts(telematizzata="dilazione_sanzioni", servizio_online="Cassetto"))
    assert (decision.rule_id, decision.reason) == ("domanda_telematizzata", "domanda_telematizzata")


def test_istanza_non_pec_is_only_for_provincial_mailboxes(shipped_rules) -> None:
    ordinary = {"mailbox_kind": "ordinaria", "pec_kind": "none", "sender_allowed": True}
    provincial = evaluate(shipped_rules, pec_facts(mailbox="fe-credito", **ordinary))
    assert (provincial.rule_id, provincial.reason) == ("istanza_non_pec", "istanza_non_pec")
    for mailbox in ("er-consulenza", "er-direzione"):
        decision = evaluate(shipped_rules, pec_facts(mailbox=mailbox, mailbox_level="regionale", **ordinary))
        assert (decision.rule_id, decision.action) == ("caselle_regionali", "open_ticket"), mailbox


# -- generale: the safety net for mailboxes added later ------------------------------------------

NEW_MAILBOX = Mailbox(
    id="fe-nuova",
    address="NuovaCasella.Ferrara@inps.example",
    name="Casella aggiunta dopo le regole",
    office="FE",
    smtp_profile="locale",
)


def _neutral_facts(mailbox: Mailbox, **changes: object) -> RoutingFacts:
    return pec_facts(
        **{
            "mailbox": mailbox.id,
            "mailbox_kind": mailbox.kind,
            "mailbox_status": mailbox.status,
            "mailbox_level": mailbox.level,
            "mailbox_office": mailbox.office,
            "pec_kind": "posta-certificata" if mailbox.kind == "pec" else "none",
            "istanza": False,
            # A matter the office handles by email, not one of the Cassetto's (002, allegato 1, 2.1-2.2).
            "argomento_cassetto": False,
            **changes,
        }
    )


def test_no_shipped_mailbox_reaches_generale(shipped_rules) -> None:
    """Every shipped mailbox is decided before the safety net, whatever the classification found."""
    config = _load_config()
    variants = [
        {},
        {"unita": None, "argomento": None},
        {"unita": None, "argomento": None, "gestione": None},
        {"unita": None, "argomento": "durc", "gestione": "aziende_con_dipendenti"},
        {"sender_allowed": False},
        {"istanza": True},
    ]
    for mailbox in config.mailboxes:
        for changes in variants:
            decision = evaluate(shipped_rules, _neutral_facts(mailbox, **changes))
            assert decision.rule_id != "generale", (mailbox.id, changes)


@covers("generale")
def test_generale_opens_a_ticket_for_a_mailbox_added_later(shipped_rules) -> None:
    rules = _shipped_rules(_load_config((NEW_MAILBOX,)))
    assert [r.id for r in rules.rules] == [r.id for r in shipped_rules.rules]
    decision = evaluate(rules, _neutral_facts(NEW_MAILBOX, unita=None, argomento=None))
    assert (decision.rule_id, decision.action, decision.reason) == ("generale", "open_ticket", None)
    assert (decision.queue, decision.sla, decision.templates) == ("generale", "risposta_10gg", ())
    # A unit's matter on the new mailbox still goes to the unit.
    assert evaluate(rules, _neutral_facts(NEW_MAILBOX)).rule_id == "unita_credito"


def test_generale_through_the_pipeline_on_a_mailbox_added_later(desk: Desk) -> None:
    cfg = desk.config.model_copy(update={"mailboxes": (*desk.config.mailboxes, NEW_MAILBOX)})
    service = Service(cfg, clock=lambda: NOW)
    try:
        extended = Desk(service, cfg, desk.sink)
        outcome, _ = extended.receive("fe-nuova", "Gestione separata - informazioni", "Vorrei un appuntamento.")
        assert (outcome.outcome, outcome.reason, outcome.rule_id) == ("opened", None, "generale")
        ticket = extended.ticket(outcome.ticket_id)
        assert (ticket.mailbox, ticket.queue, ticket.sla_policy) == ("fe-nuova", "generale", "risposta_10gg")
        [ack] = extended.deliver()
        assert NEW_MAILBOX.address in str(parsed(ack)["From"])
        assert str(parsed(ack)["Subject"]).startswith(f"[{outcome.ticket_id}] Conferma di ricezione: ")
    finally:
        service.close()


def test_every_shipped_rule_has_a_test(shipped_rules) -> None:
    shipped = {r.id for r in shipped_rules.rules}
    assert shipped - TESTED == set(), "regole senza test"
    assert TESTED - shipped == set(), "test di regole che non esistono più"


# -- the shipped `sportello rules test` suite ---------------------------------------------------

# Not in the suite: genuine PEC needs a provider-signed envelope, and no shipped mailbox reaches generale.
NOT_IN_SUITE = {"ricevute_pec", "istanza_pec", "generale"}


def test_shipped_rules_test_suite_passes_and_covers_every_reachable_rule(shipped_rules) -> None:
    from typer.testing import CliRunner

    from daemon.cli.main import app

    result = CliRunner().invoke(app, ["rules", "test", "--config", str(ROOT / "config.yaml")])
    assert result.exit_code == 0, result.output
    assert "FALLITO" not in result.output
    import yaml

    suite = yaml.safe_load((ROOT / "routing_rules" / "rules-tests.yaml").read_text(encoding="utf-8"))
    expected = {case["atteso"]["regola"] for case in suite["casi"]}
    shipped = {r.id for r in shipped_rules.rules}
    assert shipped - NOT_IN_SUITE - expected == set(), "regole senza un caso in rules-tests.yaml"
    assert expected <= shipped
    assert f"Casi superati: {len(suite['casi'])} su {len(suite['casi'])}" in result.output
