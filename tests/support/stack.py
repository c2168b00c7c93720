"""The whole daemon wired to test servers: configuration on a private directory, a running Service.

Used by the end-to-end tests, the crash test and the benchmarks, so that all of them run the daemon
exactly as `sportello run` does, only pointed at servers they started themselves.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

import yaml

from daemon.config import Config, load_config
from daemon.demo.run import DEMO_PASSWORD, demo_config

ROOT = Path(__file__).resolve().parents[2]
IMAP_PASSWORD_ENV = "SPORTELLO_IMAP_PASSWORD"
_SHARED_DIRS = ("routing_rules", "templates", "certs")


def stack_config(
    base: Config,
    workdir: Path,
    *,
    imap_port: int,
    smtp_port: int,
    mailboxes: Iterable[str] | None = None,
    poll_seconds: float = 1.0,
    notices: bool = True,
) -> Config:
    """The shipped config on `workdir` (SQLite + archive), IMAP and SMTP on the given loopback ports.

    Only the mailboxes named in `mailboxes` keep an IMAP worker; the others stay configured (rules
    refer to them) but are not polled. `notices=False` leaves out the notices to referents, for tests
    that count the emails of the intake mechanics (acknowledgements) one per ticket.
    """
    cfg = demo_config(base, workdir, imap_port, smtp_port)
    keep = set(mailboxes) if mailboxes is not None else None
    boxes = []
    for m in cfg.mailboxes:
        if m.imap is None:
            boxes.append(m)
        elif keep is not None and m.id not in keep:
            boxes.append(m.model_copy(update={"imap": None}))
        else:
            boxes.append(m.model_copy(update={"imap": m.imap.model_copy(update={"poll_seconds": poll_seconds})}))
    outbound = cfg.outbound.model_copy(update={"retry_min_seconds": 0.5, "retry_max_seconds": 2.0, "poll_seconds": 0.5})
    conversation = cfg.conversation.model_copy(update={"notify_workers": notices})
    # No admins' digest: the end-to-end tests count the mail each scenario sends (tests/alerts has the digest).
    return cfg.model_copy(
        update={"mailboxes": tuple(boxes), "outbound": outbound, "admins": (), "conversation": conversation}
    )


def write_config(cfg: Config, directory: Path) -> Path:
    """Write `cfg` as config.yaml in `directory`, beside links to the project's rules and templates."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in _SHARED_DIRS:
        link = directory / name
        if (ROOT / name).exists() and not link.exists():
            link.symlink_to(ROOT / name)
    data = cfg.model_dump(mode="json")
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    # Round-trip now, so a test fails here (with the Italian problem list) rather than in a subprocess.
    load_config(path, env={})
    return path


def imap_env() -> dict[str, str]:
    return {**os.environ, IMAP_PASSWORD_ENV: DEMO_PASSWORD}


@contextmanager
def running_service(cfg: Config, **kwargs: object) -> Iterator[object]:
    """A Service running all its workers in a thread; stopped cleanly on exit."""
    from daemon.service import Service

    os.environ[IMAP_PASSWORD_ENV] = DEMO_PASSWORD
    service = Service(cfg, **kwargs)  # type: ignore[arg-type]
    stop = threading.Event()
    runner = threading.Thread(target=service.run, args=(stop,), name="sportello-test", daemon=True)
    runner.start()
    try:
        yield service
    finally:
        stop.set()
        runner.join(timeout=30)
        service.close()


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def citizen_mail(
    to: str,
    n: int,
    *,
    subject: str | None = None,
    body: str | None = None,
    attachment: bytes | None = None,
    sender: str | None = None,
) -> bytes:
    """A plain information request from citizen n: opens a ticket on a provincial mailbox."""
    msg = EmailMessage()
    address = sender or f"cittadino{n}@posta.example"
    msg["From"] = f"Cittadino {n} <{address}>"
    msg["To"] = to
    msg["Subject"] = subject or f"Artigiani - richiesta informazioni avviso bonario n. {n}/2026"
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = make_msgid(idstring=f"t{n}", domain="posta.example")
    msg.set_content(body or f"Buongiorno,\nchiedo chiarimenti sull'avviso bonario n. {n}/2026.\nGrazie\n")
    if attachment is not None:
        msg.add_attachment(attachment, maintype="application", subtype="pdf", filename=f"avviso-{n}.pdf")
    return msg.as_bytes()
