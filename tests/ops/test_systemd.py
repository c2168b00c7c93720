"""`sportello run` under systemd: the unit passes `systemd-analyze verify`; the daemon says READY, pings the
watchdog, reloads the admins' files on SIGHUP (RELOADING, then READY again) and says STOPPING on SIGTERM."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from daemon.config import Config
from tests.support.files import rewrite
from tests.support.paths import ROOT
from tests.support.stack import stack_config, write_config

UNIT = ROOT / "deploy" / "sportello.service"
INSTALLED_BINARY = "/opt/sportello/.venv/bin/sportello"


def test_the_unit_file_verifies_clean(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        if os.environ.get("CI") == "true":
            pytest.fail("systemd-analyze mancante: tests/run-all.sh installa il pacchetto systemd")
        pytest.skip("systemd-analyze non disponibile (pacchetto systemd)")
    text = UNIT.read_text(encoding="utf-8")
    assert INSTALLED_BINARY in text
    # verify checks that ExecStart exists: point it at this checkout's console script.
    unit = tmp_path / "sportello.service"
    unit.write_text(text.replace(INSTALLED_BINARY, str(Path(sys.executable).parent / "sportello")), encoding="utf-8")
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr
    for line in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "User=sportello", "ProtectSystem=strict"):
        assert line in text
    for line in ("NoNewPrivileges=yes", "CapabilityBoundingSet=\n", "ReadWritePaths=/var/lib/sportello"):
        assert line in text
    assert "ExecReload=/bin/kill -HUP $MAINPID" in text


def _receive(sock: socket.socket, wanted: str, timeout: float = 30.0) -> list[str]:
    """Datagrams until one has the line `wanted`; all the lines seen."""
    seen: list[str] = []
    sock.settimeout(timeout)
    for _ in range(1000):
        try:
            lines = sock.recv(4096).decode().splitlines()
        except TimeoutError:
            pytest.fail(f"{wanted} non ricevuto; ricevuto: {seen}")
        seen += lines
        if wanted in lines:
            return seen
    pytest.fail(f"{wanted} non ricevuto")


@pytest.mark.slow
def test_run_notifies_systemd_and_reloads_templates_on_sighup(shipped_config: Config, tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    shutil.copytree(ROOT / "templates", etc / "templates")  # edited below: not the project's own
    cfg = stack_config(shipped_config, tmp_path / "data", imap_port=1, smtp_port=1, mailboxes=[])
    config_path = write_config(cfg, etc)
    notify = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify))
    log = tmp_path / "daemon.log"
    env = {**os.environ, "NOTIFY_SOCKET": str(notify), "WATCHDOG_USEC": "1000000"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "daemon.cli.main", "--config", str(config_path), "run"],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        seen = _receive(sock, "READY=1")
        assert any(line.startswith("STATUS=in servizio") for line in seen)
        _receive(sock, "WATCHDOG=1", timeout=5)

        template = etc / "templates" / "conferma_ricezione.j2"
        text = template.read_text(encoding="utf-8")
        rewrite(template, text.replace("{% block oggetto %}Conferma di ricezione:", "{% block oggetto %}Ricevuto:"))
        proc.send_signal(signal.SIGHUP)
        _receive(sock, "RELOADING=1")
        _receive(sock, "READY=1")
        assert "modello conferma_ricezione.j2 ricaricato" in log.read_text()

        proc.send_signal(signal.SIGTERM)
        _receive(sock, "STOPPING=1")
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        sock.close()
    assert "Traceback" not in log.read_text()
