"""daticert.xml -> Daticert, with a hardened parser (no entities, no DTDs, no network)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from daemon.pec.model import Daticert

__all__ = ["DaticertError", "parse_daticert"]

MAX_BYTES = 256 * 1024


class DaticertError(ValueError):
    pass


def _text(root: Element, path: str) -> str | None:
    node = root.find(path)
    if node is None or node.text is None:
        return None
    return " ".join(node.text.split()) or None


def _zone(value: str | None) -> timezone:
    if not value:
        return timezone(timedelta(hours=1))  # daticert without zone: Italian standard time
    sign = -1 if value.strip().startswith("-") else 1
    digits = value.strip().lstrip("+-").replace(":", "")  # "+0100" and "+01:00"
    if not digits.isdigit() or len(digits) not in (2, 4):
        raise DaticertError(f"zona oraria non valida: {value}")
    try:
        return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0)))
    except ValueError as exc:
        raise DaticertError(f"zona oraria non valida: {value}") from exc


def _date(root: Element) -> datetime | None:
    node = root.find("dati/data")
    if node is None:
        return None
    day, hour = _text(node, "giorno"), _text(node, "ora")
    if not day or not hour:
        return None
    try:
        naive = datetime.strptime(f"{day} {hour}", "%d/%m/%Y %H:%M:%S")
    except ValueError as exc:
        raise DaticertError(f"data non valida: {day} {hour}") from exc
    return naive.replace(tzinfo=_zone(node.get("zona")))


def parse_daticert(data: bytes) -> Daticert:
    if len(data) > MAX_BYTES:
        raise DaticertError("daticert.xml troppo grande")
    # Some providers append stray characters after the root element: cut at its end.
    end = data.rfind(b"</postacert>")
    if end != -1:
        data = data[: end + len(b"</postacert>")]
    try:
        # A DOCTYPE naming the DTD is allowed (some providers write one): entities never are.
        root = SafeET.fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise DaticertError(f"daticert.xml rifiutato: {type(exc).__name__}") from exc
    except SafeET.ParseError as exc:
        raise DaticertError(f"daticert.xml non leggibile: {exc}") from exc
    if root.tag != "postacert":
        raise DaticertError(f"radice inattesa: {root.tag}")
    ricevuta = root.find("dati/ricevuta")
    return Daticert(
        tipo=root.get("tipo", ""),
        errore=root.get("errore"),
        mittente=(_text(root, "intestazione/mittente") or "").lower() or None,
        destinatari=tuple(
            (" ".join((d.text or "").split()).lower(), d.get("tipo", ""))
            for d in root.findall("intestazione/destinatari")
        ),
        risposte=_text(root, "intestazione/risposte"),
        oggetto=_text(root, "intestazione/oggetto"),
        gestore_emittente=_text(root, "dati/gestore-emittente"),
        data=_date(root),
        identificativo=_text(root, "dati/identificativo"),
        msgid=(_text(root, "dati/msgid") or "").strip("<>") or None,
        ricevuta=ricevuta.get("tipo") if ricevuta is not None else None,
        consegna=_text(root, "dati/consegna"),
        errore_esteso=_text(root, "dati/errore-esteso"),
    )
