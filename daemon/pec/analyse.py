"""analyse_pec(raw, trust) -> PecAnalysis: recognise, verify and unwrap a PEC message."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon.pec.daticert import DaticertError, parse_daticert
from daemon.pec.model import RECEIPT_TYPES, PecAnalysis
from daemon.pec.structure import Claim, find_parts, find_wrapped_envelope, header_block, parse_headers, read_claim
from daemon.pec.verify import VerifyError, check_chain, open_signed, scratch

__all__ = ["PecTrust", "analyse_pec"]

log = logging.getLogger("sportello.pec")

MAX_PEC_BYTES = 60 * 1024 * 1024


@dataclass(frozen=True)
class PecTrust:
    ca_bundle: Path


def _unverified(claim: Claim, reason: str, **extra: Any) -> PecAnalysis:
    return PecAnalysis(
        kind="non_verificata",
        verified=False,
        receipt_type=claim.receipt_type,
        failure=reason,
        looks_like=claim.kind,
        **extra,
    )


def analyse_pec(raw: bytes, trust: PecTrust, mailbox_address: str | None = None) -> PecAnalysis:
    """Never raises: whatever the message, the outcome is a PecAnalysis.

    A PEC envelope re-wrapped by a mailing list or forwarded as an attachment is found and verified on its
    own bytes (`wrapped`). With `mailbox_address`, a verified posta-certificata whose daticert does not
    list that address among its destinatari is reported as not addressed to us, and not verified."""
    try:
        # Headers only: most mail is not PEC, and deciding that must stay cheap.
        headers = parse_headers(header_block(raw))
        claim = read_claim(headers)
        # Only a multipart top (not the signed envelope itself) can hold a wrapped envelope.
        ctype = headers.get_content_type()
        may_wrap = ctype.startswith("multipart/") and ctype != "multipart/signed"
    except Exception:  # headers the parser cannot read: not PEC, whatever else it is
        return PecAnalysis(kind="none")
    try:
        if may_wrap and (claim.kind == "none" or not claim.signed):
            wrapped = find_wrapped_envelope(raw, claim)
            if wrapped is not None:
                inner, inner_claim = wrapped
                result = dataclasses.replace(_analyse(inner, inner_claim, trust), wrapped=True)
                return _addressed(result, mailbox_address)
        if claim.kind == "none":
            return PecAnalysis(kind="none")
        return _addressed(_analyse(raw, claim, trust), mailbox_address)
    except Exception as exc:  # a hostile message must give a recorded outcome, never a crash
        log.warning("analisi PEC non riuscita: %s", type(exc).__name__, exc_info=True)
        return _unverified(claim, f"analisi non riuscita ({type(exc).__name__})")


def _addressed(result: PecAnalysis, mailbox_address: str | None) -> PecAnalysis:
    """A certified message counts as PEC to us only if its signed daticert names our mailbox."""
    if mailbox_address is None or result.kind != "posta-certificata" or not result.verified or not result.daticert:
        return result
    if mailbox_address.lower() in {address.lower() for address, _ in result.daticert.destinatari}:
        return dataclasses.replace(result, addressed_to_us=True)
    return dataclasses.replace(
        result,
        verified=False,
        addressed_to_us=False,
        failure=f"PEC autentica ma indirizzata ad altri: {mailbox_address} non è tra i destinatari del daticert",
    )


def _analyse(raw: bytes, claim: Claim, trust: PecTrust) -> PecAnalysis:
    if not claim.signed:
        if claim.kind == "anomalia":
            # Some providers do not sign anomaly envelopes; it is ordinary mail in any case.
            _, postacert, attached = find_parts(raw)
            return PecAnalysis(kind="anomalia", inner_raw=attached or postacert, looks_like="anomalia")
        return _unverified(claim, "messaggio non firmato")
    if len(raw) > MAX_PEC_BYTES:
        return _unverified(claim, "messaggio troppo grande per la verifica")

    with scratch() as tmp:
        work = Path(tmp)
        try:
            signature = open_signed(raw, work)
        except VerifyError as exc:
            return _unverified(claim, str(exc), signature_valid=False)
        seen: dict[str, Any] = {"signature_valid": True, "signer": signature.signer, "issuer": signature.issuer}
        # Only the signed content counts from here on: never the parts outside the signature.
        daticert_raw, postacert, attached = find_parts(signature.content)
        if daticert_raw is None:
            if claim.kind == "anomalia":
                # An anomaly envelope certifies nothing: the wrapped message is ordinary mail.
                return PecAnalysis(kind="anomalia", inner_raw=attached or postacert, looks_like="anomalia", **seen)
            return _unverified(claim, "daticert.xml assente nella parte firmata", **seen)
        try:
            dati = parse_daticert(daticert_raw)
        except DaticertError as exc:
            return _unverified(claim, str(exc), **seen)
        seen["daticert"] = dati
        if dati.data is None:
            return _unverified(claim, "daticert.xml senza data e ora", **seen)
        if signature.signer_is_ca:
            return _unverified(claim, "firmato da un certificato di autorità, non di un gestore", **seen)
        seen["chain_checked_at"] = dati.data
        try:
            check_chain(raw, trust.ca_bundle, dati.data, work)
        except VerifyError as exc:
            return _unverified(claim, str(exc), **seen)

    common: dict[str, Any] = {
        **seen,
        "verified": True,
        "identificativo": dati.identificativo,
        "mittente": dati.mittente,
        "data": dati.data,
        "looks_like": claim.kind,
        "errore_esteso": dati.errore_esteso,
    }
    # The signed daticert decides what this is; the unsigned X- headers only hinted.
    if dati.tipo in RECEIPT_TYPES:
        # The receipt is filed by the msgid in the signed daticert, never by the unsigned header.
        return PecAnalysis(
            kind="ricevuta", receipt_type=dati.tipo, riferimento_message_id=dati.msgid, inner_raw=postacert, **common
        )
    if dati.tipo == "posta-certificata":
        if postacert is None:
            return _unverified(claim, "busta senza postacert.eml", **seen)
        return PecAnalysis(kind="posta-certificata", inner_raw=postacert, riferimento_message_id=dati.msgid, **common)
    if dati.tipo == "errore" or claim.kind == "anomalia":
        return PecAnalysis(kind="anomalia", inner_raw=attached or postacert, **common)
    return _unverified(claim, f"tipo di daticert sconosciuto: {dati.tipo!r}", **seen)
