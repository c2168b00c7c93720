"""Fuzz: generated and mutated messages through the real pipeline (full analysis, SQLite) never escape
with an exception, each gets an outcome, and none takes longer than the analysis budget."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.config import Config
from daemon.core.budget import OVER_BUDGET
from daemon.core.pipeline import InboundItem
from daemon.mail.fingerprint import content_fingerprint
from daemon.service import Service
from storage.models import OUTCOMES, InboundMessage
from tests.support.fuzzmail import MUTATIONS, mutate, seed_messages
from tests.support.paths import PEC_SAMPLES

SEEDS = seed_messages(PEC_SAMPLES)
MAILBOXES = ("fe-credito", "fe-anagrafica", "fe-pec", "er-lavoro-occasionale")

steps = st.lists(st.tuples(st.sampled_from(sorted(MUTATIONS)), st.integers(0, 2**31)), min_size=0, max_size=3)
messages = st.builds(lambda seed, ops: mutate(SEEDS[seed], ops), st.integers(0, len(SEEDS) - 1), steps) | st.binary(
    max_size=400
)


def test_every_fuzzed_message_gets_an_outcome(shipped_config: Config) -> None:
    boxes = [m for m in MAILBOXES if m in {b.id for b in shipped_config.mailboxes}]
    service = Service(shipped_config)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
    @given(batch=st.lists(st.tuples(messages, st.sampled_from(boxes)), min_size=1, max_size=4))
    def run(batch: list[tuple[bytes, str]]) -> None:
        items = [InboundItem(raw=raw, mailbox_id=box) for raw, box in batch]
        outcomes = service.ingest(items)  # an exception here fails the test: none may escape
        assert len(outcomes) == len(items)
        with service.session_factory() as s:
            for item, outcome in zip(items, outcomes, strict=True):
                row = s.get(InboundMessage, outcome.inbound_id)
                assert row is not None and row.outcome in OUTCOMES
                assert outcome.reason != OVER_BUDGET
                if row.raw_sha256 != item.digest:  # recorded earlier as the same message, by Message-ID
                    assert outcome.duplicate or row.mailbox != item.mailbox_id
                    earlier = service.archive.load(row.archive_ref)
                    assert content_fingerprint(earlier) == content_fingerprint(item.raw)

    try:
        run()
    finally:
        service.close()
