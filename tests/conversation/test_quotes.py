"""The new text of a reply, as Italian mail clients build replies: quotes and signatures removed."""

from __future__ import annotations

from daemon.conversation.quotes import new_text
from daemon.mail.message import parse_message

QUOTED = "> Buongiorno,\n> vorrei sapere lo stato della pratica.\n> Mario Rossi\n"


def test_thunderbird() -> None:
    body = (
        "Va bene, procedo con la verifica.\nLe scrivo entro venerdì.\n\n"
        f"Il 16/11/2026 10:15, Mario Rossi ha scritto:\n{QUOTED}"
    )
    assert new_text(body, None) == "Va bene, procedo con la verifica.\nLe scrivo entro venerdì."


def test_gmail() -> None:
    body = (
        "Grazie, ricevuto.\n\n"
        "Il giorno lun 16 nov 2026 alle ore 10:15 Mario Rossi <mario.rossi@example.it> ha scritto:\n\n"
        f"{QUOTED}"
    )
    assert new_text(body, None) == "Grazie, ricevuto."


def test_gmail_with_the_attribution_wrapped() -> None:
    body = (
        "Grazie, ricevuto.\r\n\r\n"
        "Il giorno lun 16 nov 2026 alle ore 10:15 Mario Rossi <mario.rossi@example.it>\r\n"
        "ha scritto:\r\n\r\n"
        f"{QUOTED}"
    )
    assert new_text(body, None) == "Grazie, ricevuto."


def test_gmail_with_the_attribution_wrapped_inside_ha_scritto() -> None:
    body = f"Grazie.\n\nIl giorno lun 16 nov 2026 alle ore 10:15 Mario Rossi <m@x.it> ha\nscritto:\n\n{QUOTED}"
    assert new_text(body, None) == "Grazie."


def test_outlook() -> None:
    body = (
        "La pratica è in lavorazione.\n\n"
        "________________________________\n"
        "Da: Mario Rossi <mario.rossi@example.it>\n"
        "Inviato: lunedì 16 novembre 2026 10:15\n"
        "A: Sportello <sportello.ferrara@inps.example>\n"
        "Oggetto: [FE-2026-000123] Estratto conto\n\n"
        "Buongiorno,\nvorrei sapere lo stato della pratica.\n"
    )
    assert new_text(body, None) == "La pratica è in lavorazione."


def test_outlook_header_block_without_separator() -> None:
    body = (
        "La pratica è in lavorazione.\n\n"
        "Da: Mario Rossi <mario.rossi@example.it>\n"
        "Inviato: lunedì 16 novembre 2026 10:15\n"
        "A: Sportello <sportello.ferrara@inps.example>\n"
        "Oggetto: Estratto conto\n\nBuongiorno\n"
    )
    assert new_text(body, None) == "La pratica è in lavorazione."


def test_outlook_original_message() -> None:
    body = (
        "Trasmessa all'ufficio competente.\n\n"
        "-----Messaggio originale-----\n"
        "Da: Mario Rossi <mario.rossi@example.it>\n"
        "Inviato: lunedì 16 novembre 2026 10:15\n"
        "A: Sportello <sportello.ferrara@inps.example>\n"
        "Oggetto: Estratto conto\n\nBuongiorno\n"
    )
    assert new_text(body, None) == "Trasmessa all'ufficio competente."


def test_apple_mail() -> None:
    body = f"Ok, grazie.\n\nIl giorno 16 nov 2026, alle ore 10:15, Mario Rossi <m@x.it> ha scritto:\n\n{QUOTED}"
    assert new_text(body, None) == "Ok, grazie."


def test_iphone_with_quoted_attribution_and_signature() -> None:
    body = (
        "Ok, grazie.\n\nInviato da iPhone\n\n"
        "> Il giorno 16 nov 2026, alle ore 10:15, Mario Rossi <m@x.it> ha scritto:\n>\n"
        f"{QUOTED}"
    )
    assert new_text(body, None) == "Ok, grazie."


def test_sent_from_my_smartphone() -> None:
    assert new_text("Arrivo domani.\n\nInviato dal mio smartphone Samsung Galaxy.\n", None) == "Arrivo domani."


def test_a_sentence_starting_with_inviato_da_is_text() -> None:
    body = "Buongiorno,\nInviato da noi il modulo risulta incompleto\nla prego di ripeterlo."
    assert new_text(body, None) == body


def test_signature_after_dash_dash_space() -> None:
    body = "Risposta.\nSeconda riga:\n- punto uno\n- punto due\n\n-- \nLuigi Bianchi\nINPS - Sede di Ferrara\n"
    assert new_text(body, None) == "Risposta.\nSeconda riga:\n- punto uno\n- punto due"


