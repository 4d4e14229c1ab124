"""Administrator pages: user accounts and the audit log."""

from __future__ import annotations

from datetime import date

from flask import (
    Blueprint,
    abort,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from werkzeug.wrappers import Response
from wtforms import EmailField, PasswordField, SelectField, SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, Regexp

from vaikuttavuus.extensions import db
from vaikuttavuus.forms.auth import ConfirmForm
from vaikuttavuus.models import AuditEvent, Pilot, Role, User, new_session_nonce
from vaikuttavuus.security.access import allow
from vaikuttavuus.security.passwords import password_message
from vaikuttavuus.services import audit, audit_export
from vaikuttavuus.services.users import UserError, create_user
from vaikuttavuus.views.paging import page_number

bp = Blueprint("admin", __name__, url_prefix="/admin")

ROLE_LABELS = {
    Role.CLINICIAN: _l("Clinician"),
    Role.PILOT_LEAD: _l("Pilot lead"),
    Role.MANAGEMENT: _l("Management"),
    Role.ADMIN: _l("Administrator"),
}
AUDIT_PAGE = 100
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s.]+$"


class UserForm(FlaskForm):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=80)])
    display_name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    # A plain pattern: WTForms' Email() needs the email_validator package, which is not a
    # dependency (without it every address typed here ended in a server error).
    email = EmailField(
        _l("E-mail"),
        validators=[
            Optional(),
            Length(max=254),
            Regexp(EMAIL_PATTERN, message=_l("Enter a valid e-mail address.")),
        ],
    )
    role = SelectField(
        _l("Role"), choices=[SelectChoice(r.value, label) for r, label in ROLE_LABELS.items()]
    )
    pilots = SelectMultipleField(_l("Pilots"), choices=[], validate_choice=True)
    password = PasswordField(_l("Initial password"), validators=[DataRequired(), Length(min=12)])


@bp.route("/users", methods=["GET", "POST"])
@allow(Role.ADMIN)
def users() -> Response | str:
    form = UserForm()
    pilots = db.session.scalars(select(Pilot).order_by(Pilot.code)).all()
    form.pilots.choices = [SelectChoice(p.code, p.label("fi")) for p in pilots]
    if form.validate_on_submit():
        try:
            user = create_user(
                db.session,
                username=form.username.data or "",
                password=form.password.data or "",
                role=form.role.data or "",
                display_name=form.display_name.data,
                email=form.email.data or None,
                pilot_codes=tuple(form.pilots.data or ()),
            )
        except UserError as error:
            message = {
                "exists": _("That username is taken."),
                "role": _("Unknown role."),
                "pilot": _("Unknown pilot."),
            }.get(error.code) or password_message(error.code)
            field = form.username if error.code == "exists" else form.password
            field.errors = [*field.errors, message]
        else:
            audit.record(
                "create_user",
                object_type="user",
                object_id=user.id,
                details={"username": user.username, "role": user.role},
            )
            flash(_("User %(name)s created.", name=user.username), "info")
            return redirect(url_for("admin.users"))
    accounts = db.session.scalars(select(User).order_by(User.username)).all()
    return render_template(
        "admin/users.html",
        form=form,
        accounts=accounts,
        role_labels=ROLE_LABELS,
        confirm=ConfirmForm(),
    )


@bp.post("/users/<int:user_id>/active")
@allow(Role.ADMIN)
def toggle_active(user_id: int) -> Response:
    form = ConfirmForm()
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    if form.validate_on_submit() and user.id != current_user.id:
        user.active = not user.active
        user.session_nonce = new_session_nonce()
        audit.record(
            "update_user", object_type="user", object_id=user.id, details={"active": user.active}
        )
    return redirect(url_for("admin.users"))


@bp.get("/audit")
@allow(Role.ADMIN)
def audit_log() -> str:
    filters = audit_export.parse_filters(request.args)
    page = page_number()
    statement = filters.statement()
    total = db.session.scalar(select(func.count()).select_from(statement.subquery())) or 0
    events = db.session.scalars(
        statement.order_by(AuditEvent.id.desc()).limit(AUDIT_PAGE).offset((page - 1) * AUDIT_PAGE)
    ).all()
    # The trail names who viewed whom: reading it is itself recorded.
    audit.record(
        "view_audit_log",
        object_type="audit_log",
        details={**filters.as_details(), "page": page, "rows": len(events)},
    )
    return render_template(
        "admin/audit.html",
        events=events,
        actor=filters.actor,
        action=filters.action,
        person=filters.person,
        filters=filters,
        page=page,
        pages=max((total + AUDIT_PAGE - 1) // AUDIT_PAGE, 1),
        total=total,
    )


@bp.get("/audit.csv")
@allow(Role.ADMIN)
def audit_csv() -> Response:
    """The audit trail (with the page's filters) as CSV; the export itself is audited."""
    filters = audit_export.parse_filters(request.args)
    if filters.invalid:
        abort(400)
    audit.record("export_audit_log", object_type="audit_log", details=filters.as_details())
    filename = f"audit-log-{date.today().isoformat()}.csv"
    return Response(
        stream_with_context(audit_export.csv_lines(db.session, filters)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
