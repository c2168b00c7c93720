"""A read-only or full archive, a read-only database: one clear error, nothing recorded, the messages left
for the next try, an alert; and once the storage is back the same messages are recorded."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from daemon.alerts.storage_failure import ALERT_KIND
from daemon.cli.main import app
from daemon.config import Config
from daemon.core.pipeline import InboundItem
from daemon.service import Service
from storage.errors import StorageUnavailable
from storage.models import Alert, InboundMessage
from tests.support.imap_worker import USER, _run, _worker
from tests.support.paths import ROOT
from tests.support.stack import citizen_mail, wait_until

TO = "GestioneCredito.Ferrara@inps.example"


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True)


@pytest.fixture(autouse=True)
def _can_mount(tmp_path: Path, in_ci: bool) -> None:
    probe = tmp_path / "probe"
    probe.mkdir()
    try:
        _mount("-t", "tmpfs", "-o", "size=16k", "tmpfs", str(probe))
    except (OSError, subprocess.CalledProcessError) as exc:
        if in_ci:
            raise
        pytest.skip(f"mount non permesso qui (serve root): {exc}")
    subprocess.run(["umount", str(probe)], check=True)


@contextmanager
def read_only(directory: Path) -> Iterator[None]:
    """`directory` as a read-only bind mount of itself (root writes through chmod, not through this)."""
    _mount("--bind", str(directory), str(directory))
    try:
        _mount("-o", "remount,bind,ro", str(directory))
        yield
    finally:
        subprocess.run(["umount", str(directory)], check=True)


@contextmanager
def tiny_tmpfs(directory: Path, size: str = "32k") -> Iterator[None]:
    _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory))
    try:
        yield
    finally:
        subprocess.run(["umount", str(directory)], check=True)


def counts(service: Service) -> tuple[int, list[str]]:
    with service.session_factory() as s:
        inbound = s.execute(select(func.count()).select_from(InboundMessage)).scalar_one()
        return inbound, list(s.execute(select(Alert.kind)).scalars())


def test_read_only_archive_records_nothing_alerts_and_recovers(shipped_config: Config) -> None:
    service = Service(shipped_config)
    archive = shipped_config.archive_dir
    archive.mkdir(parents=True, exist_ok=True)
    items = [InboundItem(citizen_mail(TO, n), "fe-credito") for n in (1, 2)]
    with read_only(archive):
        with pytest.raises(StorageUnavailable) as caught:
            service.ingest(items)
        with pytest.raises(StorageUnavailable):
            service.ingest(items)  # still failing: the alert is not repeated
    assert "\n" not in str(caught.value) and "archivio" in str(caught.value)
    assert counts(service) == (0, [ALERT_KIND])
    outcomes = service.ingest(items)  # the storage is back: the same messages, recorded once
    assert [o.outcome for o in outcomes] == ["opened", "opened"]
    assert counts(service)[0] == 2
    service.close()


def test_an_analyser_bug_on_a_read_only_archive_is_not_a_traceback(shipped_config: Config) -> None:
    # The internal-error path stored the message again and let OSError escape.
    service = Service(shipped_config)

    def broken(*_args: object) -> object:
        raise RuntimeError("bug")

    service.pipeline.analyser = broken  # type: ignore[assignment]
    shipped_config.archive_dir.mkdir(parents=True, exist_ok=True)
    with read_only(shipped_config.archive_dir), pytest.raises(StorageUnavailable):
        service.ingest([InboundItem(citizen_mail(TO, 3), "fe-credito")])
    assert counts(service) == (0, [ALERT_KIND])
    service.close()


def test_full_archive_leaves_no_half_recorded_message(shipped_config: Config) -> None:
    service = Service(shipped_config)
    archive = shipped_config.archive_dir
    archive.mkdir(parents=True, exist_ok=True)
    big = citizen_mail(TO, 4, attachment=os.urandom(200_000))
    with tiny_tmpfs(archive):
        with pytest.raises(StorageUnavailable, match="archivio"):
            service.ingest([InboundItem(citizen_mail(TO, 5), "fe-credito"), InboundItem(big, "fe-credito")])
        assert counts(service)[0] == 0  # not even the small one: the batch is one transaction
    service.close()


def test_read_only_database_is_a_clear_error(shipped_config: Config, tmp_path: Path) -> None:
    Service(shipped_config).close()  # migrated while writable
    service = Service(shipped_config, migrate=False)
    with read_only(tmp_path), pytest.raises(StorageUnavailable, match="database"):
        service.ingest([InboundItem(citizen_mail(TO, 6), "fe-credito")])
    service.close()


def test_cli_ingest_on_a_read_only_archive_says_so_in_one_line(
    shipped_config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config.yaml").write_bytes((ROOT / "config.yaml").read_bytes())
    for name in ("routing_rules", "templates", "certs"):
        (tmp_path / name).symlink_to(ROOT / name)
    monkeypatch.setenv("SPORTELLO_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("SPORTELLO_ARCHIVE_DIR", str(tmp_path / "ro-archive"))
    (tmp_path / "ro-archive").mkdir()
    eml = tmp_path / "m.eml"
    eml.write_bytes(citizen_mail(TO, 7))
    with read_only(tmp_path / "ro-archive"):
        result = CliRunner().invoke(
            app, ["ingest", str(eml), "--mailbox", "fe-credito", "--config", str(tmp_path / "config.yaml")]
        )
    assert result.exit_code == 75
    assert "Traceback" not in result.output
    assert "archivio non disponibile in scrittura" in result.output and "riprovare" in result.output


def test_imap_messages_stay_on_the_server_until_the_archive_is_writable(shipped_config: Config, dovecot) -> None:
    service = Service(shipped_config)
    archive = shipped_config.archive_dir
    archive.mkdir(parents=True, exist_ok=True)
    for n in (8, 9):
        dovecot.append(USER, citizen_mail(TO, n))
    stop = threading.Event()
    worker = _worker(shipped_config, dovecot.port, service.imap_handler(USER), stop)
    with read_only(archive):
        thread = _run(worker)
        try:
            assert wait_until(lambda: counts(service)[1] == [ALERT_KIND], 20), "nessuna segnalazione"
            assert len(dovecot.list_uids(USER, "INBOX")) == 2 and counts(service)[0] == 0
            assert thread.is_alive(), "il worker continua a riprovare"
        except BaseException:
            stop.set()
            thread.join(10)
            raise
    try:  # writable again: the next try records both and moves them
        assert wait_until(lambda: len(dovecot.list_uids(USER, "Elaborati")) == 2, 30)
        assert counts(service)[0] == 2
    finally:
        stop.set()
        thread.join(10)
        service.close()
