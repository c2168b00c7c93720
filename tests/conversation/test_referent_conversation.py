"""A referent runs a ticket from their mail client: notice, reply relayed to the requester, commands,
requester replies, forged replies, status by email, escalations between offices; each on the real
pipeline, with an injected clock and a real SMTP sink."""

from __future__ import annotations

import datetime as dt
from email import message_from_bytes
from email.policy import default as default_policy

import pytest
from sqlalchemy import select

from daemon.core.pipeline import InboundItem
from storage.models import Alert, InboundMessage
from tests.support.bench import ANNA, CITIZEN, DR, SentMail, SlaBench, credito_ticket, mail, rome
from tests.support.mail import authenticated
from tests.support.replies import CLIENTS, reply, reply_to_notice

MARCO = "marco.verdi@inps.example"
CREDITO = "GestioneCredito.Ferrara@inps.example"
NEW_TEXT = "Gentile signor Rossi,\nl'avviso è stato annullato d'ufficio.\nCordiali saluti"


def notice_to(mails: list[SentMail], address: str) -> SentMail:
    found = [m for m in mails if m.template == "notifica_referente" and m.to == [address]]
    assert len(found) == 1, [(m.template, m.to) for m in mails]
    return found[0]


def sent(mails: list[SentMail], template: str) -> list[SentMail]:
    return [m for m in mails if m.template == template]


def message_id(m: SentMail) -> str:
    return str(m.headers["Message-ID"]).strip("<>")


def answer(
    bench: SlaBench,
    notice: SentMail,
    text: str,
    when: dt.datetime,
    *,
    client: str = "thunderbird",
    sender: str = ANNA,
    name: str = "Anna Bianchi",
    auth: bool = True,
    attachment: tuple[str, bytes] | None = None,
) -> str:
    raw = reply_to_notice(client, notice.headers, text, to=CREDITO, sender=sender, name=name, attachment=attachment)
    if auth:
        raw = authenticated(raw, "inps.example")
    out = bench.ingest(raw, "fe-credito", when)
    return out.outcome


def plain(m: SentMail) -> str:
    return m.headers.get_body(preferencelist=("plain",)).get_content()


def test_new_ticket_notice_reaches_the_assignee_with_the_original_and_a_signed_token(bench: SlaBench) -> None:
    original = mail(CREDITO, CITIZEN, "Artigiani - avviso bonario n. 1/2026", name="Mario Rossi", message_id="c1")
    tid = bench.ingest(original, "fe-credito", rome(2026, 11, 16, 10)).ticket_id
    assert tid is not None
    notice = notice_to(bench.deliver(), ANNA)
    assert f"[{tid}]" in notice.subject
    assert notice.headers["Reply-To"] == CREDITO  # never the citizen
    assert notice.headers["From"].addresses[0].addr_spec == CREDITO
    text = plain(notice)
    assert "lunedì 30 novembre 2026" in text and "artigiani" in text.lower()
    # The citizen's message travels byte for byte as message/rfc822.
    parts = [p for p in notice.headers.iter_attachments() if p.get_content_type() == "message/rfc822"]
    assert len(parts) == 1
    assert original.replace(b"\n", b"\r\n") in notice.raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    # The Message-ID is a token for (ticket, Anna): not for anyone else.
    tokens = bench.service.tokens
    assert tokens.verify(message_id(notice), ANNA) == tid
    assert tokens.verify(message_id(notice), MARCO) is None


