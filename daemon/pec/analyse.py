"""analyse_pec(raw, trust) -> PecAnalysis: recognise, verify and unwrap a PEC message."""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from pathlib import Path

from daemon.pec.daticert import DaticertError, parse_daticert
from daemon.pec.model import RECEIPT_TYPES, PecAnalysis
from daemon.pec.structure import find_parts, parse_bytes, parse_headers, read_claim
from daemon.pec.verify import VerifyError, check_chain, open_signed, scratch

__all__ = ["PecTrust", "analyse_pec"]

MAX_PEC_BYTES = 60 * 1024 * 1024


@dataclass(frozen=True)
class PecTrust:
    ca_bundle: Path


def _unverified(claim_kind: str, receipt: str | None, reason: str, **extra: object) -> PecAnalysis:
    return PecAnalysis(
        kind="non_verificata",
        verified=False,
        receipt_type=receipt,
        failure=reason,
        looks_like=claim_kind,
        **extra,  # type: ignore[arg-type]
    )


def analyse_pec(raw: bytes, trust: PecTrust) -> PecAnalysis:
    try:
        # Headers first: most mail is not PEC, and deciding that must stay cheap.
        if read_claim(parse_headers(raw)).kind == "none":
            return PecAnalysis(kind="none")
        envelope = parse_bytes(raw)
    except Exception:  # the message parser decides what is unparseable; here it is simply not PEC
        return PecAnalysis(kind="none")
    claim = read_claim(envelope)
    if claim.kind == "anomalia" and not claim.signed:
        # Some providers do not sign anomaly envelopes; it is ordinary mail in any case.
        _, _, attached = find_parts(envelope)
        return PecAnalysis(kind="anomalia", inner_raw=attached, looks_like="anomalia")
    if not claim.signed:
        return _unverified(claim.kind, claim.receipt_type, "messaggio non firmato")
    if len(raw) > MAX_PEC_BYTES:
        return _unverified(claim.kind, claim.receipt_type, "messaggio troppo grande per la verifica")

    with scratch() as tmp:
        work = Path(tmp)
        try:
            signature = open_signed(raw, work)
        except VerifyError as exc:
            return _unverified(claim.kind, claim.receipt_type, str(exc))
        content = email.message_from_bytes(signature.content, policy=email.policy.compat32)
        daticert_raw, postacert, attached = find_parts(content)
        if daticert_raw is None:
            return _unverified(claim.kind, claim.receipt_type, "daticert.xml assente nella parte firmata")
        try:
            dati = parse_daticert(daticert_raw)
        except DaticertError as exc:
            return _unverified(claim.kind, claim.receipt_type, str(exc))
        if dati.data is None:
            return _unverified(claim.kind, claim.receipt_type, "daticert.xml senza data e ora")
        if signature.signer_is_ca:
            return _unverified(claim.kind, claim.receipt_type, "firmato da un certificato di autorità, non di un gestore")
        try:
            check_chain(raw, trust.ca_bundle, dati.data, work)
        except VerifyError as exc:
            return _unverified(
                claim.kind, claim.receipt_type, str(exc), signer=signature.signer, issuer=signature.issuer
            )

    common = {
        "verified": True,
        "identificativo": dati.identificativo,
        "mittente": dati.mittente,
        "data": dati.data,
        "daticert": dati,
        "signer": signature.signer,
        "issuer": signature.issuer,
        "looks_like": claim.kind,
        "errore_esteso": dati.errore_esteso,
    }
    # The signed daticert decides what this is; the unsigned X- headers only hinted.
    if dati.tipo in RECEIPT_TYPES:
        return PecAnalysis(
            kind="ricevuta",
            receipt_type=dati.tipo,
            riferimento_message_id=dati.msgid or claim.riferimento,
            inner_raw=postacert,
            **common,  # type: ignore[arg-type]
        )
    if dati.tipo == "posta-certificata":
        if postacert is None:
            return _unverified(claim.kind, None, "busta senza postacert.eml")
        return PecAnalysis(kind="posta-certificata", inner_raw=postacert, riferimento_message_id=dati.msgid, **common)  # type: ignore[arg-type]
    if dati.tipo == "errore" or claim.kind == "anomalia":
        return PecAnalysis(kind="anomalia", inner_raw=attached or postacert, **common)  # type: ignore[arg-type]
    return _unverified(claim.kind, claim.receipt_type, f"tipo di daticert sconosciuto: {dati.tipo!r}")
