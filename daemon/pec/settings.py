"""The PEC section of config.yaml: which certification authorities are trusted."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509

from daemon.config import Config
from daemon.pec.analyse import PecTrust

__all__ = ["PecSettingsError", "load_pec_trust"]


class PecSettingsError(Exception):
    pass


def load_pec_trust(config: Config) -> PecTrust | None:
    """None when PEC verification is not configured: then no message is ever treated as genuine PEC."""
    bundle = config.pec.get("ca_bundle") if config.pec else None
    if not bundle:
        return None
    path = config.resolve_path(str(bundle))
    if not path.is_file():
        raise PecSettingsError(f"pec.ca_bundle: file non trovato: {path}")
    # An unreadable or empty bundle would make every PEC fail verification without saying why.
    try:
        certs = x509.load_pem_x509_certificates(path.read_bytes())
    except OSError as exc:
        raise PecSettingsError(f"pec.ca_bundle: impossibile leggere {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise PecSettingsError(f"pec.ca_bundle: nessun certificato PEM valido in {path}") from exc
    if not certs:
        raise PecSettingsError(f"pec.ca_bundle: nessun certificato PEM valido in {path}")
    return PecTrust(ca_bundle=Path(path))