@pytest.mark.parametrize("client", CLIENTS)
def test_referent_answer_reaches_the_requester_as_new_text_only_from_the_institutional_address(
    bench: SlaBench, client: str
) -> None:
    tid = credito_ticket(bench, rome(2026, 11, 16, 10))
    notice = notice_to(bench.deliver(), ANNA)
    pdf = b"%PDF-1.4 annullamento"
    assert (
        answer(bench, notice, NEW_TEXT, rome(2026, 11, 18, 9), client=client, attachment=("annullamento.pdf", pdf))
        == "appended"
    )
    relayed = sent(bench.deliver(), "notifica_in_carico")
    assert len(relayed) == 1
    m = relayed[0]
    assert m.to == [CITIZEN] and m.rcpt == {CITIZEN}
    assert m.headers["From"].addresses[0].addr_spec == CREDITO
    assert ANNA.encode() not in m.raw and b"Bianchi" not in m.raw  # the personal address never shows
    body = plain(m)
    assert "l'avviso è stato annullato d'ufficio." in body
    assert "ha scritto" not in body and "Inviato:" not in body and "Nuova pratica" not in body
    assert "Inviato da iPhone" not in body
    assert str(m.headers["In-Reply-To"]).strip("<>") == "credito1@posta.example"
    assert f"[{tid}]" in m.subject
    files = {p.get_filename(): p.get_content() for p in m.headers.iter_attachments()}
    assert files == {"annullamento.pdf": pdf}
    ticket = bench.ticket(tid)
    assert ticket.state == "in_carico" and ticket.answered_at is not None


def test_answer_on_working_day_three_stops_the_office_ladder(bench: SlaBench) -> None:
    tid = credito_ticket(bench, rome(2026, 11, 16, 10))
    notice = notice_to(bench.deliver(), ANNA)
    answer(bench, notice, NEW_TEXT, rome(2026, 11, 19, 11))
    bench.deliver()
    # No reminder (27 Nov), no sollecito (1 Dec), no regional escalation (11 Dec).
    for day in (rome(2026, 11, 27, 9), rome(2026, 12, 1, 9), rome(2026, 12, 11, 9)):
        assert bench.step(day) == []
    kinds = [e.kind for e in bench.events(tid)]
    assert "sla_risposta" in kinds and "sla_passo" not in kinds


def test_attesa_then_silence_reminds_the_requester_and_closes_for_lack_of_answer(bench: SlaBench) -> None:
    tid = credito_ticket(bench, rome(2026, 11, 16, 10))
    notice = notice_to(bench.deliver(), ANNA)
    answer(bench, notice, "#attesa\nCi invii copia dell'avviso bonario ricevuto.", rome(2026, 11, 18, 9))
    waiting = sent(bench.deliver(), "notifica_in_attesa")
    assert len(waiting) == 1 and "Ci invii copia dell'avviso bonario ricevuto." in plain(waiting[0])
    assert bench.ticket(tid).state == "in_attesa"
    # The office's ladder is paused: nothing on the office's reminder day.
    assert [m.template for m in bench.step(rome(2026, 11, 27, 9))] == []
    # Ten working days of silence: the requester is reminded.
    assert [m.template for m in bench.step(rome(2026, 12, 3, 9))] == ["sla_promemoria_richiedente"]
    # Ten more: closed for lack of answer.
    bench.step(rome(2026, 12, 18, 9))
    ticket = bench.ticket(tid)
    assert ticket.state == "chiusa" and ticket.close_outcome == "mancato_riscontro"


def test_requester_answer_to_attesa_resumes_the_office_clock(bench: SlaBench) -> None:
    tid = credito_ticket(bench, rome(2026, 11, 16, 10))
    notice = notice_to(bench.deliver(), ANNA)
    answer(bench, notice, "#attesa\nServe la copia dell'avviso.", rome(2026, 11, 18, 9))
    waiting = sent(bench.deliver(), "notifica_in_attesa")[0]
    back = mail(CREDITO, CITIZEN, f"Re: {waiting.subject}", "Ecco la copia.", message_id="c-back")
    assert bench.ingest(back, "fe-credito", rome(2026, 11, 20, 9)).outcome == "appended"
    assert bench.ticket(tid).state == "in_carico"
    # Anna gets the new message with a fresh token, and her next answer closes the ticket.
    second = [m for m in bench.deliver() if m.template == "notifica_referente"]
    assert [m.to for m in second] == [[ANNA]] and "Ecco la copia." in plain(second[0])
    answer(bench, second[0], "#chiudi accolta\nAbbiamo annullato l'avviso.", rome(2026, 11, 23, 9))
    closing = sent(bench.deliver(), "notifica_chiusura")
    assert len(closing) == 1 and "Abbiamo annullato l'avviso." in plain(closing[0])
    assert "accolta" in plain(closing[0])
    ticket = bench.ticket(tid)
    assert (ticket.state, ticket.close_outcome) == ("chiusa", "accolta")


