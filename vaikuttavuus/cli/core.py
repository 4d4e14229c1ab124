"""Set-up and operation commands: ``init``, ``demo-data``, ``serve``, ``users``, ``invitations``."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from vaikuttavuus.config import SAMPLE_INSTANCE_CONFIG
from vaikuttavuus.county_time import county_today


def instance_folder() -> Path:
    """The instance folder Flask would use for this package (``instance/`` in a checkout)."""
    from vaikuttavuus import instance_override

    app = Flask("vaikuttavuus", instance_relative_config=True, instance_path=instance_override())
    return Path(app.instance_path)


def ensure_instance_config(folder: Path) -> bool:
    """Create ``instance/config.py`` with fresh random keys (mode 0600) if it does not exist
    yet; a new instance folder is made 0700 (it holds the keys and the SQLite database)."""
    from vaikuttavuus.database import create_private_file, create_private_folder

    create_private_folder(folder)
    path = folder / "config.py"
    if not create_private_file(path):  # 0600 before the keys are written into it
        return False
    path.write_text(
        SAMPLE_INSTANCE_CONFIG.format(
            secret_key=secrets.token_urlsafe(48), pseudonym_key=secrets.token_urlsafe(48)
        ),
        encoding="utf-8",
    )
    path.chmod(0o600)
    return True


_SETTING_LINES = (r"^{key}\s*=.*$", r"^#\s*{key}\s*=.*$")  # the setting, else its example


def write_instance_setting(folder: Path, key: str, value: str) -> None:
    """Set ``key = "value"`` in ``instance/config.py``: replaces the setting (or its commented
    example) where it stands, else appends it."""
    import json
    import re

    path = folder / "config.py"
    text = path.read_text(encoding="utf-8")
    line = f"{key} = {json.dumps(value)}"
    for form in _SETTING_LINES:
        pattern = re.compile(form.format(key=re.escape(key)), re.MULTILINE)
        if pattern.search(text):
            text = pattern.sub(lambda _match: line, text, count=1)
            break
    else:
        text = text.rstrip("\n") + "\n" + line + "\n"
    path.write_text(text, encoding="utf-8")


def checked_base_url(value: str) -> str:
    """A public base URL as links use it: http(s), a host, no query; no trailing slash."""
    from urllib.parse import urlsplit

    parts = urlsplit(value.strip())
    if parts.scheme not in {"http", "https"} or not parts.hostname or parts.query or parts.fragment:
        raise click.BadParameter(
            "give the address patients open, e.g. https://vaikuttavuus.example.fi",
            param_hint="--public-base-url",
        )
    return value.strip().rstrip("/")


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def port_of_public_url(base_url: str) -> int | None:
    """The port of a loopback PUBLIC_BASE_URL (the demo's), which ``serve`` listens on by
    default; None for a public address (a reverse proxy forwards to the server's own port)."""
    from urllib.parse import urlsplit

    parts = urlsplit(base_url)
    if parts.hostname not in LOOPBACK_HOSTS:
        return None
    try:
        return parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None


def _fail(message: str) -> None:
    click.secho(message, fg="red", err=True)
    sys.exit(1)


@click.command("init")
@click.option(
    "--public-base-url",
    default=None,
    help="Write PUBLIC_BASE_URL (the address in patient links) into instance/config.py.",
)
def init_command(public_base_url: str | None) -> None:
    """Create or upgrade the database and load the definitions (safe to run again)."""
    from vaikuttavuus import create_app
    from vaikuttavuus.database import current_revision, upgrade_schema
    from vaikuttavuus.definitions import DefinitionError
    from vaikuttavuus.extensions import db
    from vaikuttavuus.services.definitions import sync_definitions

    folder = instance_folder()
    if ensure_instance_config(folder):
        click.echo(f"Created {folder / 'config.py'} with new secret keys (keep it safe).")
    if public_base_url is not None:
        url = checked_base_url(public_base_url)
        write_instance_setting(folder, "PUBLIC_BASE_URL", url)
        click.echo(f"Patient links use {url} (PUBLIC_BASE_URL in {folder / 'config.py'}).")
    app = create_app()
    with app.app_context():
        upgrade_schema()
        click.echo(f"Database schema at revision {current_revision()}.")
        try:
            report = sync_definitions(db.session)
        except DefinitionError as error:
            db.session.rollback()
            _fail(
                "Definitions are invalid; nothing was loaded:\n"
                + "\n".join(f"  {problem}" for problem in error.problems)
            )
            return
        db.session.commit()
        for line in report.lines():
            click.echo(line)
        click.echo("Definitions loaded.")


@click.command("demo-data")
@click.option(
    "--people",
    default=900,
    show_default=True,
    type=click.IntRange(10, 2_000_000),
    help="Total number of people (40 % BPH patients, 60 % older adults).",
)
@click.option("--seed", default=2026, show_default=True, type=int)
@click.option("--replace", is_flag=True, help="Remove the existing demo data first.")
@click.option(
    "--today",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Reference date of the data set (default: today).",
)
@click.option("--no-logins", is_flag=True, help="Do not create or print the demo users.")
@with_appcontext
def demo_data_command(people: int, seed: int, replace: bool, today: Any, no_logins: bool) -> None:
    """Generate the synthetic data set (both pilots), demo users and one patient link."""
    from vaikuttavuus.extensions import db
    from vaikuttavuus.services import demo_data
    from vaikuttavuus.services.definitions import load_all_definitions

    reference = today.date() if today is not None else county_today()
    if demo_data.demo_data_present(db.session) and not replace:
        click.echo("Demo data already present (use --replace to generate it again).")
    else:
        if replace:
            demo_data.remove_demo_data(db.session)
        from vaikuttavuus import synthetic

        instruments, pilots, measures = load_all_definitions()
        latest = {spec.id: spec for spec in instruments}
        click.echo(f"Generating {people} people (seed {seed}, reference date {reference})…")
        data = synthetic.generate(
            pilots={p.id: p for p in pilots},
            instruments=latest,
            measures=measures,
            people=people,
            seed=seed,
            today=reference,
            pseudonym_key=str(current_app.config["PSEUDONYM_KEY"]).encode(),
        )
        summary = demo_data.load_demo_data(db.session, data)
        db.session.commit()
        for table, count in summary.counts.items():
            click.echo(f"  {table}: {count}")
    if not no_logins:
        _print_logins(create_demo_users())
        link = demo_patient_link()
        db.session.commit()
        if link:
            click.echo(f"\nA patient link (BPH, open questionnaire):\n  {link}")
        else:
            click.echo("\nNo open questionnaire found for a patient link.")


DEMO_USERS = (
    ("kliinikko", "clinician", "Demo Kliinikko", ("bph", "older-adults")),
    ("pilotti", "pilot_lead", "Demo Pilottivastaava", ("bph", "older-adults")),
    ("johto", "management", "Demo Johto", ()),
    ("yllapito", "admin", "Demo Ylläpitäjä", ()),
)


def create_demo_users() -> list[tuple[str, str, str]]:
    """Create the demo users, or give them new random passwords; returns the logins."""
    from sqlalchemy import select

    from vaikuttavuus.extensions import db
    from vaikuttavuus.models import User
    from vaikuttavuus.services.users import create_user, set_password

    logins = []
    for username, role, name, pilots in DEMO_USERS:
        password = "Demo-" + secrets.token_urlsafe(12)  # 96 random bits: passes the policy
        user = db.session.scalar(select(User).where(User.username == username))
        if user is None:
            create_user(
                db.session,
                username=username,
                password=password,
                role=role,
                display_name=name,
                pilot_codes=pilots,
            )
        else:
            set_password(user, password)
            user.active = True
        logins.append((role, username, password))
    db.session.commit()
    return logins


def _print_logins(logins: list[tuple[str, str, str]]) -> None:
    click.echo("\nDemo logins (new passwords on every run):")
    for role, username, password in logins:
        click.echo(f"  {role:<11} {username:<10} {password}")


def demo_patient_link() -> str | None:
    """Issue a fresh link for an open, unanswered BPH questionnaire and return it."""
    from sqlalchemy import select

    from vaikuttavuus.extensions import db
    from vaikuttavuus.models import Enrolment, Invitation, Person, Pilot, Response
    from vaikuttavuus.services.patient_flow import issue_token

    today = county_today()
    answered = select(Response.enrolment_id).where(
        Response.time_point_id == Invitation.time_point_id
    )
    invitation = db.session.scalar(
        select(Invitation)
        .join(Enrolment, Invitation.enrolment_id == Enrolment.id)
        .join(Pilot, Enrolment.pilot_id == Pilot.id)
        .join(Person, Enrolment.person_id == Person.id)
        .where(
            Pilot.code == "bph",
            Invitation.status == "open",
            Invitation.opens_on <= today,
            Invitation.closes_on >= today,
            Person.opted_out_at.is_(None),
            Enrolment.status == "active",
            ~Invitation.enrolment_id.in_(answered),
        )
        .order_by(Invitation.closes_on.desc(), Invitation.id)
        .limit(1)
    )
    if invitation is None:
        return None
    token = issue_token(db.session, invitation)
    return patient_url(token)


def patient_url(token: str) -> str:
    base = str(current_app.config["PUBLIC_BASE_URL"]).rstrip("/")
    return f"{base}/r/{token}"


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--port",
    default=None,
    type=int,
    envvar="PORT",
    help="Port (default: the port of a local PUBLIC_BASE_URL, else 5000).",
)
@click.option("--workers", default=None, type=int, help="Worker processes (config SERVE_WORKERS).")
@click.option(
    "--threads", default=None, type=int, help="Threads per worker (config SERVE_THREADS)."
)
def serve_command(host: str, port: int | None, workers: int | None, threads: int | None) -> None:
    """Serve the app with gunicorn (a production WSGI server)."""
    from vaikuttavuus import create_app
    from vaikuttavuus.server import run_gunicorn

    app = create_app()  # fail early, in the foreground, on a configuration error
    base_url = str(app.config["PUBLIC_BASE_URL"])
    link_port = port_of_public_url(base_url)
    if port is None:
        port = link_port or 5000
    elif link_port is not None and link_port != port:
        click.secho(
            f"Warning: patient links point to {base_url} (PUBLIC_BASE_URL) but the server "
            f"listens on port {port}. Set it with `vaikuttavuus init --public-base-url URL`.",
            fg="yellow",
            err=True,
        )
    processes = workers or int(app.config["SERVE_WORKERS"])
    store = str(app.config.get("RATELIMIT_STORAGE_URI") or "")
    if processes > 1 and store.startswith("memory:"):
        raise click.UsageError(
            f"RATELIMIT_STORAGE_URI = {store!r} keeps the throttling counters in each worker "
            f"process, so with {processes} workers every limit would be {processes} times "
            "what it says. Use the default 'database://' (or a redis:// URI), or --workers 1."
        )
    run_gunicorn(
        host=host,
        port=port,
        workers=processes,
        threads=threads or int(app.config["SERVE_THREADS"]),
    )


@click.group("users")
def users_group() -> None:
    """Manage staff accounts."""


@users_group.command("create")
@click.argument("username")
@click.option(
    "--role", required=True, type=click.Choice(["clinician", "pilot_lead", "management", "admin"])
)
@click.option("--name", "display_name", default=None)
@click.option("--email", default=None)
@click.option("--pilot", "pilots", multiple=True, help="Pilot code; repeat for several.")
@click.password_option(prompt="Password", confirmation_prompt=True)
@with_appcontext
def users_create(
    username: str,
    role: str,
    display_name: str | None,
    email: str | None,
    pilots: tuple[str, ...],
    password: str,
) -> None:
    """Create a user (the password is asked, or read from --password)."""
    from vaikuttavuus.extensions import db
    from vaikuttavuus.services import audit
    from vaikuttavuus.services.users import UserError, create_user

    try:
        user = create_user(
            db.session,
            username=username,
            password=password,
            role=role,
            display_name=display_name,
            email=email,
            pilot_codes=pilots,
        )
    except UserError as error:
        _fail(str(error))
        return
    audit.record(
        "create_user",
        object_type="user",
        object_id=user.id,
        actor="cli",
        details={"username": username, "role": role},
    )
    db.session.commit()
    click.echo(f"Created {role} '{username}'.")


@users_group.command("list")
@with_appcontext
def users_list() -> None:
    """List users with their roles and pilots."""
    from sqlalchemy import select

    from vaikuttavuus.extensions import db
    from vaikuttavuus.models import User

    for user in db.session.scalars(select(User).order_by(User.username)):
        pilots = ",".join(sorted(user.pilot_codes)) or "-"
        state = "active" if user.active else "inactive"
        click.echo(f"{user.username:<20} {user.role:<11} {pilots:<20} {state}")


@users_group.command("set-password")
@click.argument("username")
@click.password_option(prompt="New password", confirmation_prompt=True)
@with_appcontext
def users_set_password(username: str, password: str) -> None:
    """Set a user's password (logs the user out everywhere)."""
    from sqlalchemy import select

    from vaikuttavuus.extensions import db
    from vaikuttavuus.models import User
    from vaikuttavuus.services import audit
    from vaikuttavuus.services.users import UserError, set_password

    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        _fail(f"No user '{username}'.")
        return
    try:
        set_password(user, password)
    except UserError as error:
        _fail(str(error))
        return
    audit.record("password_changed", object_type="user", object_id=user.id, actor="cli")
    db.session.commit()
    click.echo(f"Password of '{username}' changed.")


@click.group("invitations")
def invitations_group() -> None:
    """Questionnaire invitations and personal links."""


@invitations_group.command("link")
@click.argument("pseudonym")
@click.option("--time-point", default=None, help="Time point id (default: the open one).")
@with_appcontext
def invitations_link(pseudonym: str, time_point: str | None) -> None:
    """Issue a new personal link for a person's open invitation and print it."""
    from sqlalchemy import select

    from vaikuttavuus.extensions import db
    from vaikuttavuus.models import Enrolment, Invitation, Person, TimePoint
    from vaikuttavuus.services import audit
    from vaikuttavuus.services.patient_flow import issue_token

    statement = (
        select(Invitation)
        .join(Enrolment, Invitation.enrolment_id == Enrolment.id)
        .join(Person, Enrolment.person_id == Person.id)
        .join(TimePoint, Invitation.time_point_id == TimePoint.id)
        .where(Person.pseudonym == pseudonym)
    )
    if time_point:
        statement = statement.where(TimePoint.code == time_point)
    else:
        statement = statement.where(Invitation.status.in_(("open", "scheduled")))
    invitation = db.session.scalars(statement.order_by(TimePoint.ordinal)).first()
    if invitation is None:
        _fail(f"No open invitation for '{pseudonym}'.")
        return
    token = issue_token(db.session, invitation)
    audit.record(
        "issue_link",
        object_type="invitation",
        object_id=invitation.id,
        person_id=invitation.enrolment.person_id,
        actor="cli",
    )
    db.session.commit()
    click.echo(patient_url(token))


@click.group("db")
def db_group() -> None:
    """Database schema migrations (Alembic)."""


@db_group.command("upgrade")
@click.argument("revision", default="head")
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Upgrade the schema to REVISION (default: the newest)."""
    from vaikuttavuus.database import current_revision, upgrade_schema

    upgrade_schema(revision)
    click.echo(f"Schema at revision {current_revision()}.")


@db_group.command("downgrade")
@click.argument("revision")
@with_appcontext
def db_downgrade(revision: str) -> None:
    """Downgrade the schema to REVISION (e.g. base)."""
    from alembic import command

    from vaikuttavuus.database import alembic_config, current_revision
    from vaikuttavuus.extensions import db

    with db.engine.begin() as connection:
        command.downgrade(alembic_config(connection), revision)
    click.echo(f"Schema at revision {current_revision()}.")


@db_group.command("current")
@with_appcontext
def db_current() -> None:
    """Print the schema revision of the database."""
    from vaikuttavuus.database import current_revision

    click.echo(current_revision() or "(empty database)")


@db_group.command("revision")
@click.option("-m", "--message", required=True, help="What the migration does.")
@click.option("--rev-id", default=None, help="Revision id (default: next number).")
@with_appcontext
def db_revision(message: str, rev_id: str | None) -> None:
    """Write a new migration by comparing the models with the database (autogenerate)."""
    from alembic import command
    from alembic.script import ScriptDirectory

    from vaikuttavuus.database import alembic_config

    config = alembic_config()
    config.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s")
    if rev_id is None:
        heads = ScriptDirectory.from_config(config).get_heads()
        rev_id = f"{max((int(h) for h in heads if h.isdigit()), default=0) + 1:04d}"
    command.revision(config, message=message, autogenerate=True, rev_id=rev_id)


COMMANDS: list[click.Command] = [
    init_command,
    demo_data_command,
    serve_command,
    users_group,
    invitations_group,
    db_group,
]
