"""The list of project commands attached to the ``vaikuttavuus`` group.

Each area keeps its commands in its own module under ``vaikuttavuus.cli`` and adds them here.
"""

from __future__ import annotations

import click

ALL: list[click.Command] = []