def test_incarico_without_text_tells_the_requester_and_relays_nothing_else(bench: SlaBench) -> None:
    tid = credito_ticket(bench, rome(2026, 11, 16, 10))
    notice = notice_to(bench.deliver(), ANNA)
    answer(bench, notice, "#incarico", rome(2026, 11, 17, 9))
    mails = bench.deliver()
    assert [m.template for m in mails] == ["notifica_in_carico"]
    assert "presa in carico" in plain(mails[0])
    ticket = bench.ticket(tid)
    assert ticket.state == "in_carico" and ticket.answered_at is None  # taken in charge is not an answer


def test_nota_is_never_relayed(bench: SlaBench) -> None:
    tid = credito_ticket(bench, rome(2026, 11, 16, 10))
    notice = notice_to(bench.deliver(), ANNA)
    answer(bench, notice, "#nota\nIl contribuente ha già telefonato: verificare il DURC.", rome(2026, 11, 17, 9))
    assert bench.deliver() == []
    assert [e.note for e in bench.events(tid, "nota")] == ["Il contribuente ha già telefonato: verificare il DURC."]
    assert bench.ticket(tid).state == "aperta"


def test_assegna_moves_the_ticket_and_notifies_the_new_assignee(bench: SlaBench) -> None:
    tid = credito_ticket(bench, rome(2026, 11, 16, 10))
    notice = notice_to(bench.deliver(), ANNA)
    answer(bench, notice, "#assegna referente.anagrafica", rome(2026, 11, 17, 9))
    mails = bench.deliver()
    assert bench.ticket(tid).assignee == "referente.anagrafica"
    marco = notice_to(mails, MARCO)
    assert bench.service.tokens.verify(message_id(marco), MARCO) == tid
    assert not [m for m in mails if CITIZEN in m.rcpt]


def test_inoltra_changes_the_queue(bench: SlaBench) -> None:
    tid = credito_ticket(bench, rome(2026, 11, 16, 10))
    notice = notice_to(bench.deliver(), ANNA)
    answer(bench, notice, "#inoltra anagrafica", rome(2026, 11, 17, 9))
    assert bench.ticket(tid).queue == "anagrafica"
    assert [e.kind for e in bench.events(tid, "inoltro_coda")] == ["inoltro_coda"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("#chuidi\nFatto.", "#chiudi"),
        ("#assegna\nA Marco.", "#assegna"),
        ("#assegna nessuno.conosciuto", "persona sconosciuta"),
        ("#inoltra coda_che_non_esiste", "sconosciuta"),
        ("#attesa", "#attesa"),
    ],
)
def test_a_wrong_command_is_answered_to_the_referent_and_nothing_is_relayed(
    bench: SlaBench, text: str, expected: str
) -> None:
    tid = credito_ticket(bench, rome(2026, 11, 16, 10))
    notice = notice_to(bench.deliver(), ANNA)
    answer(bench, notice, text, rome(2026, 11, 17, 9))
    mails = bench.deliver()
    assert [(m.template, m.to) for m in mails] == [("errore_comando", [ANNA])]
    assert expected in plain(mails[0])
    ticket = bench.ticket(tid)
    assert (ticket.state, ticket.queue, ticket.assignee) == ("aperta", "credito", "referente.credito")
    # The error notice carries a token too: Anna can correct by replying to it.
    assert bench.service.tokens.verify(message_id(mails[0]), ANNA) == tid


