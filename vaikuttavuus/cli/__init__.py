"""The ``vaikuttavuus`` command: a Flask CLI group (so ``routes`` and ``shell`` work) plus the
project's own commands, one module per area."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import FlaskGroup


def _create_app() -> Flask:
    from vaikuttavuus import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_version_option=False)
def main() -> None:
    """Vaikuttavuus: PROM/PREM collection, data linkage and cost-effectiveness reporting."""


def _register() -> None:
    """Attach each area's commands to the group (imported here to keep start-up light)."""
    from vaikuttavuus.cli import commands

    for command in commands.ALL:
        main.add_command(command)


_register()
