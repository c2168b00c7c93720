"""Synthetic PEC messages signed with a test certification authority (cryptography).

The shapes follow the real samples in ../shared/pec-samples: a transport envelope or receipt is
multipart/signed (application/pkcs7-signature, sha-256) over a multipart/mixed holding the text
body, daticert.xml and, for envelopes and complete delivery receipts, postacert.eml; the detached
signature is smime.p7s. Every message is built by hand with CRLF line ends, so that the signed bytes
are exactly known and a test can change one part while keeping the old signature (`Signed.replace`).
"""

from __future__ import annotations

import base64
import dataclasses
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from functools import cache
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "ITALY_WINTER",
    "MAILBOX",
    "PROVIDER",
    "Identity",
    "Part",
    "Pki",
    "Signed",
    "anomaly",
    "daticert_xml",
    "default_pki",
    "envelope",
    "make_ca",
    "make_signer",
    "original_message",
    "receipt",
    "sign",
]

CRLF = b"\r\n"
ITALY_WINTER = timezone(timedelta(hours=1))
PROVIDER = "pec.gestore-prova.example"
MAILBOX = "direzione.provinciale.ferrara@postacert.inps.example"  # the fe-pec mailbox of config.yaml
SIGNED_AT = datetime(2024, 3, 12, 10, 15, 3, tzinfo=ITALY_WINTER)

RECEIPT_SUBJECTS = {
    "accettazione": "ACCETTAZIONE",
    "non-accettazione": "AVVISO DI NON ACCETTAZIONE",
    "presa-in-carico": "PRESA IN CARICO",
    "avvenuta-consegna": "CONSEGNA",
    "errore-consegna": "AVVISO DI MANCATA CONSEGNA",
    "preavviso-errore-consegna": "AVVISO DI MANCATA CONSEGNA PER SUP. TEMPO MASSIMO",
    "rilevazione-virus": "PROBLEMA DI SICUREZZA",
}


# -- certificates -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    key: rsa.RSAPrivateKey
    cert: x509.Certificate

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def _name(cn: str, org: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "IT"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def make_ca(
    cn: str = "CA PEC di prova",
    *,
    not_before: datetime = datetime(2015, 1, 1, tzinfo=UTC),
    not_after: datetime = datetime(2045, 1, 1, tzinfo=UTC),
) -> Identity:
    """A self-signed certification authority (like AgID CA1 for the tests)."""
    key = _key()
    name = _name(cn, "Autorità di prova")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Identity(key, cert)


def make_signer(
    ca: Identity,
    cn: str = "Posta Certificata Test",
    *,
    not_before: datetime = datetime(2020, 1, 1, tzinfo=UTC),
    not_after: datetime = datetime(2040, 1, 1, tzinfo=UTC),
    is_ca: bool = False,
) -> Identity:
    """A provider's PEC signing certificate issued by `ca`."""
    key = _key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn, "Gestore PEC di prova S.p.A."))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=is_ca,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
        .sign(ca.key, hashes.SHA256())
    )
    return Identity(key, cert)


@dataclass(frozen=True)
class Pki:
    ca: Identity
    signer: Identity

    def write_bundle(self, directory: Path, name: str = "pec-ca-test.pem") -> Path:
        """The CA certificate as a PEM bundle, for PecTrust / config `pec.ca_bundle`."""
        path = directory / name
        path.write_bytes(b"# CA PEC di prova (solo test)\n" + self.ca.pem)
        return path


@cache
def default_pki() -> Pki:
    """One test CA and its provider signer, made once per test session (RSA keys are slow)."""
    ca = make_ca()
    return Pki(ca, make_signer(ca))


# -- MIME pieces ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def render(self) -> bytes:
        head = b"".join(f"{k}: {v}".encode() + CRLF for k, v in self.headers)
        return head + CRLF + self.body


def _b64_lines(data: bytes) -> bytes:
    text = base64.b64encode(data)
    return CRLF.join(text[i : i + 76] for i in range(0, len(text), 76))