def test_forged_referent_reply_failing_authentication_is_suspicious_and_relays_nothing(bench: SlaBench) -> None:
    tid = credito_ticket(bench, rome(2026, 11, 16, 10))
    notice = notice_to(bench.deliver(), ANNA)
    raw = reply(
        "thunderbird",
        sender=ANNA,
        name="Anna Bianchi",
        to=CREDITO,
        subject=notice.subject,
        in_reply_to=message_id(notice),
        text="#chiudi\nPratica chiusa.",
        quoted="",
    )
    # Authentication-Results from a server we do not trust, then a forged "trusted" one below it.
    forged = (
        b"Authentication-Results: mx.altrove.example; dkim=pass header.d=inps.example\r\n"
        b"Authentication-Results: mx.inps.example; dkim=pass header.d=inps.example\r\n" + raw
    )
    out = bench.ingest(forged, "fe-credito", rome(2026, 11, 17, 9))
    assert (out.outcome, out.reason) == ("quarantined", "mittente_sospetto")
    assert bench.deliver() == []
    assert bench.ticket(tid).state == "aperta"
    with bench.service.session_factory() as s:
        alerts = list(s.execute(select(Alert).where(Alert.kind == "mittente_sospetto")).scalars())
    assert len(alerts) == 1 and alerts[0].ticket_id == tid
    assert "risposta_sospetta" in [e.kind for e in bench.events(tid)]


def test_authenticated_referent_without_a_valid_token_cannot_act(bench: SlaBench) -> None:
    tid = credito_ticket(bench, rome(2026, 11, 16, 10))
    bench.deliver()
    # Right From, passing authentication, but writing fresh with the tag instead of replying to our notice.
    raw = authenticated(
        mail(CREDITO, ANNA, f"[{tid}] chiusura", "#chiudi\nChiusa.", message_id="a-fresh"), "inps.example"
    )
    out = bench.ingest(raw, "fe-credito", rome(2026, 11, 17, 9))
    assert (out.outcome, out.reason) == ("quarantined", "mittente_sospetto")
    assert bench.deliver() == [] and bench.ticket(tid).state == "aperta"


def test_a_colleagues_reply_with_a_token_for_someone_else_does_not_act(bench: SlaBench) -> None:
    tid = credito_ticket(bench, rome(2026, 11, 16, 10))
    notice = notice_to(bench.deliver(), ANNA)
    # Marco (same office) replies to the notice sent to Anna: the token is bound to Anna.
    out = answer(bench, notice, "#chiudi", rome(2026, 11, 17, 9), sender=MARCO, name="Marco Verdi")
    assert out == "quarantined"
    assert bench.ticket(tid).state == "aperta"


def test_reply_citing_another_requesters_tag_opens_a_new_linked_ticket(bench: SlaBench) -> None:
    tid = credito_ticket(bench, rome(2026, 11, 16, 10))
    bench.deliver()
    stranger = mail(
        CREDITO,
        "curioso@posta.example",
        f"Re: [{tid}] Artigiani - avviso bonario n. 5/2026",
        "Scrivo nella pratica.",
        message_id="s1",
    )
    out = bench.ingest(stranger, "fe-credito", rome(2026, 11, 17, 9))
    assert out.outcome == "opened" and out.ticket_id != tid
    new = bench.ticket(out.ticket_id or "")
    assert new.linked_to == tid and new.requester == "curioso@posta.example"
    with bench.service.session_factory() as s:
        appended = s.execute(select(InboundMessage).where(InboundMessage.ticket_id == tid)).scalars().all()
    assert len(appended) == 1  # only the requester's own first message
    assert "pratica_collegata" in [e.kind for e in bench.events(tid)]


def test_reply_to_a_closed_ticket_after_the_window_opens_a_new_linked_ticket(bench: SlaBench) -> None:
    tid = credito_ticket(bench, rome(2026, 11, 16, 10))
    bench.deliver()
    bench.set_state(tid, "chiusa", rome(2026, 11, 20, 12))
    late = mail(CREDITO, CITIZEN, f"Re: [{tid}] altra domanda", "Ho un'altra domanda.", message_id="late")
    out = bench.ingest(late, "fe-credito", rome(2027, 1, 11, 10))
    assert out.outcome == "opened" and out.ticket_id != tid
    assert bench.ticket(out.ticket_id or "").linked_to == tid
    assert bench.ticket(tid).state == "chiusa"


