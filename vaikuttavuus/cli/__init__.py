"""The ``vaikuttavuus`` command: a Flask CLI group (so ``routes`` and ``shell`` work) plus the
project's own commands, one module per area.

``--help`` and ``init`` work before the instance is configured (no ``SECRET_KEY`` or
``PSEUDONYM_KEY`` yet), and ``--help`` starts fast: it neither creates the app nor imports
pandas, SQLAlchemy or the statistics, plotting and PDF libraries (each command imports what
it needs when it runs; ``tests/unit/test_start_up.py``). Any command that needs the app
stops with the configuration message (``Error: SECRET_KEY, PSEUDONYM_KEY not set: run
`vaikuttavuus init` …``, exit status 1) instead of a traceback.
"""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import FlaskGroup


def _create_app() -> Flask:
    from vaikuttavuus import create_app

    return create_app()


class VaikuttavuusGroup(FlaskGroup):
    """Flask's group, made to work (and explain itself) without a configured instance."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """The built-in and project commands, without creating the app: the app registers
        no commands of its own, and creating it imports the pages and their libraries, which
        would make ``vaikuttavuus --help`` take seconds instead of a fraction of one."""
        self._load_plugin_commands()
        return sorted(click.Group.list_commands(self, ctx))

    def invoke(self, ctx: click.Context) -> object:
        from vaikuttavuus import ConfigurationError

        try:
            return super().invoke(ctx)
        except ConfigurationError as error:
            raise click.ClickException(str(error)) from None


@click.group(cls=VaikuttavuusGroup, create_app=_create_app, add_version_option=False)
def main() -> None:
    """Vaikuttavuus: PROM/PREM collection, data linkage and cost-effectiveness reporting."""


def _register() -> None:
    """Attach each area's commands to the group (imported here to keep start-up light)."""
    from vaikuttavuus.cli import commands

    for command in commands.ALL:
        main.add_command(command)


_register()
