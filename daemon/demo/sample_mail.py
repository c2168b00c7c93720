"""Sample mail for the demo: one message per kind of situation the offices meet every day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from daemon.clock import utcnow


@dataclass(frozen=True)
class SampleMail:
    mailbox: str
    sender: str
    sender_name: str
    subject: str
    body: str
    headers: tuple[tuple[str, str], ...] = ()

    def to_bytes(self, to: str, when: datetime) -> bytes:
        msg = EmailMessage()
        msg["From"] = f"{self.sender_name} <{self.sender}>"
        msg["To"] = to
        msg["Subject"] = self.subject
        msg["Date"] = format_datetime(when)
        msg["Message-ID"] = make_msgid(domain=self.sender.split("@")[1])
        for name, value in self.headers:
            msg[name] = value
        msg.set_content(self.body)
        return msg.as_bytes()


SAMPLES: tuple[SampleMail, ...] = (
    SampleMail(
        "fe-credito",
        "studio.bianchi@commercialisti.example",
        "Studio Bianchi",
        "CF RSSMRA85T10A562S - Artigiani - avviso bonario n. 123/2026 chiarimenti",
        "Buongiorno,\nper il mio assistito chiedo chiarimenti sull'avviso bonario ricevuto.\n"
        "Cordiali saluti\nDott. Luca Bianchi",
    ),
    SampleMail(
        "fe-anagrafica",
        "famiglia.verdi@posta.example",
        "Giovanna Verdi",
        "Lavoratori domestici - VRDGNN60A41D548C Verdi Giovanna - estratto conto contributi colf",
        "Buongiorno,\nvorrei ricevere l'estratto dei contributi versati per la mia colf.\nGrazie",
    ),
    SampleMail(
        "fe-credito",
        "mario.neri@posta.example",
        "Mario Neri",
        "Richiesta rimborso contributi",
        "Buongiorno,\nchiedo il rimborso dei contributi versati in eccesso nel 2025.\nMario Neri",
    ),
    SampleMail(
        "fe-credito",
        "ditta.gialli@imprese.example",
        "Ditta Gialli srl",
        "Domanda di dilazione avviso di addebito",
        "Con la presente si chiede la rateizzazione dell'avviso di addebito ricevuto.",
    ),
    SampleMail(
        "fe-dismessa",
        "a.rossi@posta.example",
        "Anna Rossi",
        "Informazioni posizione contributiva",
        "Buongiorno, vorrei informazioni sulla mia posizione.",
    ),
    SampleMail(
        "fe-direzione",
        "c.ferrari@commercialisti.example",
        "Carlo Ferrari",
        "Quesito normativo sgravi contributivi",
        "Chiedo un parere sull'applicazione degli sgravi per le nuove assunzioni.",
    ),
    SampleMail(
        "fe-direzione",
        "info@odcec-fe.example",
        "ODCEC Ferrara",
        "Quesito normativo - Gestione separata - aliquote 2026 professionisti",
        "Gli iscritti chiedono chiarimenti sulle aliquote della gestione separata per il 2026.",
        # As the office's mail server delivers it: the Ordine is an allowed sender only when authenticated.
        (("Authentication-Results", "mx.inps.example; dkim=pass header.d=odcec-fe.example"),),
    ),
    SampleMail(
        "er-lavoro-occasionale",
        "lavoro.occasionale.bologna@inps.example",
        "Sede di Bologna",
        "Libretto Famiglia - abbinamento F24 non riuscito - prestatore RSSMRA85T10A562S",
        "Segnaliamo un versamento F24 per il Libretto Famiglia non abbinato al portafoglio.",
        (("Authentication-Results", "mx.inps.example; dkim=pass header.d=inps.example"),),
    ),
    SampleMail(
        "fe-credito",
        "studio.bianchi@commercialisti.example",
        "Studio Bianchi",
        "Risposta automatica: fuori sede",
        "Sarò fuori ufficio fino al 30 novembre.",
        (("Auto-Submitted", "auto-replied"),),
    ),
    SampleMail(
        "fe-durc",
        "impresa.blu@imprese.example",
        "Impresa Blu spa",
        "Aziende con dipendenti - DURC irregolare - preavviso di accertamento matricola 1234567890",
        "Abbiamo ricevuto il preavviso di DURC irregolare: alleghiamo le quietanze F24.",
    ),
)


def demo_messages(addresses: dict[str, str], when: datetime | None = None) -> list[tuple[str, bytes]]:
    now = when or utcnow()
    return [(s.mailbox, s.to_bytes(addresses[s.mailbox], now)) for s in SAMPLES]


def referent_reply(notice: bytes, *, sender: str, name: str, to: str, text: str, when: datetime) -> bytes:
    """A referent's answer to one of our notices, as their mail client writes it (the quoted notice
    below an Italian attribution line) and as the office's mail server delivers it (authenticated)."""
    from email import message_from_bytes
    from email.policy import default

    original = message_from_bytes(notice, policy=default)
    body = original.get_body(preferencelist=("plain",))
    quoted = "\n".join(f"> {line}" for line in (body.get_content() if body else "").splitlines())
    msg = EmailMessage()
    msg["Authentication-Results"] = f"mx.inps.example; dkim=pass header.d={sender.split('@')[1]}"
    msg["From"] = f"{name} <{sender}>"
    msg["To"] = to
    msg["Subject"] = f"Re: {original['Subject']}"
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = make_msgid(domain=sender.split("@")[1])
    msg["In-Reply-To"] = str(original["Message-ID"])
    msg["References"] = str(original["Message-ID"])
    msg.set_content(f"{text}\n\nIl {format_datetime(when)}, sportello ha scritto:\n{quoted}\n")
    return msg.as_bytes()
