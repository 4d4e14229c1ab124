"""``python -m vaikuttavuus.cli`` runs the ``vaikuttavuus`` command."""

from vaikuttavuus.cli import main

main()
