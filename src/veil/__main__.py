"""`python -m veil` runs the `veil` command."""

from veil.cli.main import app

app(prog_name="veil")
