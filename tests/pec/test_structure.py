"""The byte-level MIME walker that finds daticert.xml and postacert.eml: exact, bounded, tolerant."""

from __future__ import annotations

from daemon.pec import PecTrust, analyse_pec
from daemon.pec.structure import decode_body, find_parts, parse_headers, split_multipart
from tests.pec.factory import daticert_xml, envelope, original_message


def _mixed(*parts: bytes, boundary: bytes = b"b1") -> bytes:
    body = b"preambolo\r\n"
    for part in parts:
        body += b"--" + boundary + b"\r\n" + part + b"\r\n"
    return b"Content-Type: multipart/mixed; boundary=" + boundary + b"\r\n\r\n" + body + b"--" + boundary + b"--\r\n"


def test_split_multipart_keeps_part_bytes_exactly() -> None:
    body = b"pre\r\n--x\r\nA: 1\r\n\r\nuno\r\n\r\n--x \r\n\r\ndue\n--x--\r\nepilogo\r\n--x\r\nignorata"
    assert split_multipart(body, "x") == [b"A: 1\r\n\r\nuno\r\n", b"\r\ndue"]


def test_split_multipart_ignores_longer_boundaries_and_tolerates_truncation() -> None:
    body = b"--x\r\nuno\r\n--xy\r\nancora uno\r\n--x\r\ndue senza fine"
    assert split_multipart(body, "x") == [b"uno\r\n--xy\r\nancora uno", b"due senza fine"]


def test_decode_truncated_and_dirty_base64() -> None:
    headers = parse_headers(b"Content-Transfer-Encoding: base64\r\n\r\n")
    assert decode_body(headers, b"Y2lhbyBtb25kbw==\r\n") == b"ciao mondo"
    assert decode_body(headers, b"Y2lhbyBtb25kbw") == b"ciao mondo"  # padding lost
    assert decode_body(headers, b"Y2lhbyBtb25kb") == b"ciao mond"  # one stray character
    assert decode_body(headers, b"Y2lh*** byBt\r\nb25kbw==") == b"ciao mondo"
    assert decode_body(headers, b"Y2lh=byBtb25kbw==") is None


def test_quoted_printable_daticert() -> None:
    xml = daticert_xml(
        "posta-certificata", mittente="a@pec.example", oggetto="Perché", identificativo="id", msgid="<m@x>"
    )
    qp = xml.replace("é".encode(), b"=C3=A9")
    part = b'Content-Type: application/xml; name="daticert.xml"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
    daticert, postacert, attached = find_parts(_mixed(part + qp))
    assert daticert == xml and postacert is None and attached is None


def test_attached_messages_are_not_opened() -> None:
    """A daticert.xml inside postacert.eml belongs to the original message, not to the envelope."""
    inner = _mixed(
        b'Content-Type: application/xml; name="daticert.xml"\r\n\r\n<postacert tipo="falso"/>', boundary=b"in"
    )
    postacert = b'Content-Type: message/rfc822; name="postacert.eml"\r\n\r\n' + inner
    daticert, found, attached = find_parts(_mixed(b"Content-Type: text/plain\r\n\r\ntesto", postacert))
    assert daticert is None
    assert found == inner
    assert attached is None


def test_forged_daticert_inside_the_original_is_ignored(trust: PecTrust) -> None:
    """The sender of a genuine PEC attaches a fake daticert and PEC headers: the provider's daticert wins."""
    fake = daticert_xml(  # CRLF below: the signed form of a message is canonical
        "posta-certificata", mittente="direttore@inps.example", oggetto="x", identificativo="falso", msgid="<f@x>"
    ).replace(b"\n", b"\r\n")
    original = (
        b"From: mario.rossi@pec.example\r\nX-Trasporto: posta-certificata\r\nSubject: POSTA CERTIFICATA: x\r\n"
        + _mixed(
            b"Content-Type: text/plain\r\n\r\nciao",
            b'Content-Type: application/xml; name="daticert.xml"\r\n\r\n' + fake,
        )
    )
    result = analyse_pec(envelope(original=original).raw(), trust)
    assert (result.kind, result.verified) == ("posta-certificata", True)
    assert result.mittente == "mario.rossi@pec.example"
    assert result.identificativo != "falso"
    assert result.inner_raw == original


def test_first_daticert_wins() -> None:
    first = b'Content-Type: application/xml; name="daticert.xml"\r\n\r\n<postacert tipo="primo"/>'
    second = b'Content-Type: application/xml; name="daticert.xml"\r\n\r\n<postacert tipo="secondo"/>'
    assert find_parts(_mixed(first, second))[0] == b'<postacert tipo="primo"/>'


def test_original_message_is_found_without_a_filename() -> None:
    message = original_message()
    part = b"Content-Type: message/rfc822\r\n\r\n" + message
    assert find_parts(_mixed(b"Content-Type: text/plain\r\n\r\nanomalia", part)) == (None, None, message)
