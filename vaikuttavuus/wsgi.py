"""WSGI entry point: ``gunicorn vaikuttavuus.wsgi:app``."""

from vaikuttavuus import create_app

app = create_app()
