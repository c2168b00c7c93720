"""Whether a message's sender is authenticated, from the topmost Authentication-Results of a trusted server."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import parseaddr

import authres

__all__ = ["AuthPolicy", "AuthVerdict", "authenticate"]

# Real headers are under 2 KB; the parser is linear but recursive on nested comments, so a bound keeps a
# hostile header from costing time or the stack.
_MAX_HEADER_LENGTH = 8192


@dataclass(frozen=True)
class AuthPolicy:
    """The authserv-ids of the receiving servers whose Authentication-Results we believe."""

    trusted_authserv_ids: frozenset[str]


@dataclass(frozen=True)
class AuthVerdict:
    """Passed or not, by which method (`dkim`, `spf`), and why, in Italian for the ticket's history."""

    passed: bool
    method: str | None
    reason: str


def _domain(value: str | None) -> str:
    """The domain of an address, an `@domain` identity or a bare domain, lower case, without the root dot."""
    if not value:
        return ""
    return value.rpartition("@")[2].strip().strip("<>").rstrip(".").lower()


def _aligned(domain: str, from_domain: str) -> bool:
    """Relaxed alignment: equal, or one a subdomain of the other; a bare top-level label never aligns."""
    if not domain or not from_domain:
        return False
    shorter = min(domain, from_domain, key=len)
    if "." not in shorter:
        return False
    return domain == from_domain or domain.endswith("." + from_domain) or from_domain.endswith("." + domain)


def _property(result: authres.core.AuthenticationResult, ptype: str, name: str) -> str | None:
    for prop in result.properties or ():
        if str(prop.type).lower() == ptype and str(prop.name).lower() == name:
            return str(prop.value)
    return None


def authenticate(results_headers: Sequence[str], from_address: str, policy: AuthPolicy) -> AuthVerdict:
    """The verdict on a message from `from_address`, given its Authentication-Results values topmost first.

    Only the topmost header counts (RFC 8601 §5): the receiving server added it last, anything below may
    come from the sender. It must carry a trusted authserv-id, else nothing passes, whatever lies below.
    """
    if not results_headers:
        return AuthVerdict(False, None, "nessun Authentication-Results da un server attendibile")
    topmost = results_headers[0]
    if len(topmost) > _MAX_HEADER_LENGTH:
        return AuthVerdict(False, None, "Authentication-Results illeggibile (troppo lungo)")
    try:
        parsed = authres.AuthenticationResultsHeader.parse_value(topmost)
    except (authres.AuthResError, RecursionError):
        return AuthVerdict(False, None, "Authentication-Results illeggibile")
    authserv_id = str(parsed.authserv_id).lower()
    trusted = {server.lower() for server in policy.trusted_authserv_ids}
    if authserv_id not in trusted:
        return AuthVerdict(
            False, None, f"l'Authentication-Results più in alto è di un server non attendibile ({authserv_id})"
        )
    from_domain = _domain(parseaddr(from_address)[1] or from_address)
    if "@" not in from_address or not from_domain:
        return AuthVerdict(False, None, "mittente senza dominio")

    findings: list[str] = []
    for result in parsed.results:
        method = str(result.method).lower()
        outcome = str(result.result).lower()
        if method == "dkim":
            signer = _domain(_property(result, "header", "d")) or _domain(_property(result, "header", "i"))
            identity = _domain(_property(result, "header", "i"))
            if outcome != "pass":
                findings.append(f"dkim={outcome}")
            elif _aligned(signer, from_domain) or _aligned(identity, from_domain):
                return AuthVerdict(True, "dkim", f"dkim=pass per {signer or identity}, allineato al mittente")
            else:
                findings.append(f"dkim=pass per {signer or identity or '?'} non allineato al mittente")
        elif method == "spf":
            envelope = _domain(_property(result, "smtp", "mailfrom"))
            if outcome != "pass":
                findings.append(f"spf={outcome}")
            elif _aligned(envelope, from_domain):
                return AuthVerdict(True, "spf", f"spf=pass per {envelope}, allineato al mittente")
            else:
                findings.append(f"spf=pass per {envelope or '?'} non allineato al mittente")
    if not findings:
        return AuthVerdict(False, None, f"nessun risultato dkim o spf da {authserv_id}")
    return AuthVerdict(False, None, "; ".join(findings))
