"""Commands at the top of a referent's reply: what runs, what is text, and the errors the referent reads."""

from __future__ import annotations

import pytest

from daemon.conversation.commands import Command, ParsedReply, parse_commands


def test_command_block_then_text() -> None:
    reply = parse_commands("#incarico\n\n#Chiudi  risolto con bonifico \n\nGentile utente,\nla pratica è definita.\n")
    assert reply == ParsedReply(
        commands=(Command("incarico", ""), Command("chiudi", "risolto con bonifico")),
        text="Gentile utente,\nla pratica è definita.",
        errors=(),
    )


def test_no_commands_is_all_text() -> None:
    assert parse_commands("Gentile utente,\nla pratica è definita.") == ParsedReply(
        (), "Gentile utente,\nla pratica è definita.", ()
    )


def test_empty_reply() -> None:
    assert parse_commands("") == ParsedReply((), "", ())


def test_names_are_case_insensitive() -> None:
    assert parse_commands("#ATTESA\n#Incarico").commands == (Command("attesa", ""), Command("incarico", ""))


def test_chiudi_without_esito() -> None:
    assert parse_commands("#chiudi").commands == (Command("chiudi", ""),)


def test_colon_after_the_name() -> None:
    assert parse_commands("#chiudi: risolto").commands == (Command("chiudi", "risolto"),)


def test_assegna_and_inoltra_take_their_one_word() -> None:
    reply = parse_commands("#assegna referente.credito\n#inoltra anagrafica\nTesto")
    assert reply.commands == (Command("assegna", "referente.credito"), Command("inoltra", "anagrafica"))
    assert reply.errors == ()


def test_the_block_ends_at_the_first_other_line() -> None:
    # A command below the text is text: the referent may be quoting the syntax to a colleague.
    reply = parse_commands("#incarico\nLa prendo io.\n#chiudi\n")
    assert reply.commands == (Command("incarico", ""),)
    assert reply.text == "La prendo io.\n#chiudi"


def test_hashtag_inside_the_text_is_text() -> None:
    reply = parse_commands("Buongiorno,\nvedi #circolare 12.\n#importante\n")
    assert reply == ParsedReply((), "Buongiorno,\nvedi #circolare 12.\n#importante", ())


@pytest.mark.parametrize("line", ["#123 è la sua pratica", "#FE-2026-000123 chiusa", "## Titolo", "#", "# Titolo"])
def test_hash_lines_that_are_clearly_not_commands_are_text(line: str) -> None:
    reply = parse_commands(f"{line}\nsegue")
    assert reply == ParsedReply((), f"{line}\nsegue", ())


def test_unknown_command_one_typo_away_suggests_the_right_one() -> None:
    for typo, meant in [("chuidi", "chiudi"), ("chiud", "chiudi"), ("attessa", "attesa"), ("assegan", "assegna")]:
        reply = parse_commands(f"#{typo} x\nTesto")
        assert reply.errors == (f"riga 1 «#{typo} x»: comando sconosciuto #{typo}; forse #{meant}?",), typo
        assert reply.commands == ()


def test_unknown_command_far_from_every_one_lists_them() -> None:
    reply = parse_commands("#urgente\nTesto")
    assert reply.errors == (
        "riga 1 «#urgente»: comando sconosciuto #urgente; "
        "i comandi sono #incarico, #attesa, #chiudi, #nota, #assegna, #inoltra",
    )


def test_unknown_command_does_not_end_the_block() -> None:
    reply = parse_commands("#chuidi\n#incarico\nTesto")
    assert reply.commands == (Command("incarico", ""),)
    assert reply.text == "Testo"


def test_known_command_written_with_a_space_after_the_hash() -> None:
    reply = parse_commands("# chiudi\nTesto")
    assert reply.errors == ("riga 1 «# chiudi»: scrivere #chiudi senza spazio dopo #",)
    assert reply.text == "Testo"


@pytest.mark.parametrize("name", ["incarico", "attesa"])
def test_commands_without_argument_refuse_one(name: str) -> None:
    reply = parse_commands(f"#{name} subito")
    assert reply.errors == (f"riga 1 «#{name} subito»: #{name} non vuole argomenti",)
    assert reply.commands == ()


def test_nota_with_an_argument_says_where_the_note_goes() -> None:
    reply = parse_commands("#nota ha telefonato\n")
    assert reply.errors == (
        "riga 1 «#nota ha telefonato»: #nota non vuole argomenti: la nota è il testo sotto i comandi",
    )


@pytest.mark.parametrize("name", ["assegna", "inoltra"])
def test_missing_argument(name: str) -> None:
    reply = parse_commands(f"\n#{name}\nTesto")
    assert len(reply.errors) == 1
    assert reply.errors[0].startswith(f"riga 2 «#{name}»: #{name} vuole la ")
    assert reply.commands == ()


@pytest.mark.parametrize("name", ["assegna", "inoltra"])
def test_extra_argument(name: str) -> None:
    reply = parse_commands(f"#{name} mario rossi")
    assert len(reply.errors) == 1
    assert reply.errors[0].startswith(f"riga 1 «#{name} mario rossi»: #{name} vuole una sola parola")
    assert reply.commands == ()


def test_command_given_twice() -> None:
    reply = parse_commands("#chiudi risolto\n#incarico\n#CHIUDI altro esito\nTesto")
    assert reply.commands == (Command("chiudi", "risolto"), Command("incarico", ""))
    assert reply.errors == ("riga 3 «#CHIUDI altro esito»: #chiudi ripetuto (già alla riga 1)",)


@pytest.mark.parametrize(
    ("first", "second"),
    [("attesa", "chiudi"), ("chiudi", "attesa"), ("nota", "attesa"), ("nota", "chiudi"), ("chiudi", "nota")],
)
def test_incompatible_commands(first: str, second: str) -> None:
    reply = parse_commands(f"#{first}\n#{second}\nTesto")
    assert reply.errors == (f"riga 2 «#{second}»: #{second} non va insieme a #{first} (riga 1)",)


@pytest.mark.parametrize("other", ["incarico", "assegna mario", "inoltra credito"])
def test_nota_goes_with_the_commands_that_relay_nothing(other: str) -> None:
    assert parse_commands(f"#nota\n#{other}\nHa telefonato.").errors == ()


def test_long_line_is_shortened_in_the_error() -> None:
    for line in ("#incarico " + "parola " * 40, "#chiudi" + "x" * 200):
        reply = parse_commands(line)
        assert len(reply.errors) == 1
        assert reply.errors[0].startswith(f"riga 1 «{line[:20]}") and "…»" in reply.errors[0]
        assert len(reply.errors[0]) < 200


def test_crlf_and_indented_commands() -> None:
    reply = parse_commands("  #incarico\r\n\r\nTesto\r\n")
    assert reply == ParsedReply((Command("incarico", ""),), "Testo", ())
