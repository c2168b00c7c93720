"""Building test mail the way a receiving server hands it over: with its Authentication-Results."""

from __future__ import annotations

TRUSTED_AUTHSERV = "mx.inps.example"  # the shipped config.yaml trusts this receiving server


def authenticated(raw: bytes, domain: str, *, authserv: str = TRUSTED_AUTHSERV, result: str = "pass") -> bytes:
    """`raw` as our receiving server would deliver it: its Authentication-Results on top, with DKIM
    aligned to `domain` (the From domain) and SPF for the same domain."""
    header = (
        f"Authentication-Results: {authserv};\r\n"
        f" dkim={result} header.d={domain} header.s=sel;\r\n"
        f" spf={result} smtp.mailfrom=postmaster@{domain}\r\n"
    ).encode()
    return header + raw