def _multipart(subtype: str, boundary: str, parts: Sequence[Part], preamble: bytes = b"") -> bytes:
    """A complete multipart entity: Content-Type header, preamble, parts, close delimiter."""
    out = f'Content-Type: multipart/{subtype}; boundary="{boundary}"'.encode() + CRLF + CRLF + preamble
    for part in parts:
        out += CRLF + b"--" + boundary.encode() + CRLF + part.render()
    return out + CRLF + b"--" + boundary.encode() + b"--" + CRLF


def boundary(kind: str) -> str:
    """A fresh boundary: an attached PEC message has boundaries of its own that must not clash."""
    return f"----------=_{kind}-{secrets.token_hex(8)}"


def text_part(text: str, html: bool = True) -> Part:
    """The provider's notice: multipart/alternative text and html, as real envelopes have."""
    plain = Part(
        (("Content-Type", "text/plain; charset=UTF-8"), ("Content-Transfer-Encoding", "8bit")),
        text.replace("\n", "\r\n").encode(),
    )
    if not html:
        return plain
    rich = Part(
        (("Content-Type", "text/html; charset=UTF-8"), ("Content-Transfer-Encoding", "8bit")),
        f"<html><body><p>{escape(text)}</p></body></html>".encode(),
    )
    entity = _multipart("alternative", boundary("alt"), [plain, rich])
    head, _, body = entity.partition(CRLF + CRLF)
    name, _, value = head.decode().partition(": ")
    return Part(((name, value),), body)


def daticert_part(xml: bytes) -> Part:
    return Part(
        (
            ("Content-Type", 'application/xml; name="daticert.xml"'),
            ("Content-Disposition", 'inline; filename="daticert.xml"'),
            ("Content-Transfer-Encoding", "base64"),
        ),
        _b64_lines(xml),
    )


def postacert_part(message: bytes, filename: str | None = "postacert.eml") -> Part:
    headers: tuple[tuple[str, str], ...] = (
        ("Content-Type", f'message/rfc822; name="{filename}"' if filename else "message/rfc822"),
    )
    if filename:
        headers += (("Content-Disposition", f'inline; filename="{filename}"'),)
    return Part((*headers, ("Content-Transfer-Encoding", "8bit")), message)


def original_message(
    *,
    sender: str = "mario.rossi@pec.example",
    to: str = MAILBOX,
    subject: str = "Istanza di rimborso contributi",
    body: str = "Buongiorno,\nchiedo il rimborso dei contributi versati in eccesso.\nCodice fiscale RSSMRA80A01D548U\n",
    message_id: str = "<istanza-0001@pec.example>",
    date: datetime = SIGNED_AT - timedelta(seconds=2),
) -> bytes:
    """The message as its author sent it (what postacert.eml holds)."""
    head = [
        f"Date: {format_datetime(date)}",
        f"From: Mario Rossi <{sender}>",
        f"To: {to}",
        f"Subject: {subject}",
        f"Message-ID: {message_id}",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=UTF-8",
        "Content-Transfer-Encoding: 8bit",
    ]
    return CRLF.join(h.encode() for h in head) + CRLF + CRLF + body.replace("\n", "\r\n").encode()


