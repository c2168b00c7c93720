"""Authentication of a reply: the topmost Authentication-Results of a trusted server, aligned with From."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.conversation.authentication import AuthPolicy, authenticate

POLICY = AuthPolicy(trusted_authserv_ids=frozenset({"mx.inps.example"}))
FROM = "mario.rossi@studio-rossi.example"


def test_trusted_dkim_pass_for_the_from_domain_passes() -> None:
    verdict = authenticate(
        ["mx.inps.example;\r\n\tdkim=pass (2048-bit key) header.d=studio-rossi.example header.s=s1 header.b=Ab12"],
        FROM,
        POLICY,
    )
    assert verdict.passed and verdict.method == "dkim"


def test_trusted_spf_pass_for_the_from_domain_passes() -> None:
    verdict = authenticate(["mx.inps.example; spf=pass smtp.mailfrom=bounce@studio-rossi.example"], FROM, POLICY)
    assert verdict.passed and verdict.method == "spf"


def test_spf_mailfrom_as_bare_domain_passes() -> None:
    assert authenticate(["mx.inps.example; spf=pass smtp.mailfrom=studio-rossi.example"], FROM, POLICY).passed


def test_no_header_does_not_pass() -> None:
    verdict = authenticate([], FROM, POLICY)
    assert not verdict.passed
    assert verdict.reason == "nessun Authentication-Results da un server attendibile"


def test_only_the_topmost_header_counts_not_the_last() -> None:
    headers = [
        "mx.inps.example; dkim=fail header.d=studio-rossi.example; spf=fail smtp.mailfrom=studio-rossi.example",
        "mx.inps.example; dkim=pass header.d=studio-rossi.example",
    ]
    assert not authenticate(headers, FROM, POLICY).passed


def test_untrusted_authserv_id_does_not_pass() -> None:
    verdict = authenticate(["mx.attacker.example; dkim=pass header.d=studio-rossi.example"], FROM, POLICY)
    assert not verdict.passed
    assert "mx.attacker.example" in verdict.reason


def test_forged_trusted_header_below_an_untrusted_topmost_does_not_pass() -> None:
    headers = [
        "mx.attacker.example; none",
        "mx.inps.example; dkim=pass header.d=studio-rossi.example; spf=pass smtp.mailfrom=studio-rossi.example",
    ]
    assert not authenticate(headers, FROM, POLICY).passed


def test_dkim_pass_for_another_domain_does_not_pass() -> None:
    verdict = authenticate(["mx.inps.example; dkim=pass header.d=example.org"], FROM, POLICY)
    assert not verdict.passed
    assert verdict.reason == "dkim=pass per example.org non allineato al mittente"


def test_dkim_pass_for_a_lookalike_suffix_does_not_pass() -> None:
    # "ends with" without the dot would align rossi.example with studio-rossi.example.
    assert not authenticate(["mx.inps.example; dkim=pass header.d=rossi.example"], FROM, POLICY).passed


def test_dkim_pass_for_a_bare_top_level_label_does_not_pass() -> None:
    assert not authenticate(["mx.inps.example; dkim=pass header.d=example"], FROM, POLICY).passed


def test_subdomains_align_both_ways() -> None:
    parent = authenticate(
        ["mx.inps.example; dkim=pass header.d=studio-rossi.example"], "m@posta.studio-rossi.example", POLICY
    )
    child = authenticate(["mx.inps.example; dkim=pass header.d=mail.studio-rossi.example"], FROM, POLICY)
    assert parent.passed and child.passed


def test_dkim_identity_domain_aligns_when_signer_does_not() -> None:
    header = "mx.inps.example; dkim=pass header.d=esp.example header.i=@studio-rossi.example"
    assert authenticate([header], FROM, POLICY).passed


def test_spf_pass_for_another_envelope_domain_does_not_pass() -> None:
    verdict = authenticate(["mx.inps.example; spf=pass smtp.mailfrom=bounces@mailer.example"], FROM, POLICY)
    assert not verdict.passed
    assert "non allineato" in verdict.reason


def test_spf_fail_and_softfail_do_not_pass() -> None:
    for outcome in ("fail", "softfail", "neutral", "none", "temperror"):
        verdict = authenticate([f"mx.inps.example; spf={outcome} smtp.mailfrom=studio-rossi.example"], FROM, POLICY)
        assert not verdict.passed, outcome
        assert verdict.reason == f"spf={outcome}"


def test_dkim_fail_does_not_pass() -> None:
    assert not authenticate(["mx.inps.example; dkim=fail header.d=studio-rossi.example"], FROM, POLICY).passed


def test_one_passing_method_is_enough() -> None:
    header = "mx.inps.example; spf=softfail smtp.mailfrom=studio-rossi.example; dkim=pass header.d=studio-rossi.example"
    assert authenticate([header], FROM, POLICY).passed


def test_case_differences_do_not_matter() -> None:
    header = "MX.INPS.Example; DKIM=Pass header.d=Studio-Rossi.EXAMPLE"
    verdict = authenticate([header], "Mario Rossi <Mario.Rossi@STUDIO-ROSSI.example>", POLICY)
    assert verdict.passed
    policy = AuthPolicy(trusted_authserv_ids=frozenset({"MX.Inps.EXAMPLE"}))
    assert authenticate(["mx.inps.example; dkim=pass header.d=studio-rossi.example"], FROM, policy).passed


def test_header_with_only_other_methods_does_not_pass() -> None:
    verdict = authenticate(["mx.inps.example; arc=pass; dmarc=pass header.from=studio-rossi.example"], FROM, POLICY)
    assert not verdict.passed
    assert "nessun risultato dkim o spf" in verdict.reason


def test_unparseable_header_does_not_pass() -> None:
    verdict = authenticate(["mx.inps.example; ;;; ===="], FROM, POLICY)
    assert not verdict.passed
    assert "illeggibile" in verdict.reason


def test_deeply_nested_comment_does_not_raise() -> None:
    # The parser recurses on comments: without a guard this is a RecursionError.
    assert not authenticate(["mx.inps.example; dkim=pass (" + "(" * 3000], FROM, POLICY).passed


def test_from_without_domain_does_not_pass() -> None:
    assert not authenticate(["mx.inps.example; dkim=pass header.d=studio-rossi.example"], "mario", POLICY).passed


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.text(alphabet='mx.inps.example;dkimspf=pass()header.d@ "\\\r\n\tèx', max_size=80), max_size=3),
    st.text(max_size=40),
)
def test_never_raises(headers: list[str], from_address: str) -> None:
    authenticate(headers, from_address, POLICY)
