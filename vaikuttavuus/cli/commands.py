"""The list of project commands attached to the ``vaikuttavuus`` group.

Each area keeps its commands in its own module under ``vaikuttavuus.cli`` and adds them here.
"""

from __future__ import annotations

import click

from vaikuttavuus.cli.core import COMMANDS as CORE_COMMANDS
from vaikuttavuus.cli.instruments import COMMANDS as INSTRUMENT_COMMANDS

ALL: list[click.Command] = [*CORE_COMMANDS, *INSTRUMENT_COMMANDS]
