"""`sportello rules ...` commands."""

import typer

app = typer.Typer(help="rules", no_args_is_help=True)
