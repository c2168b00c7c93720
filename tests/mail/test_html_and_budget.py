"""HTML-only mail becomes text without backtracking; an analysis past its time budget is quarantined."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import select

from daemon.core.budget import OVER_BUDGET, within_budget
from daemon.core.pipeline import Pipeline
from daemon.mail.html_text import html_to_text
from daemon.mail.message import parse_message
from storage.models import Alert, Outbox
from tests.support.pipeline import mail


def test_a_lone_less_than_sign_is_text_not_the_start_of_a_tag() -> None:
    # A tag pattern took "< b e c >" for a tag (and backtracked on every unclosed one).
    assert html_to_text("<p>importo a < b e c > d</p>") == "importo a < b e c > d"


def test_blocks_break_lines_and_code_comments_and_entities_are_handled() -> None:
    html = (
        "<html><head><style>p { color: red }</style></head><body><p>Gentile ufficio,<br>chiedo l&#39;estratto"
        " &egrave; urgente</p><!-- nota interna --><div>Mario&nbsp;Rossi</div><script>var x = '<b>';</script>"
    )
    assert html_to_text(html) == "Gentile ufficio,\nchiedo l'estratto è urgente\n\nMario Rossi"


def test_an_unclosed_script_or_tag_hides_the_rest_as_a_browser_would() -> None:
    assert html_to_text("<p>Testo</p><script>document.write('segreto')") == "Testo"
    assert html_to_text("<p>Testo</p><img src='x' alt='segreto") == "Testo"
    assert html_to_text("Testo<!-- commento mai chiuso <p>segreto</p>") == "Testo"


def test_html_only_mail_gets_its_text_through_the_parser() -> None:
    raw = (
        b"From: a@example.org\r\nSubject: Artigiani - avviso\r\nMessage-ID: <h1@example.org>\r\n"
        b"Content-Type: text/html; charset=utf-8\r\n\r\n<p>" + b"<" * 200_000 + b" fine</p>\r\n"
    )
    assert parse_message(raw).text_body == "<" * 200_000 + " fine"


def test_a_message_over_the_time_budget_is_quarantined_and_the_admin_told(pipeline: Pipeline) -> None:
    readings: Iterator[float] = iter([100.0, 106.5])  # the analysis takes 6.5 s on this clock
    pipeline.analyser = within_budget(pipeline.analyser, 5.0, clock=lambda: next(readings))
    outcome = pipeline.process(mail(1), "fe-credito")
    assert (outcome.outcome, outcome.reason, outcome.ticket_id) == ("quarantined", OVER_BUDGET, None)
    with pipeline.session_factory() as s:
        assert s.execute(select(Alert.kind)).scalars().all() == ["quarantena"]
        assert s.execute(select(Outbox)).first() is None


def test_a_message_within_the_budget_is_routed(pipeline: Pipeline) -> None:
    readings = iter([100.0, 104.9])
    pipeline.analyser = within_budget(pipeline.analyser, 5.0, clock=lambda: next(readings))
    assert pipeline.process(mail(1), "fe-credito").outcome == "opened"
