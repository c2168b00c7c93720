"""S/MIME verification of a PEC message with the openssl command line (OpenSSL 3).

Two steps: the signature over the signed body (integrity), which makes the daticert inside it
trustworthy; then the signer chain against the configured PEC authorities only, as of the signing
time written in that daticert (signer certificates expire after about three years).
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509

__all__ = ["Signature", "VerifyError", "check_chain", "open_signed"]

_TIMEOUT = 20.0
# OpenSSL 3 loads the system certificates (file, directory and store) unless told not to.
_NO_DEFAULT_STORES = ("-no-CAfile", "-no-CApath", "-no-CAstore")


class VerifyError(Exception):
    pass


@dataclass(frozen=True)
class Signature:
    content: bytes  # the signed entity, exactly as verified
    signer: str | None
    issuer: str | None
    signer_is_ca: bool


def _openssl(args: list[str]) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["openssl", *args], capture_output=True, timeout=_TIMEOUT, check=False)
    except FileNotFoundError as exc:  # pragma: no cover - openssl is part of the base system
        raise VerifyError("comando openssl non disponibile") from exc
    except subprocess.TimeoutExpired as exc:
        raise VerifyError("verifica della firma oltre il tempo massimo") from exc


# The OpenSSL verification errors a PEC check meets, in the words the report uses.
_CHAIN_ERRORS = {
    "certificate has expired": "certificato del firmatario scaduto alla data di firma",
    "certificate is not yet valid": "certificato del firmatario non ancora valido alla data di firma",
    "unable to get local issuer certificate": "emittente non tra le autorità PEC configurate",
    "unable to verify the first certificate": "emittente non tra le autorità PEC configurate",
    "self-signed certificate in certificate chain": "catena verso un'autorità non configurata",
    "self signed certificate in certificate chain": "catena verso un'autorità non configurata",
    "self-signed certificate": "certificato autofirmato",
    "self signed certificate": "certificato autofirmato",
    "certificate signature failure": "firma del certificato non valida",
    "unsupported certificate purpose": "certificato non adatto alla firma",
}


def _last_error(proc: subprocess.CompletedProcess[bytes]) -> str:
    lines = [ln for ln in proc.stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    if not lines:
        return "errore sconosciuto"
    last = lines[-1]
    # "...:PKCS7_verify:certificate verify error:...:Verify error: certificate has expired"
    if "Verify error:" in last:
        detail = last.rsplit("Verify error:", 1)[1].strip()
        return f"{_CHAIN_ERRORS[detail]}: {detail}" if detail in _CHAIN_ERRORS else detail
    # "...:error:10800069:PKCS7 routines:PKCS7_verify:signature failure:..." -> "signature failure"
    parts = last.split(":")
    return parts[5] if len(parts) > 6 else last


def open_signed(raw: bytes, workdir: Path) -> Signature:
    """Check the signature over the body (no chain yet); return the signed content and the signer."""
    msg_file, content_file, signer_file = workdir / "msg.eml", workdir / "content", workdir / "signer.pem"
    msg_file.write_bytes(raw)
    proc = _openssl(
        [
            "smime",
            "-verify",
            "-noverify",
            *_NO_DEFAULT_STORES,
            "-in",
            str(msg_file),
            "-out",
            str(content_file),
            "-signer",
            str(signer_file),
        ]
    )
    if proc.returncode != 0:
        raise VerifyError(f"firma non valida ({_last_error(proc)})")
    signer = issuer = None
    is_ca = False
    try:
        certs = x509.load_pem_x509_certificates(signer_file.read_bytes())
        cert = certs[0]
        signer, issuer = cert.subject.rfc4514_string(), cert.issuer.rfc4514_string()
        try:
            is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
    except (OSError, ValueError, IndexError):
        pass
    return Signature(content_file.read_bytes(), signer, issuer, is_ca)


def check_chain(raw: bytes, ca_bundle: Path, at: datetime, workdir: Path) -> None:
    """The signer chain must reach a certificate of `ca_bundle`, valid at `at`. Raise VerifyError if not."""
    msg_file = workdir / "msg.eml"
    if not msg_file.exists():
        msg_file.write_bytes(raw)
    proc = _openssl(
        [
            "smime",
            "-verify",
            "-in",
            str(msg_file),
            "-out",
            "/dev/null",
            "-CAfile",
            str(ca_bundle),
            "-no-CApath",  # only the configured bundle: never the system's public roots,
            "-no-CAstore",  # which OpenSSL 3 otherwise loads as a default store
            "-partial_chain",  # the PEC authorities are intermediates under a commercial root
            "-purpose",
            "any",
            "-attime",
            str(int(at.timestamp())),
        ]
    )
    if proc.returncode != 0:
        raise VerifyError(f"catena del firmatario non valida ({_last_error(proc)})")


def scratch() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="sportello-pec-")