def daticert_xml(
    tipo: str,
    *,
    mittente: str,
    destinatari: Sequence[tuple[str, str]] = ((MAILBOX, "certificato"),),
    oggetto: str,
    data: datetime = SIGNED_AT,
    identificativo: str,
    msgid: str,
    errore: str = "nessuno",
    gestore: str = "Gestore PEC di prova S.p.A.",
    risposte: str | None = None,
    ricevuta: str | None = None,
    consegna: str | None = None,
    errore_esteso: str | None = None,
) -> bytes:
    offset = data.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    zona = f"{'+' if minutes >= 0 else '-'}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f"<postacert tipo={quoteattr(tipo)} errore={quoteattr(errore)}>",
        "  <intestazione>",
        f"    <mittente>{escape(mittente)}</mittente>",
        *(f"    <destinatari tipo={quoteattr(t)}>{escape(a)}</destinatari>" for a, t in destinatari),
        f"    <risposte>{escape(risposte or mittente)}</risposte>",
        f"    <oggetto>{escape(oggetto)}</oggetto>",
        "  </intestazione>",
        "  <dati>",
        f"    <gestore-emittente>{escape(gestore)}</gestore-emittente>",
        f"    <data zona={quoteattr(zona)}>",
        f"      <giorno>{data:%d/%m/%Y}</giorno>",
        f"      <ora>{data:%H:%M:%S}</ora>",
        "    </data>",
        f"    <identificativo>{escape(identificativo)}</identificativo>",
        f"    <msgid>{escape(msgid)}</msgid>",
    ]
    if ricevuta:
        lines.append(f"    <ricevuta tipo={quoteattr(ricevuta)} />")
    if consegna:
        lines.append(f"    <consegna>{escape(consegna)}</consegna>")
    if errore_esteso:
        lines.append(f"    <errore-esteso>{escape(errore_esteso)}</errore-esteso>")
    lines += ["  </dati>", "</postacert>", ""]
    return "\n".join(lines).encode()


# -- signing ----------------------------------------------------------------------------------


def sign(content: bytes, signer: Identity, chain: Sequence[x509.Certificate] = ()) -> bytes:
    """Detached PKCS#7 signature (DER, sha-256) over the canonical CRLF bytes of `content`."""
    builder = pkcs7.PKCS7SignatureBuilder().set_data(content).add_signer(signer.cert, signer.key, hashes.SHA256())
    for cert in chain:
        builder = builder.add_certificate(cert)
    return builder.sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature])


@dataclass(frozen=True)
class Signed:
    """A multipart/signed PEC message, kept in pieces so that a test can tamper with one of them."""

    headers: tuple[tuple[str, str], ...]
    parts: tuple[Part, ...]
    signature: bytes  # DER PKCS#7, made over `content` when built
    inner_boundary: str = "----------=_pec-mixed-0001"
    outer_boundary: str = "----------=_pec-signed-0001"
    signature_type: str = "application/pkcs7-signature"

    @property
    def content(self) -> bytes:
        """The signed entity: multipart/mixed with body, daticert.xml, postacert.eml."""
        return _multipart("mixed", self.inner_boundary, self.parts, b"This is a multi-part message in MIME format.")

    def replace(self, index: int, part: Part) -> Signed:
        """The same message with one part changed and the old signature kept (a tampering)."""
        parts = list(self.parts)
        parts[index] = part
        return dataclasses.replace(self, parts=tuple(parts))

    def resigned(self, signer: Identity, chain: Sequence[x509.Certificate] = ()) -> Signed:
        return dataclasses.replace(self, signature=sign(self.content, signer, chain))

    def raw(self, linesep: bytes = CRLF) -> bytes:
        outer = self.outer_boundary.encode()
        content_type = (
            f'multipart/signed; protocol="{self.signature_type}"; micalg="sha-256"; boundary="{self.outer_boundary}"'
        )
        head = b"".join(f"{k}: {v}".encode() + CRLF for k, v in (*self.headers, ("Content-Type", content_type)))
        p7s = Part(
            (
                ("Content-Type", f'{self.signature_type}; name="smime.p7s"'),
                ("Content-Transfer-Encoding", "base64"),
                ("Content-Disposition", 'attachment; filename="smime.p7s"'),
            ),
            _b64_lines(self.signature),
        )
        out = (
            head
            + CRLF
            + b"This is an S/MIME signed message"
            + CRLF
            + CRLF
            + b"--"
            + outer
            + CRLF
            + self.content
            + CRLF
            + b"--"
            + outer
            + CRLF
            + p7s.render()
            + CRLF
            + b"--"
            + outer
            + b"--"
            + CRLF
        )
        return out if linesep == CRLF else out.replace(CRLF, linesep)

    def unsigned(self) -> bytes:
        """The same headers (X-Trasporto, X-Ricevuta...) and parts, without any signature."""
        head = b"".join(f"{k}: {v}".encode() + CRLF for k, v in self.headers)
        return head + self.content


