"""The ``vaikuttavuus`` command: a Flask CLI group (so ``routes`` and ``shell`` work) plus the
project's own commands, one module per area.

``--help`` and ``init`` work before the instance is configured (no ``SECRET_KEY`` or
``PSEUDONYM_KEY`` yet): the help then lists the project's commands without the app's own
(e.g. ``limiter``), and any command that needs the app stops with the configuration message
(``Error: SECRET_KEY, PSEUDONYM_KEY not set: run `vaikuttavuus init` …``, exit status 1)
instead of a traceback.
"""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import FlaskGroup, ScriptInfo


def _create_app() -> Flask:
    from vaikuttavuus import create_app

    return create_app()


class VaikuttavuusGroup(FlaskGroup):
    """Flask's group, made to work (and explain itself) without a configured instance."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from vaikuttavuus import ConfigurationError

        try:
            ctx.ensure_object(ScriptInfo).load_app()
        except ConfigurationError:
            # Not configured yet (``init`` has not run): list the built-in and project
            # commands quietly; the app's own commands need the app.
            self._load_plugin_commands()
            return sorted(click.Group.list_commands(self, ctx))
        return super().list_commands(ctx)

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
