"""Sample local configuration. `vaikuttavuus init` writes instance/config.py with fresh keys;
copy settings from here as needed. Never commit instance/config.py.
"""

SECRET_KEY = "generate-with: python -c 'import secrets; print(secrets.token_urlsafe(48))'"
PSEUDONYM_KEY = "generate-once-and-keep-with-the-backups"

# PostgreSQL in production (SQLite is the embedded default):
# DATABASE_URL = "postgresql+psycopg://vaikuttavuus:password@127.0.0.1:5432/vaikuttavuus"

# PRODUCTION = True                                 # __Host- Secure cookies, HTTPS redirect, HSTS
# PUBLIC_BASE_URL = "https://vaikuttavuus.example.fi"
# MIN_CELL_SIZE = 5
# Throttling counters, shared by every worker and server: the app's database by default
# ("database://"), or Redis to take that write load off the database:
# RATELIMIT_STORAGE_URI = "redis://127.0.0.1:6379"

# MAIL_SERVER = "smtp.example.fi"
# MAIL_PORT = 587
# MAIL_USERNAME = "vaikuttavuus"
# MAIL_PASSWORD = "..."
# MAIL_SENDER = "kyselyt@example.fi"
# SMS_SENDER = "mycounty.sms:GatewaySender"