@pytest.mark.parametrize("subject", ["stato {tid}", "STATO [{tid}]", "Re: Stato pratica {tid}"])
def test_status_by_email_answers_the_requester(bench: SlaBench, subject: str) -> None:
    tid = credito_ticket(bench, rome(2026, 11, 16, 10))
    notice = notice_to(bench.deliver(), ANNA)
    answer(bench, notice, NEW_TEXT, rome(2026, 11, 18, 9))
    bench.deliver()
    ask = mail(CREDITO, CITIZEN, subject.format(tid=tid), "", message_id="st1")
    out = bench.ingest(ask, "fe-credito", rome(2026, 11, 19, 9))
    assert (out.outcome, out.reason) == ("ignored", "richiesta_stato")
    status = sent(bench.deliver(), "stato_pratica")
    assert len(status) == 1 and status[0].to == [CITIZEN]
    text = plain(status[0])
    assert tid in text and "presa in carico" in text and "l'avviso è stato annullato d'ufficio." in text


def test_status_by_email_from_a_stranger_reveals_nothing(bench: SlaBench) -> None:
    tid = credito_ticket(bench, rome(2026, 11, 16, 10))
    bench.deliver()
    ask = mail(CREDITO, "curioso@posta.example", f"stato {tid}", "", message_id="st2")
    bench.ingest(ask, "fe-credito", rome(2026, 11, 19, 9))
    status = sent(bench.deliver(), "stato_pratica")
    assert len(status) == 1 and status[0].to == ["curioso@posta.example"]
    assert tid.encode() not in status[0].raw
    text = plain(status[0])
    assert "avviso bonario" not in text.lower() and "aperta" not in text


def test_auto_responders_on_both_sides_stop_after_one_exchange(bench: SlaBench) -> None:
    tid = credito_ticket(bench, rome(2026, 11, 16, 10))
    notice = notice_to(bench.deliver(), ANNA)
    answer(bench, notice, NEW_TEXT, rome(2026, 11, 17, 9))
    relayed = sent(bench.deliver(), "notifica_in_carico")[0]
    # The citizen's out-of-office answers the relay...
    ooo = mail(CREDITO, CITIZEN, f"Risposta automatica: {relayed.subject}", "Sono in ferie.", message_id="ooo1")
    assert bench.ingest(ooo, "fe-credito", rome(2026, 11, 17, 10)).outcome == "ignored"
    # ... and Anna's out-of-office answers a notice: nothing moves, nothing is sent.
    raw = reply(
        "outlook",
        sender=ANNA,
        name="Anna Bianchi",
        to=CREDITO,
        subject=f"Risposta automatica: {notice.subject}",
        in_reply_to=message_id(notice),
        text="Sono fuori ufficio fino al 30 novembre.",
        quoted="",
    )
    auto = message_from_bytes(authenticated(raw, "inps.example"), policy=default_policy)
    auto["Auto-Submitted"] = "auto-replied"
    assert bench.ingest(auto.as_bytes(), "fe-credito", rome(2026, 11, 17, 11)).outcome == "ignored"
    assert bench.deliver() == []
    assert bench.ticket(tid).state == "in_carico"


def test_regional_escalation_arrives_as_a_regional_ticket_linked_to_the_origin(bench: SlaBench) -> None:
    tid = credito_ticket(bench, rome(2026, 11, 16, 10))
    bench.deliver()
    steps = bench.step(rome(2026, 12, 11, 9))
    escalation = [m for m in steps if m.template == "sla_escalation_regionale"]
    assert len(escalation) == 1 and DR in escalation[0].rcpt
    # The regional directorate's mailbox is one we read: the email arrives there as work.
    out = bench.service.ingest(
        [InboundItem(raw=escalation[0].raw, mailbox_id="er-direzione", received_at=rome(2026, 12, 11, 9, 5))]
    )[0]
    assert out.outcome == "opened" and out.ticket_id is not None and out.ticket_id.startswith("ER-2026-")
    regional = bench.ticket(out.ticket_id)
    assert regional.linked_to == tid and regional.office == "ER"
    # No acknowledgement goes back to our own provincial mailbox.
    assert not [m for m in bench.deliver() if m.template == "conferma_ricezione"]
    # The same email delivered again is the same message, not a second ticket.
    again = bench.service.ingest(
        [InboundItem(raw=escalation[0].raw, mailbox_id="er-direzione", received_at=rome(2026, 12, 11, 9, 6))]
    )[0]
    assert again.duplicate


