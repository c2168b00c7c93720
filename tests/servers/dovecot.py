"""A real Dovecot IMAP server for tests: free loopback port, own config, own mail dirs, stopped by its own pid.

Registered as a pytest plugin by tests/conftest.py, so the ``dovecot`` fixture is available everywhere.
Also usable outside pytest (see bench/throughput.py) through ``start_dovecot``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

import psutil
import pytest
from imapclient import IMAPClient

from daemon.config import Config

DOVECOT_BIN = Path("/usr/sbin/dovecot")
START_TIMEOUT = 15.0  # seconds to wait for the "* OK" banner
STOP_TIMEOUT = 10.0  # seconds to wait after SIGTERM before SIGKILL


def _free_port(host: str) -> int:
    """A port the kernel considers free right now on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _mail_identity() -> tuple[int, int]:
    """uid/gid the mail processes run as: Dovecot never accesses mail as root."""
    if os.getuid() != 0:
        return os.getuid(), os.getgid()
    # Running as root (containers, CI): borrow the package's internal user, which always exists.
    pw = pwd.getpwnam("dovecot")
    return pw.pw_uid, pw.pw_gid


def _children(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"({path} not readable)"
    return "\n".join(text.splitlines()[-lines:])


class DovecotServer:
    """One Dovecot instance serving plain IMAP on 127.0.0.1 for a fixed set of users."""

    host: str = "127.0.0.1"

    def __init__(
        self, directory: Path, users: Iterable[str], password: str = "demo", *, oauth2_introspection: str | None = None
    ) -> None:
        self.directory = Path(directory).resolve()
        # With a URL, XOAUTH2/OAUTHBEARER logins are accepted for tokens this endpoint says are active
        # (RFC 7662 introspection, POST), besides the passwords.
        self.oauth2_introspection = oauth2_introspection
        self.users: list[str] = list(dict.fromkeys(users))
        self.password = password
        self.port: int = 0
        self.conf_path = self.directory / "dovecot.conf"
        self.log_path = self.directory / "dovecot.log"
        self.stdout_path = self.directory / "dovecot.stdout"
        # A symlink to the real mail root inside the runtime dir (see _prepare_runtime_dir).
        self.mail_link = self.directory / "mail"
        self._proc: subprocess.Popen[bytes] | None = None
        self._stdout: IO[bytes] | None = None
        self._runtime: Path | None = None
        self._finalizer: weakref.finalize | None = None
        self._mail_uid, self._mail_gid = _mail_identity()

    @property
    def mail_root(self) -> Path:
        """Where the users' homes (and their Maildirs) really live; valid after start()."""
        if self._runtime is None:
            raise RuntimeError("dovecot has not been started")
        return self._runtime / "mail"

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Write the config and run Dovecot in the foreground; return once the IMAP banner is served."""
        if self._proc is not None and self._proc.poll() is None:
            raise RuntimeError("dovecot is already running")
        self.directory.mkdir(parents=True, exist_ok=True)
        self._prepare_runtime_dir()
        if not self.port:
            self.port = _free_port(self.host)
        self._write_users()
        self._write_config()

        self._stdout = open(self.stdout_path, "ab")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(
            [str(DOVECOT_BIN), "-F", "-c", str(self.conf_path)],
            stdin=subprocess.DEVNULL,
            stdout=self._stdout,
            stderr=subprocess.STDOUT,
        )
        try:
            self._wait_for_banner()
        except RuntimeError:
            self.stop()
            raise

    def stop(self) -> None:
        """SIGTERM Dovecot by its pid (SIGKILL after 10 s). Idempotent; runtime dir and mail are kept."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            # The master's children by their pids: an IMAP session process can outlive its master and
            # keep serving a connected client, which is not what a test stopping the server means.
            children = _children(proc.pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait(STOP_TIMEOUT)
            for child in children:
                with contextlib.suppress(psutil.Error):
                    child.kill()
        if self._stdout is not None:
            self._stdout.close()
            self._stdout = None

    @property
    def pid(self) -> int | None:
        """The master process, while it runs."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def restart(self) -> None:
        """Stop and start again on the same port with the same mail dirs: the mail survives."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Final stop: terminate Dovecot and delete the runtime dir with the mail. Idempotent."""
        self.stop()
        if self._finalizer is not None:
            self._finalizer()  # removes the runtime dir (also run at interpreter exit if never called)
            self._finalizer = None
        self._runtime = None

    def _prepare_runtime_dir(self) -> None:
        """Create the world-traversable runtime dir once; it is kept across stop()/start().

        pytest's tmp dirs are 0700 and Dovecot's unprivileged processes (login as dovenull, auth and
        stats as dovecot, mail as a non-root uid: Dovecot refuses mail access as root) could not
        traverse them. So base_dir, state_dir, the passwd-file and the mail live in a 0755 dir from
        mkdtemp, and ``directory/mail`` is a symlink to the mail root for inspection from tests.
        """
        if self._runtime is not None:
            return
        runtime = Path(tempfile.mkdtemp(prefix="dovecot-"))
        runtime.chmod(0o755)
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(runtime), ignore_errors=True)
        for sub in ("run", "state", "mail"):
            (runtime / sub).mkdir()
            (runtime / sub).chmod(0o755)
        for user in self.users:
            (runtime / "mail" / user).mkdir()
        for path in [runtime / "mail", *((runtime / "mail" / u) for u in self.users)]:
            os.chown(path, self._mail_uid, self._mail_gid)
        self._runtime = runtime
        if self.mail_link.is_symlink():
            self.mail_link.unlink()
        if not self.mail_link.exists():
            self.mail_link.symlink_to(runtime / "mail", target_is_directory=True)

    def _wait_for_banner(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        last_error = "no attempt"
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                last_error = f"dovecot exited with code {self._proc.returncode}"
                break
            try:
                with socket.create_connection((self.host, self.port), timeout=2) as s:
                    s.settimeout(2)
                    banner = s.recv(1024)
                if banner.startswith(b"* OK"):
                    return
                last_error = f"unexpected banner {banner[:80]!r}"
            except OSError as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            time.sleep(0.1)
        raise RuntimeError(
            f"dovecot did not come up on {self.host}:{self.port} ({last_error})\n"
            f"--- {self.log_path} ---\n{_tail(self.log_path)}\n"
            f"--- {self.stdout_path} ---\n{_tail(self.stdout_path)}"
        )

    # ------------------------------------------------------------------ configuration

    def _write_users(self) -> None:
        # passwd-file rejects UID/GID 0 per user, so they stay empty here and come from mail_uid/mail_gid.
        lines = [f"{u}:{{PLAIN}}{self.password}::::{self.mail_root / u}::" for u in self.users]
        assert self._runtime is not None
        # The passwd-file is read by the auth process, which runs as the internal user.
        users_file = self._runtime / "users"
        users_file.write_text("\n".join(lines) + "\n")
        users_file.chmod(0o644)

    def _write_config(self) -> None:
        assert self._runtime is not None
        base = self._runtime
        uid, gid = self._mail_uid, self._mail_gid
        mechanisms, oauth2_passdb = "plain login", ""
        if self.oauth2_introspection:
            mechanisms += " xoauth2 oauthbearer"
            oauth2_conf = base / "oauth2.conf.ext"
            oauth2_conf.write_text(
                "introspection_mode = post\n"
                f"introspection_url = {self.oauth2_introspection}\n"
                "force_introspection = yes\n"
                "username_attribute = username\n"
                "active_attribute = active\n"
                "active_value = true\n"
            )
            oauth2_conf.chmod(0o644)
            oauth2_passdb = (
                f"passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = {oauth2_conf}\n}}\n"
            )
        conf = f"""\
# Generated by tests/servers/dovecot.py
protocols = imap
listen = {self.host}
base_dir = {base}/run
state_dir = {base}/state
log_path = {self.log_path}
info_log_path = {self.log_path}
default_internal_user = dovecot
default_login_user = dovenull

ssl = no
disable_plaintext_auth = no
auth_mechanisms = {mechanisms}

passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = {base}/users
}}
{oauth2_passdb}userdb {{
  driver = passwd-file
  args = {base}/users
}}

mail_location = maildir:~/Maildir
mail_uid = {uid}
mail_gid = {gid}
first_valid_uid = 0
first_valid_gid = 0
mail_max_userip_connections = 100
imap_idle_notify_interval = 1 secs

namespace inbox {{
  inbox = yes
  mailbox Elaborati {{
    auto = create
  }}
}}

service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = {self.host}
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service stats {{
  unix_listener stats-reader {{
    user = dovecot
  }}
  unix_listener stats-writer {{
    user = dovecot
  }}
}}
"""
        self.conf_path.write_text(conf)

    # ------------------------------------------------------------------ IMAP helpers

    @contextlib.contextmanager
    def client(self, user: str) -> Iterator[IMAPClient]:
        """A logged-in IMAPClient for ``user``; logged out on exit."""
        c = IMAPClient(self.host, port=self.port, ssl=False, timeout=30)
        try:
            c.login(user, self.password)
            yield c
        finally:
            with contextlib.suppress(Exception):
                c.logout()

    def append(self, user: str, raw: bytes, folder: str = "INBOX") -> None:
        self.append_many(user, [raw], folder)

    def append_many(self, user: str, raws: Iterable[bytes], folder: str = "INBOX") -> None:
        """Append every message over one connection (MULTIAPPEND, 200 a command: one round trip and
        one write of the folder's index each), creating ``folder`` if needed."""
        with self.client(user) as c:
            if not c.folder_exists(folder):
                c.create_folder(folder)
            pending = list(raws)
            for start in range(0, len(pending), 200):
                c.multiappend(folder, pending[start : start + 200])

    def list_uids(self, user: str, folder: str) -> list[int]:
        """UIDs in ``folder`` (read-only select), [] if the folder does not exist."""
        with self.client(user) as c:
            if not c.folder_exists(folder):
                return []
            c.select_folder(folder, readonly=True)
            return sorted(int(u) for u in c.search("ALL"))

    def fetch_all(self, user: str, folder: str) -> list[bytes]:
        """The raw bytes (BODY.PEEK[]) of every message in ``folder``, in UID order."""
        with self.client(user) as c:
            if not c.folder_exists(folder):
                return []
            c.select_folder(folder, readonly=True)
            uids = c.search("ALL")
            if not uids:
                return []
            data = c.fetch(uids, ["BODY.PEEK[]"])
            return [bytes(data[uid][b"BODY[]"]) for uid in sorted(data)]


def start_dovecot(
    directory: Path, users: Iterable[str], password: str = "demo", *, oauth2_introspection: str | None = None
) -> DovecotServer:
    """Construct a DovecotServer and start it."""
    server = DovecotServer(directory, users, password, oauth2_introspection=oauth2_introspection)
    server.start()
    return server


@pytest.fixture
def dovecot(tmp_path: Path, shipped_config: Config) -> Iterator[DovecotServer]:
    """A running Dovecot with one account (password "demo") per IMAP mailbox of the shipped config."""
    if not DOVECOT_BIN.exists():
        msg = "dovecot-imapd non installato (/usr/sbin/dovecot mancante)"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg + ": apt-get install dovecot-imapd")
    users = [m.imap.username for m in shipped_config.mailboxes if m.imap]
    server = start_dovecot(tmp_path / "dovecot", users, password="demo")
    try:
        yield server
    finally:
        server.close()
