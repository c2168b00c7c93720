"""Acceptance 3: `sportello run` killed with SIGKILL in the middle of sweeps, restarted, killed again:
at the end every due step was sent once, none twice, none missed (at the SMTP sink too)."""

from __future__ import annotations

import sqlite3
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from daemon.config import Config
from daemon.core.pipeline import InboundItem
from daemon.demo.smtp_sink import SmtpSink
from daemon.service import Service
from tests.support.daemon_process import db_count, kill_daemon, run_until_done, start_daemon
from tests.support.stack import citizen_mail, stack_config, wait_until, write_config

TICKETS = 160
STEPS = 3  # promemoria, sollecito, escalation_regionale: all overdue for mail received 60 days ago
TOTAL = TICKETS * STEPS
KILL_AT = (1, 120, 300)  # recorded steps at which the daemon is killed


@pytest.mark.slow
def test_sigkill_during_sweeps_sends_every_step_once(shipped_config: Config, tmp_path: Path) -> None:
    sink = SmtpSink("127.0.0.1", 0)
    sink.start()
    try:
        cfg = stack_config(
            shipped_config, tmp_path / "data", imap_port=1, smtp_port=sink.port, mailboxes=[], notices=False
        )
        # Small transactions, so that a kill lands between commits of one sweep.
        cfg = cfg.model_copy(
            update={"calendar": cfg.calendar.model_copy(update={"sweep_batch": 2, "sweep_seconds": 5})}
        )
        config = write_config(cfg, tmp_path / "etc")
        db = Path(cfg.database_url.removeprefix("sqlite:///"))

        # Tickets received 60 days ago (by IMAP time): their whole ladder is overdue now.
        received = datetime.now(UTC) - timedelta(days=60)
        service = Service(cfg)
        address = cfg.mailbox("fe-credito").address
        outcomes = service.ingest(
            [
                InboundItem(raw=citizen_mail(address, n), mailbox_id="fe-credito", received_at=received)
                for n in range(TICKETS)
            ]
        )
        service.close()
        assert {o.outcome for o in outcomes} == {"opened"}

        log = tmp_path / "daemon.log"
        runs = "SELECT count(*) FROM sla_step_runs WHERE result = 'sent'"
        seen_at_kill = []
        for target in KILL_AT:
            proc = start_daemon(config, log)
            try:
                reached = wait_until(lambda t=target: db_count(db, runs) >= t, 60, interval=0.005)
                assert reached, f"il servizio non ha eseguito {target} passi:\n{log.read_text()[-3000:]}"
            finally:
                kill_daemon(proc)
            seen_at_kill.append(db_count(db, runs))
        assert any(0 < n < TOTAL for n in seen_at_kill), f"nessun arresto a metà di un controllo: {seen_at_kill}"

        run_until_done(config, log, db, runs, TOTAL, 120)

        # In the database: each step once, with its event and its outbox row.
        # The Ordine's variant of the escalation is recorded as skipped for a citizen's ticket, once.
        assert db_count(db, "SELECT count(DISTINCT ticket_id || '/' || step) FROM sla_step_runs") == TOTAL + TICKETS
        assert db_count(db, "SELECT count(*) FROM sla_step_runs") == TOTAL + TICKETS
        assert db_count(db, "SELECT count(*) FROM sla_step_runs WHERE result = 'sent'") == TOTAL
        assert db_count(db, "SELECT count(*) FROM ticket_events WHERE kind = 'sla_passo'") == TOTAL
        assert db_count(db, "SELECT count(*) FROM outbox WHERE template LIKE 'sla_%'") == TOTAL
        assert db_count(db, "SELECT count(DISTINCT outbox_id) FROM sla_step_runs") == TOTAL
        assert db_count(db, "SELECT count(*) FROM sla_clocks WHERE next_at IS NOT NULL") == 0
        # At the sink: every step's email arrived; a copy only with the same Message-ID (a kill between
        # the server's acceptance and the outbox update), at most once per kill.
        with sqlite3.connect(db) as conn:
            step_ids = {r[0] for r in conn.execute("SELECT message_id FROM outbox WHERE template LIKE 'sla_%'")}
        received_ids = Counter(m.message_id for m in sink.messages if m.message_id in step_ids)
        assert set(received_ids) == step_ids
        assert sum(c - 1 for c in received_ids.values()) <= len(KILL_AT)
    finally:
        sink.stop()
