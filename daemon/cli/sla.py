"""`sportello sla ...` commands."""

import typer

app = typer.Typer(help="sla", no_args_is_help=True)
