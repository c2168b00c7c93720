"""The time budget of one message's analysis: past it the message is quarantined and the admins told."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable

from daemon.config import Mailbox
from daemon.core.analysis import Analysis, Lookups, SystemDecision

__all__ = ["OVER_BUDGET", "within_budget"]

log = logging.getLogger("sportello.pipeline")

OVER_BUDGET = "analisi_troppo_lunga"  # quarantine reason

Analyser = Callable[[bytes, Mailbox, Lookups], Analysis]


def within_budget(analyser: Analyser, seconds: float, clock: Callable[[], float] = time.monotonic) -> Analyser:
    """`analyser`, whose result is replaced by a quarantine when it took longer than `seconds`.

    Every stage of the analysis is linear in the message's size, so the budget is a guard against what a
    fuzz run has not found yet, checked when the analysis returns: a message that took too long is never
    routed on an analysis nobody can vouch for, and the admin learns which one it was (the quarantine
    alert names the archive copy to replay)."""

    def analyse(raw: bytes, mailbox: Mailbox, lookups: Lookups) -> Analysis:
        started = clock()
        analysis = analyser(raw, mailbox, lookups)
        elapsed = clock() - started
        if elapsed <= seconds:
            return analysis
        log.warning("casella=%s analisi di %.1f s oltre il limite di %.1f s: quarantena", mailbox.id, elapsed, seconds)
        return dataclasses.replace(
            analysis,
            decision=SystemDecision(
                "quarantine", OVER_BUDGET, params={"secondi": f"{elapsed:.1f}", "limite": f"{seconds:g}"}
            ),
        )

    return analyse
