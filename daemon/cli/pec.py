"""`sportello pec ...` commands."""

import typer

app = typer.Typer(help="pec", no_args_is_help=True)
