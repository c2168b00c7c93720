"""`sportello status`: the readiness of the running service, as /readyz says it, and which instance reads
each mailbox, for a person."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import typer

from daemon.cli.common import ConfigOpt, JsonOpt, get_config, out, print_json
from daemon.cli.instances import lease_rows, lease_table
from daemon.clock import utcnow
from daemon.config import Config
from daemon.ops.health import Check, Readiness, check_archive, check_database, check_outbox

__all__ = ["status"]

_NAMES = {"servizio": "servizio", "database": "database", "archive": "archivio", "outbox": "email in uscita"}


def _from_service(config: Config) -> dict[str, object] | str:
    """The running service's /readyz body, or why it could not be read."""
    address = config.metrics.address
    if address is None:
        return "metrics.listen non impostato in config.yaml: lo stato delle caselle è noto solo al servizio"
    host, port = address
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - a URL we built from the config
            body = response.read()
    except urllib.error.HTTPError as exc:  # 503 carries the same JSON body
        body = exc.read()
    except OSError as exc:
        return f"servizio non raggiungibile su {url}: {getattr(exc, 'reason', exc)}"
    data = json.loads(body)
    return data if isinstance(data, dict) else f"risposta inattesa da {url}"


def _local(config: Config, service: Check | None) -> dict[str, object]:
    """What can be checked from here without the service: database, archive, outbox (and the failed
    attempt to ask the service, when it should have answered)."""
    from storage.db import make_engine, make_session_factory

    engine = make_engine(config.database_url)
    try:
        factory = make_session_factory(engine)
        database = check_database(factory)
        checks: list[Check] = [*([service] if service else []), database, check_archive(config.archive_dir)]
        if database.ok:
            checks.append(check_outbox(factory, utcnow(), config.metrics.outbox_stuck_seconds))
    finally:
        engine.dispose()
    return Readiness(tuple(checks)).to_dict()


def _leases(config: Config) -> list[dict[str, object]] | None:
    """Which instance reads each mailbox; None when the database cannot say (its check says why)."""
    try:
        return lease_rows(config)
    except Exception:
        return None


def status(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Stato del servizio: database, archivio, caselle, email in uscita (come /readyz). Esce con 1 se non è pronto."""
    cfg = get_config(config)
    answer = _from_service(cfg)
    note = None
    if isinstance(answer, str):
        # With an endpoint configured, no answer means the service is down; without one, we cannot know.
        unreachable = Check("servizio", False, answer) if cfg.metrics.address else None
        note = None if unreachable else answer
        answer = _local(cfg, unreachable)
    leases = _leases(cfg)
    if as_json:
        print_json({**answer, **({"note": note} if note else {}), **({"leases": leases} if leases is not None else {})})
    else:
        ok = answer.get("status") == "ok"
        out.print("[bold green]Pronto[/]" if ok else "[bold red]Non pronto[/]", highlight=False)
        checks = answer.get("checks")
        for check in checks if isinstance(checks, list) else []:
            name = str(check.get("name", ""))
            label = _NAMES.get(name, name.replace("casella:", "casella "))
            mark = "ok " if check.get("ok") else "NO "
            out.print(f"  {mark} {label}: {check.get('detail', '')}", highlight=False, markup=False)
        if note:
            out.print(f"  ?   caselle: {note}", highlight=False, markup=False)
        if leases:
            out.print(lease_table(leases, out.width))
    if answer.get("status") != "ok":
        raise typer.Exit(1)