def test_own_mail_past_the_hop_limit_is_a_loop(bench: SlaBench) -> None:
    tokens = bench.service.tokens
    raw = mail(DR, CREDITO, "[FE-2026-000001] Segnalazione", "Testo.", message_id="x")
    msg = message_from_bytes(raw, policy=default_policy)
    del msg["Message-ID"]
    msg["Message-ID"] = "<fe-2026-000001.abc@sportello.inps.example>"
    msg["X-Sportello-Hop"] = tokens.stamp("fe-2026-000001.abc@sportello.inps.example", 3)
    out = bench.service.ingest(
        [InboundItem(raw=msg.as_bytes(), mailbox_id="er-direzione", received_at=rome(2026, 12, 1))]
    )[0]
    assert (out.outcome, out.reason) == ("ignored", "loop")
    # A forged stamp (another secret) is no proof of being ours: our address without it is a loop as before.
    msg.replace_header("X-Sportello-Hop", "hop=1; sig=" + "0" * 64)
    msg.replace_header("Message-ID", "<other@sportello.inps.example>")
    out = bench.service.ingest(
        [InboundItem(raw=msg.as_bytes(), mailbox_id="er-direzione", received_at=rome(2026, 12, 1))]
    )[0]
    assert (out.outcome, out.reason) == ("ignored", "loop")


def test_sla_report_counts_answers_given_in_time(bench: SlaBench) -> None:
    from daemon.sla.report import sla_report

    t1 = credito_ticket(bench, rome(2026, 11, 16, 10), n=1)
    credito_ticket(bench, rome(2026, 11, 16, 11), n=2)
    notices = bench.deliver()
    first = [m for m in notices if m.template == "notifica_referente" and m.ticket_id == t1][0]
    answer(bench, first, NEW_TEXT, rome(2026, 11, 18, 9))
    with bench.service.session_factory() as s:
        assert bench.service.sla is not None
        rows = {r.queue: r for r in sla_report(s, bench.service.sla, rome(2026, 12, 2, 9))}
    credito = rows["credito"]
    assert (credito.received, credito.answered, credito.answered_in_time, credito.overdue) == (2, 1, 1, 1)
    assert credito.in_time_percent == 100.0


def test_the_ack_states_the_term_of_the_tickets_own_policy(bench: SlaBench) -> None:
    raw = mail(
        "lavoro.occasionale.emiliaromagna@inps.example",
        CITIZEN,
        "Libretto Famiglia - pagamento non ricevuto",
        message_id="lo1",
    )
    out = bench.ingest(raw, "er-lavoro-occasionale", rome(2026, 11, 16, 10))
    assert out.outcome == "opened"
    ticket = bench.ticket(out.ticket_id or "")
    policy = bench.service.sla.policies.for_ticket(ticket.sla_policy)  # type: ignore[union-attr]
    ack = sent(bench.deliver(), "conferma_ricezione")[0]
    assert f"entro {policy.answer_days} giorni lavorativi" in " ".join(plain(ack).split())
    assert policy.answer_days != 10  # the regional policy is not the default one


