"""Property tests of code extraction and of the classifier's robustness (hypothesis).

- every code python-codicefiscale can encode (omocodes included) is found in any surrounding text,
  in any case and with or without separators between its groups;
- the fast validity check agrees with python-codicefiscale, and a wrong check character is never valid;
- classify() never raises, whatever the subject and the body.
"""

from __future__ import annotations

import string
from datetime import date

import pytest
from codicefiscale import codicefiscale
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from daemon.classify import classify, find_codes, load_vocabularies, valid_codice_fiscale
from daemon.classify.codes import check_character
from tests.classify.corpus import RULES
from tests.support.messages import message

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Birthplaces that exist over long periods (comuni and foreign countries), so most draws encode.
PLACES = [
    "Ferrara", "Bologna", "Roma", "Milano", "Napoli", "Palermo", "Torino", "Bari", "Cento", "Comacchio",
    "Argenta", "Rovigo", "Modena", "Lecce", "Cagliari", "Trento", "Aosta", "Genova", "Firenze", "Venezia",
    "Marocco", "Romania", "Albania", "Germania", "Francia", "Brasile", "Argentina", "Cina", "Senegal", "Tunisia",
]  # fmt: skip
SEPARATORS = list(" \n\t.,;:()[]<>/\"'!?*#=") + [" - ", ": ", "\r\n", "  "]
NAME = st.text(alphabet=string.ascii_letters + "àèéìòùÀ' ", min_size=1, max_size=20).filter(
    lambda s: any(c.isalpha() for c in s)
)


@st.composite
def encoded_codes(draw: st.DrawFn) -> str:
    """A code python-codicefiscale encodes from random data, or one of its omocodes."""
    born = draw(st.dates(min_value=date(1910, 1, 1), max_value=date.today()))
    try:
        code = codicefiscale.encode(
            lastname=draw(NAME),
            firstname=draw(NAME),
            gender=draw(st.sampled_from("MF")),
            birthdate=born.strftime("%d/%m/%Y"),
            birthplace=draw(st.sampled_from(PLACES)),
        )
    except ValueError:  # the place did not exist on that date
        assume(False)
    if draw(st.booleans()):
        omocodes = codicefiscale.decode(code)["omocodes"]
        code = draw(st.sampled_from(omocodes))
    return str(code)


def written(draw: st.DrawFn, code: str) -> str:
    """The code as a user might write it: any case, groups optionally separated by space, dot or dash."""
    groups = [code[0:3], code[3:6], code[6:8], code[8], code[9:11], code[11:15], code[15]]
    out = groups[0]
    style = draw(st.sampled_from(["none", "groups", "mixed"]))
    for i, g in enumerate(groups[1:], start=1):
        if style == "groups" and i in (1, 2, 5):
            out += draw(st.sampled_from([" ", ".", "-"]))
        elif style == "mixed":
            out += draw(st.sampled_from(["", "", " ", ".", "-"]))
        out += g
    case = draw(st.lists(st.booleans(), min_size=len(out), max_size=len(out)))
    return "".join(ch.lower() if low else ch.upper() for ch, low in zip(out, case, strict=True))


@SETTINGS
@given(data=st.data(), code=encoded_codes(), before=st.text(max_size=60), after=st.text(max_size=60))
def test_every_encodable_code_is_found_in_any_text(data: st.DataObject, code: str, before: str, after: str) -> None:
    assert valid_codice_fiscale(code)
    text = before + data.draw(st.sampled_from(SEPARATORS)) + written(data.draw, code)
    text += data.draw(st.sampled_from(SEPARATORS)) + after
    assert code in find_codes(text).valid, text


@SETTINGS
@given(code=encoded_codes(), wrong=st.sampled_from(string.ascii_uppercase), before=st.text(max_size=40))
def test_a_wrong_check_character_is_never_valid(code: str, wrong: str, before: str) -> None:
    assume(wrong != code[15])
    bad = code[:15] + wrong
    assert not valid_codice_fiscale(bad)
    assert not codicefiscale.is_valid(bad)
    scan = find_codes(f"{before} CF {bad} grazie")
    assert bad not in scan.valid
    assert bad in scan.invalid or sum(ch.isdigit() for ch in bad) < 4


SIXTEEN = st.text(alphabet=string.ascii_uppercase + string.digits, min_size=16, max_size=16)


@SETTINGS
@given(candidate=SIXTEEN)
def test_no_sixteen_character_string_with_a_wrong_check_is_valid(candidate: str) -> None:
    assume(check_character(candidate[:15]) != candidate[15])
    assert not valid_codice_fiscale(candidate)
    assert candidate not in find_codes(f"oggetto {candidate} fine").valid


@SETTINGS
@given(code=encoded_codes(), position=st.integers(min_value=6, max_value=14), replacement=st.sampled_from(
    string.ascii_uppercase + string.digits))  # fmt: skip
def test_fast_check_agrees_with_python_codicefiscale(code: str, position: int, replacement: str) -> None:
    """Changed dates and birthplaces with a recomputed check character: same verdict as the library."""
    changed = code[:position] + replacement + code[position + 1 : 15]
    changed += check_character(changed)
    assert valid_codice_fiscale(changed) == codicefiscale.is_valid(changed), changed


@SETTINGS
@given(text=st.text(alphabet=string.ascii_letters + " ", max_size=200))
def test_plain_words_are_never_codes(text: str) -> None:
    """Words without digits are neither valid codes nor reported as invalid ones (omocodes aside)."""
    scan = find_codes(text)
    assert all(codicefiscale.is_valid(c) for c in scan.valid)
    assert not scan.invalid


@pytest.fixture(scope="module")
def vocab():  # type: ignore[no-untyped-def]
    return load_vocabularies(RULES)


# Fragments that reach every path of the classifier (vocabulary words, codes, ticket ids, separators).
FRAGMENTS = st.sampled_from(
    [
        "LD", "GS", "ART. 3", "colf", "artigiani e commercianti", "Libretto Famiglia", "al più presto", "si chiede",
        "lo sgravio", "della cartella", "domanda di rimborso", "?", "sollecito", "di pagamento", "R:", "Re: ",
        "FE-2026-000123", "RSS MRA 85T10 D548H", "RSSMRA85T10D548X", "tel. 05321234567", "P.IVA 01234567890",
        "matricola 3801234567", "L. 407/90", "vorrei sapere", "> citato", "Il giorno lun ha scritto:", "\n", "—",
        "dipendenti pubblici", "ricorso", "rateizzazione", "cassa integrazione", "e", "/", "-", "àèìòù", "\x00",
    ]
)  # fmt: skip
MIXED = st.lists(st.one_of(FRAGMENTS, st.text(max_size=12)), max_size=25).map(" ".join)


@SETTINGS
@given(subject=st.one_of(st.text(max_size=300), MIXED), body=st.one_of(st.text(max_size=2000), MIXED))
def test_classify_never_raises(vocab, subject: str, body: str) -> None:  # type: ignore[no-untyped-def]
    cls = classify(message(subject, body, ("a@b", "<c@d>")), vocab, resolve_message_id=lambda mid: None)
    assert cls.gestione is None or cls.gestione in {e.id for e in vocab.gestioni}
    assert not cls.telematizzata or cls.istanza
    assert isinstance(cls.to_dict()["evidence"], list)
