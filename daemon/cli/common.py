"""What every `sportello` command shares: the consoles, the --config and --json options, loading the
configuration and the service with Italian error messages and exit code 2, JSON output."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console

from daemon.config import Config, ConfigError, load_config

if TYPE_CHECKING:
    from daemon.service import Service  # imported when needed: the CLI starts fast

__all__ = [
    "ConfigOpt",
    "JsonOpt",
    "err",
    "fail",
    "get_config",
    "get_service",
    "out",
    "print_json",
    "show_config_problems",
]

out = Console()
err = Console(stderr=True)

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="File di configurazione (predefinito ./config.yaml o $SPORTELLO_CONFIG)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Uscita in JSON.")]


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]errore:[/] {message}", highlight=False)
    raise typer.Exit(code)


def show_config_problems(exc: ConfigError, code: int = 2) -> None:
    count = len(exc.problems)
    word = "problema" if count == 1 else "problemi"
    err.print(f"[bold red]Configurazione non valida[/] ({count} {word}):", highlight=False)
    for problem in exc.problems:
        err.print(f"  - {problem}", highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(code) from None


def get_config(path: Path | None) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        show_config_problems(exc)
        raise


def get_service(path: Path | None) -> Service:
    from daemon.service import Service

    config = get_config(path)
    try:
        return Service(config)
    except Exception as exc:
        problems = getattr(exc, "problems", None)
        if problems:
            # Rules, vocabularies, SLA policies, the calendar section...: each problem names its file.
            err.print("[bold red]Avvio non riuscito, correggere i file indicati:[/]", highlight=False)
            for problem in problems:
                err.print(f"  - {problem}", highlight=False, markup=False, soft_wrap=True)
            raise typer.Exit(2) from None
        fail(f"avvio non riuscito: {exc}")


def print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