def _signed(
    headers: Sequence[tuple[str, str]],
    parts: Sequence[Part],
    signer: Identity,
    chain: Sequence[x509.Certificate],
) -> Signed:
    unsigned = Signed(tuple(headers), tuple(parts), b"", boundary("mixed"), boundary("signed"))
    return unsigned.resigned(signer, chain)


def _pki_defaults(signer: Identity | None, chain: Sequence[x509.Certificate] | None) -> tuple[Identity, list]:
    pki = default_pki()
    if signer is None:
        signer = pki.signer
    return signer, list(chain) if chain is not None else [pki.ca.cert]


# -- messages ---------------------------------------------------------------------------------


def envelope(
    *,
    original: bytes | None = None,
    sender: str = "mario.rossi@pec.example",
    subject: str = "Istanza di rimborso contributi",
    recipient: str = MAILBOX,
    data: datetime = SIGNED_AT,
    identificativo: str = f"opec-test.20240312101503.00001.01.1.1@{PROVIDER}",
    msgid: str = "<istanza-0001@pec.example>",
    signer: Identity | None = None,
    chain: Sequence[x509.Certificate] | None = None,
    daticert: bytes | None = None,
) -> Signed:
    """A genuine transport envelope (busta di trasporto) around `original`."""
    signer, chain = _pki_defaults(signer, chain)
    if original is None:
        original = original_message(sender=sender, to=recipient, subject=subject, message_id=msgid)
    xml = daticert or daticert_xml(
        "posta-certificata",
        mittente=sender,
        destinatari=((recipient, "certificato"),),
        oggetto=subject,
        data=data,
        identificativo=identificativo,
        msgid=msgid,
    )
    notice = (
        f"Messaggio di posta certificata\n\nIl giorno {data:%d/%m/%Y} alle ore {data:%H:%M:%S} ({data:%z}) "
        f'il messaggio\n"{subject}" è stato inviato da "{sender}"\nindirizzato a:\n{recipient}\n'
        "Il messaggio originale è incluso in allegato.\n"
        f"Identificativo messaggio: {identificativo}\n"
    )
    headers = [
        ("Return-Path", f"<posta-certificata@{PROVIDER}>"),
        ("Date", format_datetime(data)),
        ("From", f'"Per conto di: {sender}" <posta-certificata@{PROVIDER}>'),
        ("Reply-To", sender),
        ("To", recipient),
        ("Subject", f"POSTA CERTIFICATA: {subject}"),
        ("Message-ID", f"<{identificativo}>"),
        ("X-Riferimento-Message-ID", msgid),
        ("X-Trasporto", "posta-certificata"),
        ("X-TipoRicevuta", "completa"),
        ("MIME-Version", "1.0"),
    ]
    parts = [text_part(notice), daticert_part(xml), postacert_part(original)]
    return _signed(headers, parts, signer, chain)


