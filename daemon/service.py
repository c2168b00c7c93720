"""Composition root: builds the running system from a Config (database, archive, rules, pipeline,
outbox sender, IMAP workers, scheduler). The CLI, the demo and the tests all start from here."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from apscheduler.schedulers.background import BackgroundScheduler

from daemon.alerts.storage_failure import storage_failed
from daemon.classify import load_vocabularies
from daemon.clock import utcnow
from daemon.config import Config
from daemon.conversation.replies import Conversation
from daemon.conversation.tokens import ReplyTokens, load_secret
from daemon.core.analysis import Lookups
from daemon.core.budget import within_budget
from daemon.core.context import ContextBuilder
from daemon.core.message_analyser import MessageAnalyser
from daemon.core.outcomes import Outcomes
from daemon.core.pipeline import InboundItem, Outcome, Pipeline, session_lookups
from daemon.core.tickets import TicketService
from daemon.intake.imap import FetchedMessage, ImapWorker
from daemon.ops.monitor import Monitor
from daemon.ops.reloader import AdminFiles
from daemon.outbound.process import SenderProcess
from daemon.outbound.sender import OutboxSender
from daemon.outbound.templates import TemplateRenderer
from daemon.pec.settings import load_pec_trust
from daemon.rules import RuleStore
from daemon.rules.loader import vocabulary_ids
from daemon.sla import SlaRuntime, build_runtime, warn_unknown_policies
from daemon.sla.hooks import SlaClockListener
from daemon.sla.scheduler import SlaJobs, start_scheduler
from daemon.workcalendar import calendars_from_config
from storage.archive import RawArchive
from storage.db import init_db, make_engine, make_read_session_factory, make_session_factory
from storage.errors import StorageUnavailable
from storage.models import Alert

if TYPE_CHECKING:
    from daemon.classify import Vocabularies
    from daemon.intake.leases import LeaseKeeper
    from daemon.intake.lmtp import LmtpIntake
    from daemon.sla.policies import PolicyStore

__all__ = ["Service", "build_outcomes"]

log = logging.getLogger("sportello.service")


def build_outcomes(
    config: Config,
    archive: RawArchive,
    renderer: TemplateRenderer,
    tokens: ReplyTokens,
    sla: SlaRuntime | None,
    rules: RuleStore | None = None,
) -> Outcomes:
    """The recording half of the graph: the ticket service (with the SLA clock as its listener when
    the SLA component is on), the template context, the conversation, the outcome actions."""
    tickets = TicketService(config, renderer, tokens)
    if sla is not None:
        tickets.add_listener(SlaClockListener(sla))
    context = ContextBuilder(config, (lambda p: sla.policies.for_ticket(p).answer_days) if sla is not None else None)
    conversation = Conversation(
        config,
        tickets,
        context,
        tokens,
        archive,
        sla.calendars if sla is not None else calendars_from_config(config),
        (lambda: rules.current.queues) if rules is not None else frozenset,
    )
    return Outcomes(config, archive, tickets, context, conversation)


class Service:
    """The running system's object graph, built explicitly: components receive what they use, and
    the ticket service's listeners are registered here (tests build the same graph)."""

    def __init__(self, config: Config, *, clock: Callable[[], datetime] = utcnow, migrate: bool = True) -> None:
        self.config = config
        self.clock = clock
        self.engine = make_engine(config.database_url, echo=config.database.echo)
        if migrate:
            init_db(self.engine)
        self.session_factory = make_session_factory(self.engine)
        self.archive = RawArchive(config.archive_dir, fsync=config.archive.fsync)
        self.rules_dir = Path(config.base_dir) / "routing_rules"
        self.templates_dir = Path(config.base_dir) / "templates"
        self.renderer = TemplateRenderer(self.templates_dir)
        self.vocab = load_vocabularies(self.rules_dir)
        self.trust = load_pec_trust(config)
        # Rules are checked against the vocabulary the analyser uses, already loaded: not parsed again.
        self.rules = RuleStore(
            self.rules_dir, config, known_templates=self.renderer.names(), vocabulary=vocabulary_ids(self.vocab)
        )
        self.tokens = ReplyTokens(
            load_secret(config.instance.secret_env, config.resolve_path(config.instance.secret_file)),
            config.instance.message_id_domain,
        )
        self.sla: SlaRuntime | None = build_runtime(config, self.rules_dir, self.renderer, self.tokens)
        self.outcomes = build_outcomes(config, self.archive, self.renderer, self.tokens, self.sla, self.rules)
        self.tickets = self.outcomes.tickets
        if self.sla is not None:
            warn_unknown_policies(self.sla, self.rules.current)
        self.analyser = MessageAnalyser(config, self.vocab, self.trust, self.rules, self.tokens)
        self.admin_files = self._admin_files()
        self.outbox_wake = threading.Event()
        self.pipeline = Pipeline(
            config,
            self.session_factory,
            self.archive,
            within_budget(self.analyser, config.intake.analysis_budget_seconds),
            self.outcomes,
            clock=clock,
            on_outbox=self._wake_sender,
            read_session_factory=make_read_session_factory(self.engine),
        )
        self._sender_process: SenderProcess | None = None
        self.workers: list[ImapWorker] = []
        # Scrapes and readiness checks only read: on SQLite they must not take the write lock.
        self.monitor = Monitor(config, make_read_session_factory(self.engine), clock, lambda: self.workers)

    def _admin_files(self) -> AdminFiles:
        """Rules, vocabularies, templates and SLA policies reloaded in place (every 2 s, and on SIGHUP)."""
        from daemon.classify.store import LoadedVocabularies, VocabularyStore
        from daemon.rules import load_ruleset

        def rules_accept(vocab: Vocabularies) -> None:
            load_ruleset(self.rules_dir, self.config, self.renderer.names(), vocabulary_ids(vocab))

        def use(loaded: LoadedVocabularies) -> None:
            self.vocab = self.analyser.vocab = loaded.vocab
            self.rules.vocabulary = vocabulary_ids(loaded.vocab)

        def policies() -> PolicyStore | None:
            return self.sla.store if self.sla is not None else None

        return AdminFiles(
            rules=self.rules,
            vocabulary=VocabularyStore(self.rules_dir, rules_accept, initial=self.vocab),
            renderer=self.renderer,
            policies=policies,
            on_vocabulary=use,
            session_factory=self.session_factory,
            clock=self.clock,
        )

    def _wake_sender(self) -> None:
        self.outbox_wake.set()
        if self._sender_process is not None:
            self._sender_process.wake()

    def sla_jobs(self) -> SlaJobs | None:
        if self.sla is None:
            return None
        return SlaJobs(self.sla, self.session_factory, self.tickets, clock=self.clock, on_outbox=self._wake_sender)

    # -- intake -------------------------------------------------------------------------------

    def ingest(self, items: Sequence[InboundItem]) -> list[Outcome]:
        started = time.perf_counter()
        try:
            outcomes = self.pipeline.process_batch(items)
        except StorageUnavailable as exc:  # nothing recorded: the caller leaves the messages for a retry
            storage_failed(self.session_factory, exc, items[0].mailbox_id if items else None, self.clock())
            raise
        self.monitor.processed(items, outcomes, time.perf_counter() - started)
        return outcomes

    def imap_handler(self, mailbox_id: str) -> Callable[[Sequence[FetchedMessage]], None]:
        def handle(batch: Sequence[FetchedMessage]) -> None:
            items = [
                InboundItem(
                    raw=m.raw,
                    mailbox_id=mailbox_id,
                    source="imap",
                    uidvalidity=m.uidvalidity,
                    uid=m.uid,
                    received_at=m.internaldate,
                    oversized=m.oversized,
                    size=m.size,
                )
                for m in batch
            ]
            self.ingest(items)

        return handle

    def explain(self, raw: bytes, mailbox_id: str, *, use_db: bool = True) -> dict[str, object]:
        """Dry run: the analysis of one message, no writes, no mail."""
        mailbox = self.config.mailbox(mailbox_id)
        if not use_db:
            return self.analyser(raw, mailbox, Lookups.empty()).to_dict()
        with self.session_factory() as session:
            return self.analyser(raw, mailbox, session_lookups(session)).to_dict()

    # -- running ------------------------------------------------------------------------------

    def run(
        self,
        stop: threading.Event,
        *,
        imap_passwords: dict[str, str] | None = None,
        on_started: Callable[[], None] | None = None,
    ) -> None:
        """Run every worker until `stop` is set; return after a clean stop. `on_started` is called once
        everything runs (systemd's READY)."""
        from daemon.alerts.digest import AlertDigest, start_digest_job

        threads: list[threading.Thread] = []
        if self.config.outbound.sender_process and self.clock is utcnow:
            process = SenderProcess(self.config)
            process.start()
            self._sender_process = process
        else:
            sender = OutboxSender(self.session_factory, self.config, clock=self.clock)
            threads.append(
                threading.Thread(target=sender.run, args=(stop, self.outbox_wake), name="outbox", daemon=True)
            )
        self.workers = []
        keeper = self._lease_keeper()
        threads.append(threading.Thread(target=keeper.run, args=(stop,), name="leases", daemon=True))
        for mailbox in self.config.mailboxes:
            if mailbox.imap is None:
                continue
            worker = ImapWorker(
                mailbox,
                self.imap_handler(mailbox.id),
                stop,
                max_message_bytes=self.config.intake.max_message_bytes,
                reconnect_min=self.config.intake.reconnect_min_seconds,
                reconnect_max=self.config.intake.reconnect_max_seconds,
                password=(imap_passwords or {}).get(mailbox.id),
                alert_after=self.config.intake.alert_after_seconds,
                on_outage=self._record_outage,
                turn=keeper,
            )
            self.workers.append(worker)
            threads.append(threading.Thread(target=worker.run, name=f"imap-{mailbox.id}", daemon=True))
        threads.append(threading.Thread(target=self._watch_rules, args=(stop,), name="rules", daemon=True))
        lmtp = self._start_lmtp()
        scheduler = self._start_scheduler()
        alert_digest = start_digest_job(
            AlertDigest(self.config, self.session_factory, self.renderer, clock=self.clock, on_outbox=self._wake_sender)
        )
        for t in threads:
            t.start()
        self.monitor.start()
        log.info("sportello avviato: %d caselle", len(self.workers))
        if on_started is not None:
            on_started()
        stop.wait()
        if lmtp is not None:
            lmtp.stop()
        self.monitor.stop()
        for t in threads:
            t.join(timeout=15)
        keeper.release()
        if self._sender_process is not None:
            self._sender_process.stop()
            self._sender_process = None
        if scheduler is not None:
            scheduler.shutdown()
        if alert_digest is not None:
            alert_digest.shutdown()
        log.info("sportello fermato")

    def _lease_keeper(self) -> LeaseKeeper:
        from daemon.intake.leases import LeaseKeeper, MailboxLeases, instance_holder

        holder = instance_holder(self.config.instance.name)
        leases = MailboxLeases(self.engine, holder, self.config.intake.lease_seconds)  # real time, not the SLA clock
        return LeaseKeeper(leases, [m.id for m in self.config.mailboxes if m.imap is not None])

    def _start_lmtp(self) -> LmtpIntake | None:
        if self.config.lmtp is None:
            return None
        from daemon.intake.lmtp import LmtpIntake

        lmtp = LmtpIntake(self.config, self.ingest)
        lmtp.start()
        return lmtp

    def _record_outage(self, mailbox_id: str, error: str) -> None:
        limit = self.config.intake.alert_after_seconds
        with self.session_factory() as session, session.begin():
            session.add(
                Alert(
                    at=self.clock(),
                    kind="casella_non_leggibile",
                    mailbox=mailbox_id,
                    note=f"casella {mailbox_id} non leggibile da oltre {limit:.0f} s: {error}",
                )
            )

    def _watch_rules(self, stop: threading.Event) -> None:
        while not stop.wait(2.0):
            try:
                self.admin_files.refresh()
            except Exception:  # never let a reload problem stop routing
                log.exception("ricaricamento regole non riuscito")

    def _start_scheduler(self) -> BackgroundScheduler | None:
        jobs = self.sla_jobs()
        return start_scheduler(jobs) if jobs is not None else None

    def close(self) -> None:
        self.engine.dispose()
