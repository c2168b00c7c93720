"""Reply tokens: only a Message-ID we minted for that person verifies, loop stamps, the instance secret."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from daemon.conversation.tokens import ReplyTokens, load_secret

SECRET = b"0123456789abcdef0123456789abcdef"
TOKENS = ReplyTokens(SECRET, "sportello.example")
REFERENT = "mario.rossi@inps.example"


def _minted() -> str:
    return TOKENS.message_id("FE-2026-000123", REFERENT)


def test_round_trip_gives_the_ticket_in_upper_case() -> None:
    message_id = _minted()
    assert message_id.startswith("fe-2026-000123.")
    assert message_id.endswith("@sportello.example")
    assert TOKENS.verify(message_id, REFERENT) == "FE-2026-000123"


def test_each_notice_gets_its_own_message_id() -> None:
    assert _minted() != _minted()


def test_angle_brackets_and_case_of_domain_and_address_are_tolerated() -> None:
    message_id = _minted()
    local, domain = message_id.split("@")
    assert TOKENS.verify(f" <{local}@{domain.upper()}> ", "Mario.Rossi@INPS.example") == "FE-2026-000123"


def test_another_persons_reply_does_not_verify() -> None:
    assert TOKENS.verify(_minted(), "luigi.bianchi@inps.example") is None


def test_token_cannot_be_moved_to_another_ticket() -> None:
    local, domain = _minted().split("@")
    _, nonce, mac = local.split(".")
    assert TOKENS.verify(f"fe-2026-000124.{nonce}.{mac}@{domain}", REFERENT) is None


@pytest.mark.parametrize("part", [1, 2])
def test_tampered_nonce_or_mac_does_not_verify(part: int) -> None:
    local, domain = _minted().split("@")
    fields = local.split(".")
    fields[part] = fields[part][:-1] + ("0" if fields[part][-1] != "0" else "1")
    assert TOKENS.verify(".".join(fields) + "@" + domain, REFERENT) is None


def test_truncated_mac_does_not_verify() -> None:
    local, domain = _minted().split("@")
    assert TOKENS.verify(local[:-4] + "@" + domain, REFERENT) is None


def test_another_instance_secret_does_not_verify() -> None:
    other = ReplyTokens(b"another secret of the same length!", "sportello.example")
    assert other.verify(_minted(), REFERENT) is None


def test_another_domain_does_not_verify() -> None:
    local, _ = _minted().split("@")
    assert TOKENS.verify(local + "@elsewhere.example", REFERENT) is None


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "<>",
        "@",
        "abc@sportello.example",
        "a.b@sportello.example",
        "fe-2026-000123..@sportello.example",
        "fe-2026-000123.zz.zz@sportello.example",
        "fe 2026.00.00@sportello.example",
        "fé-2026-000123.0011.ààààààààààààààààààààààààààààààà@sportello.example",
        "CAFE1234@mail.gmail.com",
        "x" * 5000 + "@sportello.example",
        "\x00\n<@>",
    ],
)
def test_garbage_is_none_never_an_exception(garbage: str) -> None:
    assert TOKENS.verify(garbage, REFERENT) is None


def test_ticket_id_that_cannot_live_in_a_message_id_is_refused() -> None:
    with pytest.raises(ValueError):
        TOKENS.message_id("FE.2026@x", REFERENT)


def test_stamp_round_trip_gives_the_hop() -> None:
    value = TOKENS.stamp("abc.123@sportello.example", 2)
    assert value.startswith("hop=2; sig=")
    assert TOKENS.read_stamp(value, "<abc.123@sportello.example>") == 2


def test_stamp_of_another_message_does_not_verify() -> None:
    value = TOKENS.stamp("abc.123@sportello.example", 1)
    assert TOKENS.read_stamp(value, "abc.124@sportello.example") is None


def test_raised_hop_does_not_verify() -> None:
    value = TOKENS.stamp("abc.123@sportello.example", 1)
    assert TOKENS.read_stamp(value.replace("hop=1", "hop=0"), "abc.123@sportello.example") is None


def test_stamp_of_another_instance_does_not_verify() -> None:
    other = ReplyTokens(b"another secret of the same length!", "sportello.example")
    assert TOKENS.read_stamp(other.stamp("abc.123@sportello.example", 1), "abc.123@sportello.example") is None


def test_token_mac_does_not_pass_as_a_stamp_signature() -> None:
    # The same key signs both: without separate purposes a token's MAC could be replayed as a stamp.
    minted = _minted()
    mac = minted.split("@")[0].split(".")[2]
    assert TOKENS.read_stamp(f"hop=0; sig={mac}", minted) is None


@pytest.mark.parametrize("value", [None, "", "hop=1", "hop=x; sig=00", "hop=1; sig=" + "g" * 32, "è" * 40])
def test_stamp_garbage_is_none(value: str | None) -> None:
    assert TOKENS.read_stamp(value, "abc.123@sportello.example") is None


def test_stamp_without_a_message_id_is_none() -> None:
    assert TOKENS.read_stamp(TOKENS.stamp("abc.123@sportello.example", 1), None) is None


def test_secret_file_created_once_with_mode_0600_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPORTELLO_TEST_SECRET", raising=False)
    path = tmp_path / "var" / "segreto"
    first = load_secret("SPORTELLO_TEST_SECRET", path)
    assert len(first) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_secret("SPORTELLO_TEST_SECRET", path) == first
    assert list(path.parent.iterdir()) == [path]


def test_two_instances_get_different_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPORTELLO_TEST_SECRET", raising=False)
    assert load_secret("SPORTELLO_TEST_SECRET", tmp_path / "a") != load_secret("SPORTELLO_TEST_SECRET", tmp_path / "b")


def test_environment_wins_over_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "segreto"
    path.write_text("from-the-file\n")
    monkeypatch.setenv("SPORTELLO_TEST_SECRET", "from-the-environment")
    assert load_secret("SPORTELLO_TEST_SECRET", path) == b"from-the-environment"


def test_empty_environment_variable_falls_back_to_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "segreto"
    path.write_text("from-the-file\n")
    monkeypatch.setenv("SPORTELLO_TEST_SECRET", "")
    assert load_secret("SPORTELLO_TEST_SECRET", path) == b"from-the-file"


def test_empty_secret_file_is_an_error_not_an_empty_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPORTELLO_TEST_SECRET", raising=False)
    path = tmp_path / "segreto"
    path.write_text("\n")
    with pytest.raises(ValueError, match="vuoto"):
        load_secret("SPORTELLO_TEST_SECRET", path)