def test_tickets_show_prints_the_conversation_in_order(bench: SlaBench, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from typer.testing import CliRunner

    from daemon.cli.main import app
    from tests.support.stack import write_config

    tid = credito_ticket(bench, rome(2026, 11, 16, 10))
    notice = notice_to(bench.deliver(), ANNA)
    answer(bench, notice, NEW_TEXT, rome(2026, 11, 18, 9))
    bench.deliver()
    config = write_config(bench.config, tmp_path / "etc")
    runner = CliRunner()
    result = runner.invoke(app, ["tickets", "show", tid, "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["state"] == "in_carico"
    kinds = [e["kind"] for e in data["events"]]
    assert kinds.index("aperta") < kinds.index("risposta_referente") < kinds.index("prima_risposta")
    out = [m for m in data["messages"] if m["direction"] == "out"]
    assert [m["template"] for m in out] == ["notifica_referente", "conferma_ricezione", "notifica_in_carico"]
    assert out[-1]["to"] == [CITIZEN] and "annullato" in out[-1]["body"]
    text = runner.invoke(app, ["tickets", "show", tid, "--config", str(config)]).output
    assert "inviato" in text and f"a {CITIZEN}" in text and "l'avviso è stato annullato" in text
    rows = json.loads(runner.invoke(app, ["outbox", "list", "--config", str(config), "--json"]).output)
    relay = [r for r in rows if r["template"] == "notifica_in_carico"][0]
    assert relay["in_reply_to"] == "credito1@posta.example" and relay["references"] == ["credito1@posta.example"]
    notice_row = [r for r in rows if r["template"] == "notifica_referente"][0]
    assert notice_row["reply_to"] == CREDITO
    raw = runner.invoke(app, ["outbox", "show", str(relay["id"]), "--raw", "--config", str(config)]).stdout_bytes
    with bench.service.session_factory() as s:
        from storage.models import Outbox

        assert raw == s.get(Outbox, relay["id"]).raw  # type: ignore[union-attr]


def test_forged_ordine_on_the_direzione_mailbox_is_suspicious_not_a_quesito(bench: SlaBench) -> None:
    quesito = mail(
        "direzione.ferrara@inps.example",
        "info@odcec-fe.example",
        "Quesito normativo - gestione separata, aliquote 2026",
        "Si chiede un parere.",
        message_id="forged-ordine",
    )
    out = bench.ingest(quesito, "fe-direzione", rome(2026, 11, 16, 10))
    assert (out.outcome, out.reason) == ("quarantined", "mittente_sospetto")
    assert bench.deliver() == []  # no acknowledgement, no rejection to the forged address
    # The same message as our receiving server delivers it, authenticated: a quesito of the Ordine.
    genuine = authenticated(
        mail(
            "direzione.ferrara@inps.example",
            "info@odcec-fe.example",
            "Quesito normativo - gestione separata, aliquote 2026",
            "Si chiede un parere.",
            message_id="genuine-ordine",
        ),
        "odcec-fe.example",
    )
    out = bench.ingest(genuine, "fe-direzione", rome(2026, 11, 16, 11))
    assert (out.outcome, out.rule_id) == ("opened", "quesito_normativo_ordine")


def test_a_citizens_escalation_never_copies_the_ordine(bench: SlaBench) -> None:
    credito_ticket(bench, rome(2026, 11, 16, 10))
    bench.deliver()
    steps = bench.step(rome(2026, 12, 11, 9))
    escalation = [m for m in steps if m.template == "sla_escalation_regionale"]
    assert len(escalation) == 1
    assert escalation[0].rcpt == {DR}  # the citizen's data stays inside the administration


def test_a_professionals_escalation_copies_the_ordine(bench: SlaBench) -> None:
    from daemon.core.tickets import NewTicket, TicketWriter

    received = rome(2026, 11, 16, 10)
    bench.set_time(received)
    with bench.service.session_factory() as s, s.begin():
        ticket = bench.service.tickets.open(
            TicketWriter(s),
            NewTicket(
                office="FE",
                mailbox="fe-credito",
                requester="studio.bianchi@commercialisti.example",
                requester_name="Studio Bianchi",
                subject="Artigiani - avviso bonario per un assistito",
                received_at=received,
                queue="credito",
                assignee="referente.credito",
                tags=("professionista",),
            ),
            now=received,
        )
        tid = ticket.id
    steps = bench.step(rome(2026, 12, 11, 9))
    escalation = [m for m in steps if m.template == "sla_escalation_regionale" and m.ticket_id == tid]
    assert len(escalation) == 1 and escalation[0].rcpt == {DR, "info@odcec-fe.example"}
