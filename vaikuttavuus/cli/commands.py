"""The list of project commands attached to the ``vaikuttavuus`` group.

Each area keeps its commands in its own module under ``vaikuttavuus.cli`` and adds them here.
"""

from __future__ import annotations

import click

import vaikuttavuus.cli.messaging  # noqa: F401  (adds send, letters, status to `invitations`)
from vaikuttavuus.cli.backup import COMMANDS as BACKUP_COMMANDS
from vaikuttavuus.cli.cea import COMMANDS as CEA_COMMANDS
from vaikuttavuus.cli.core import COMMANDS as CORE_COMMANDS
from vaikuttavuus.cli.costing import COMMANDS as COSTING_COMMANDS
from vaikuttavuus.cli.exports import COMMANDS as EXPORT_COMMANDS
from vaikuttavuus.cli.imports import COMMANDS as IMPORT_COMMANDS
from vaikuttavuus.cli.instruments import COMMANDS as INSTRUMENT_COMMANDS
from vaikuttavuus.cli.reports import COMMANDS as REPORT_COMMANDS
from vaikuttavuus.cli.worker import COMMANDS as WORKER_COMMANDS

ALL: list[click.Command] = [*CORE_COMMANDS, *INSTRUMENT_COMMANDS, *CEA_COMMANDS, *IMPORT_COMMANDS]
ALL += BACKUP_COMMANDS
ALL += EXPORT_COMMANDS
ALL += REPORT_COMMANDS
ALL += COSTING_COMMANDS
ALL += WORKER_COMMANDS