def receipt(
    tipo: str,
    *,
    our_msgid: str = "<risposta-0001@sportello.inps.example>",
    our_address: str = MAILBOX,
    recipient: str = "mario.rossi@pec.example",
    subject: str = "Risposta alla pratica",
    data: datetime = SIGNED_AT,
    identificativo: str = f"opec-test.20240312101503.00002.01.1.1@{PROVIDER}",
    errore: str | None = None,
    errore_esteso: str | None = None,
    original: bytes | None = None,
    signer: Identity | None = None,
    chain: Sequence[x509.Certificate] | None = None,
) -> Signed:
    """A receipt for a message we sent: accettazione, avvenuta-consegna, errore-consegna..."""
    signer, chain = _pki_defaults(signer, chain)
    failed = tipo in ("non-accettazione", "errore-consegna", "preavviso-errore-consegna", "rilevazione-virus")
    if failed and errore is None:
        errore = "no-dest" if tipo == "errore-consegna" else "altro"
    if failed and errore_esteso is None and tipo == "errore-consegna":
        errore_esteso = "5.1.1 - Utente inesistente"
    xml = daticert_xml(
        tipo,
        mittente=our_address,
        destinatari=((recipient, "certificato"),),
        oggetto=subject,
        data=data,
        identificativo=identificativo,
        msgid=our_msgid,
        errore=errore or "nessuno",
        ricevuta="completa" if tipo == "avvenuta-consegna" else None,
        consegna=recipient if tipo in ("avvenuta-consegna", "errore-consegna") else None,
        errore_esteso=errore_esteso,
    )
    label = RECEIPT_SUBJECTS[tipo]
    notice = f'Ricevuta di {tipo}\n\nIl giorno {data:%d/%m/%Y} alle ore {data:%H:%M:%S} il messaggio "{subject}".\n'
    headers = [
        ("Date", format_datetime(data)),
        ("From", f"posta-certificata@{PROVIDER}"),
        ("To", our_address),
        ("Subject", f"{label}: {subject}"),
        ("Message-ID", f"<{identificativo}>"),
        ("X-Riferimento-Message-ID", our_msgid),
        ("X-Ricevuta", tipo),
        ("MIME-Version", "1.0"),
    ]
    if tipo == "avvenuta-consegna":
        headers.append(("X-TipoRicevuta", "completa"))
    parts = [text_part(notice), daticert_part(xml)]
    if tipo == "avvenuta-consegna":
        parts.append(
            postacert_part(
                original or original_message(sender=our_address, to=recipient, subject=subject, message_id=our_msgid)
            )
        )
    return _signed(headers, parts, signer, chain)


def anomaly(
    original: bytes | None = None,
    *,
    sender: str = "mario.rossi@gmail.example",
    subject: str = "Istanza di rimborso contributi",
    recipient: str = MAILBOX,
    data: datetime = SIGNED_AT,
    signer: Identity | None = None,
    chain: Sequence[x509.Certificate] | None = None,
) -> bytes:
    """An anomaly envelope (busta di anomalia): ordinary mail wrapped by the recipient's provider.

    Unsigned unless `signer` is given (then signed, without daticert, by that identity).
    """
    if original is None:
        original = original_message(
            sender=sender, to=recipient, subject=subject, message_id="<ordinaria-0001@gmail.example>"
        )
    notice = (
        "Anomalia nel messaggio\n\n"
        f'Il giorno {data:%d/%m/%Y} alle ore {data:%H:%M:%S} è stato ricevuto il messaggio "{subject}"\n'
        f'inviato da "{sender}" e indirizzato a: {recipient}\n'
        "Tali dati non sono stati certificati per il seguente errore: il messaggio non è di posta certificata.\n"
        "Il messaggio originale è incluso in allegato.\n"
    )
    headers = [
        ("Date", format_datetime(data)),
        ("From", f'"Per conto di: {sender}" <posta-certificata@{PROVIDER}>'),
        ("Reply-To", sender),
        ("To", recipient),
        ("Subject", f"ANOMALIA MESSAGGIO: {subject}"),
        ("Message-ID", f"<anomalia-0001@{PROVIDER}>"),
        ("X-Trasporto", "errore"),
        ("MIME-Version", "1.0"),
    ]
    parts = [text_part(notice, html=False), postacert_part(original, filename=None)]
    if signer is not None:
        chain = list(chain) if chain is not None else [default_pki().ca.cert]
        return _signed(headers, parts, signer, chain).raw()
    return Signed(tuple(headers), tuple(parts), b"", boundary("mixed")).unsigned()