def test_english_on_wrote() -> None:
    body = f"Fine, thanks.\n\nOn Mon, Nov 16, 2026 at 10:15 AM Mario Rossi <m@x.it> wrote:\n{QUOTED}"
    assert new_text(body, None) == "Fine, thanks."


def test_trailing_quote_without_attribution() -> None:
    assert new_text(f"Ricevuto.\n\n{QUOTED}\n", None) == "Ricevuto."


def test_interleaved_answers_keep_their_questions() -> None:
    body = "> Quando?\nLunedì.\n> Dove?\nIn sede.\n"
    assert new_text(body, None) == "> Quando?\nLunedì.\n> Dove?\nIn sede."


def test_reply_written_below_the_quote() -> None:
    body = f"Il 16/11/2026 10:15, Mario Rossi ha scritto:\n{QUOTED}\nRisposta sotto.\n-- \nLuigi\n"
    assert new_text(body, None) == "Risposta sotto."


def test_nothing_written_is_empty() -> None:
    # The library treats the quote itself as the latest reply when nothing stands above it.
    assert new_text(f"Il 16/11/2026 10:15, Mario Rossi ha scritto:\n{QUOTED}", None) == ""
    assert new_text(f"\n\n{QUOTED}", None) == ""
    assert new_text(None, None) == ""


def test_nothing_written_above_an_outlook_header_block_is_empty() -> None:
    body = "Da: Mario Rossi <m@x.it>\nInviato: lunedì 16 novembre 2026 10:15\nA: Sportello\nOggetto: X\n\nBuongiorno\n"
    assert new_text(body, None) == ""


def test_blank_edges_trimmed_and_inner_blank_lines_kept() -> None:
    assert new_text("\n\n \nPrima.\n\n\nSeconda.   \n\n \n", None) == "Prima.\n\n\nSeconda."


def test_a_sentence_starting_with_il_and_a_date_is_text() -> None:
    body = "Il 16 novembre la pratica è stata chiusa.\nIl collega ha scritto: attendere.\nSaluti"
    assert new_text(body, None) == body


def test_long_lines_are_kept_whole() -> None:
    # The library sees lines cut short; the text given back must still be the whole line.
    paragraph = "Il modulo " + "risulta compilato correttamente in ogni sua parte " * 40
    body = f"{paragraph.strip()}\n\nIl 16/11/2026 10:15, Mario Rossi ha scritto:\n{QUOTED}"
    assert new_text(body, None) == paragraph.strip()


def test_long_last_line_is_not_taken_for_a_device_signature_when_cut_short() -> None:
    # Whole, the line has punctuation no "Inviato da <device>" has; cut short for the library, it must not look
    # like one.
    last = "Inviato da " + "noi il modulo " * 10 + "(vedi allegato), grazie."
    assert new_text(f"Ok.\n{last}", None) == f"Ok.\n{last}"


def test_a_rule_of_hyphens_inside_the_text_is_text() -> None:
    body = "Prima parte.\n\n" + "-" * 40 + "\nSeconda parte."
    assert new_text(body, None) == body


def test_long_reply_beyond_the_library_window_is_whole() -> None:
    lines = [f"riga {number}" for number in range(600)]
    body = "\n".join(lines) + f"\n-- \nLuigi\n\nIl 16/11/2026 10:15, Mario Rossi ha scritto:\n{QUOTED}"
    assert new_text(body, None) == "\n".join(lines)


def test_plain_text_wins_over_html() -> None:
    assert new_text("Dal testo.", "<p>Dall'HTML.</p>") == "Dal testo."
    assert new_text(" \n", "<p>Dall'HTML.</p>") == "Dall'HTML."


OUTLOOK_HTML = """<html><head>
<meta http-equiv="Content-Type" content="text/html; charset=utf-8">
<style type="text/css" style="display:none;"> P {margin-top:0;margin-bottom:0;} </style>
</head>
<body dir="ltr">
<div style="font-family: Calibri, Arial, Helvetica, sans-serif; font-size: 12pt;">
Presa in carico: la ricontatto entro <b>venerd&igrave;</b>.</div>
<div style="font-family: Calibri, Arial, Helvetica, sans-serif; font-size: 12pt;"><br></div>
<div style="font-family: Calibri, sans-serif; font-size: 12pt;">Importo&nbsp;dovuto: 1.250,00&nbsp;&euro;</div>
<div id="Signature"><div>Luigi Bianchi<br>INPS - Sede di Ferrara</div></div>
<div id="appendonsend"></div>
<hr style="display:inline-block;width:98%" tabindex="-1">
<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri, sans-serif" style="font-size:11pt" color="#000000">
<b>Da:</b> Mario Rossi &lt;mario.rossi@example.it&gt;<br>
<b>Inviato:</b> luned&igrave; 16 novembre 2026 10:15<br>
<b>A:</b> Sportello &lt;sportello.ferrara@inps.example&gt;<br>
<b>Oggetto:</b> Estratto conto</font><div>&nbsp;</div></div>
<div><blockquote style="margin-left:0.8ex">Buongiorno, vorrei sapere lo stato della pratica.</blockquote></div>
</body></html>"""


def test_outlook_html_only() -> None:
    assert new_text(None, OUTLOOK_HTML) == (
        "Presa in carico: la ricontatto entro venerdì.\n\nImporto dovuto: 1.250,00 €"
    )


def test_thunderbird_html_only() -> None:
    html = (
        "<html><body><p>Va bene, procedo.</p><p>Seconda riga<br>terza riga</p>"
        '<div class="moz-cite-prefix">Il 16/11/2026 10:15, Mario Rossi ha scritto:<br></div>'
        '<blockquote type="cite"><p>Buongiorno</p></blockquote>'
        '<div class="moz-signature">-- <br>Luigi</div></body></html>'
    )
    assert new_text("", html) == "Va bene, procedo.\nSeconda riga\nterza riga"


def test_gmail_html_only() -> None:
    html = (
        '<div dir="ltr">Grazie, ricevuto.<div><br></div><div>A presto</div>'
        '<div><div dir="ltr" class="gmail_signature" data-smartmail="gmail_signature">Mario Rossi</div></div></div>'
        '<br><div class="gmail_quote gmail_quote_container"><div dir="ltr" class="gmail_attr">'
        "Il giorno lun 16 nov 2026 alle ore 10:15 Sportello &lt;s@inps.example&gt; ha scritto:<br></div>"
        '<blockquote class="gmail_quote">Buongiorno</blockquote></div>'
    )
    assert new_text(None, html) == "Grazie, ricevuto.\n\nA presto"


def test_apple_html_blockquote_without_container() -> None:
    html = (
        "<html><body><div>Ok, grazie.</div><div><br></div>"
        "<div>Il giorno 16 nov 2026, alle ore 10:15, Mario Rossi &lt;m@x.it&gt; ha scritto:</div><br>"
        '<blockquote type="cite"><div>Buongiorno</div><blockquote><div>prima</div></blockquote></blockquote>'
        "</body></html>"
    )
    assert new_text(None, html) == "Ok, grazie."


def test_html_scripts_styles_and_tables() -> None:
    html = (
        "<style>.x{color:red}</style><script>alert(1)</script>"
        "<table><tr><td>Importo</td><td>100 &euro;</td></tr><tr><td>Scadenza</td><td>30/11</td></tr></table>"
        "<pre>  riga\n  indentata</pre>"
    )
    assert new_text(None, html) == "Importo 100 €\nScadenza 30/11\n  riga\n  indentata"


def test_broken_html_never_raises() -> None:
    for html in ("<div", "</div></p><blockquote>", "<div>" * 2000 + "testo", "<!--", "<a href='x>ciao"):
        assert isinstance(new_text(None, html), str)
    assert new_text(None, "<div>" * 2000 + "testo" + "</span>" * 10) == "testo"


def _html_only_mail(html: str) -> bytes:
    return (
        "From: Luigi Bianchi <luigi.bianchi@inps.example>\r\nTo: sportello.ferrara@inps.example\r\n"
        "Subject: R: [FE-2026-000123] Estratto conto\r\nMessage-ID: <r1@inps.example>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + html
    ).encode("utf-8")


def test_html_only_reply_as_intake_parses_it() -> None:
    # Intake fills text_body with the HTML's flat words: read as text, the quoted history and the internal
    # addresses of the header block would be relayed to the citizen.
    msg = parse_message(_html_only_mail(OUTLOOK_HTML))
    assert msg.text_body.strip()
    assert new_text(msg.text_body, msg.html_body) == (
        "Presa in carico: la ricontatto entro venerdì.\n\nImporto dovuto: 1.250,00 €"
    )


def test_text_part_of_a_multipart_alternative_is_read() -> None:
    raw = (
        b"From: l@inps.example\r\nTo: s@inps.example\r\nSubject: R: x\r\nMessage-ID: <r2@inps.example>\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nDal testo.\r\n\r\n"
        b"Il 16/11/2026 10:15, Mario Rossi ha scritto:\r\n> domanda\r\n"
        b"--B\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Dall'HTML.</p>\r\n--B--\r\n"
    )
    msg = parse_message(raw)
    assert new_text(msg.text_body, msg.html_body) == "Dal testo."


def test_html_is_read_no_further_than_its_first_mebibyte() -> None:
    html = "<div>In testa.</div><div>" + "parola " * 200_000 + "</div><div>In fondo.</div>"
    text = new_text(None, html)
    assert text.startswith("In testa.\nparola parola")
    assert "In fondo." not in text
