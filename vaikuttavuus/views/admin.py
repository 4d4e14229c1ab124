"""Administrator pages: user accounts and the audit log."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    flash,
    make_response,
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

# types-WTForms 3.2 lacks SelectChoice (WTForms 3.3 has it)
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]
from wtforms.validators import DataRequired, Length, Optional, Regexp
from wtforms.widgets import CheckboxInput, ListWidget

from vaikuttavuus.county_time import county_today
from vaikuttavuus.extensions import db
from vaikuttavuus.forms.auth import ConfirmForm
from vaikuttavuus.i18n import current_language
from vaikuttavuus.models import AuditEvent, Person, Pilot, Role, User, new_session_nonce
from vaikuttavuus.security.access import allow
from vaikuttavuus.security.passwords import password_message
from vaikuttavuus.services import audit, audit_export
from vaikuttavuus.services.audit_labels import ACTION_LABELS, action_label, object_label
from vaikuttavuus.services.users import (
    UserError,
    create_user,
    lacks_pilots,
    reset_password,
    update_user,
)
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


class PilotChoices(SelectMultipleField):
    """Pilots as a list of check boxes (clearer than a multiple select, and touch friendly)."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


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
    pilots = PilotChoices(_l("Pilots"), choices=[], validate_choice=True)
    password = PasswordField(_l("Initial password"), validators=[DataRequired(), Length(min=12)])


class EditUserForm(FlaskForm):
    display_name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
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
    pilots = PilotChoices(_l("Pilots"), choices=[], validate_choice=True)


class ResetPasswordForm(FlaskForm):
    new_password = PasswordField(
        _l("Temporary password"), validators=[DataRequired(), Length(min=12)]
    )


def _pilot_choices() -> list[SelectChoice]:
    """Every pilot, named in the user's language."""
    language = current_language()
    pilots = db.session.scalars(select(Pilot).order_by(Pilot.code)).all()
    return [SelectChoice(p.code, p.label(language)) for p in pilots]


def _warn_without_pilots(user: User) -> None:
    if lacks_pilots(user):
        flash(
            _(
                "%(name)s has no pilots and sees no patients until you give them at least one.",
                name=user.username,
            ),
            "error",
        )


@bp.route("/users", methods=["GET", "POST"])
@allow(Role.ADMIN)
def users() -> Response | str:
    form = UserForm()
    form.pilots.choices = _pilot_choices()
    if form.validate_on_submit():
        try:
            user = create_user(
                db.session,
                username=form.username.data or "",
                password=form.password.data or "",
                role=form.role.data or "",
                display_name=form.display_name.data,
                email=form.email.data or None,
                pilot_codes=tuple(form.pilots.data or ())
                if form.role.data in {Role.CLINICIAN, Role.PILOT_LEAD}
                else (),
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
                details={
                    "username": user.username,
                    "role": user.role,
                    "pilots": sorted(p.code for p in user.pilots),
                },
            )
            flash(_("User %(name)s created.", name=user.username), "info")
            _warn_without_pilots(user)
            return redirect(url_for("admin.users"))
    accounts = db.session.scalars(select(User).order_by(User.username)).all()
    return render_template(
        "admin/users.html",
        form=form,
        accounts=accounts,
        role_labels=ROLE_LABELS,
        confirm=ConfirmForm(),
        lacks_pilots=lacks_pilots,
        language=current_language(),
    )


def _user(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    return user


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@allow(Role.ADMIN)
def edit_user(user_id: int) -> Response | str:
    """Change a user's role, pilots, name and e-mail; reset their password."""
    user = _user(user_id)
    form = EditUserForm(obj=None if request.method == "POST" else user)
    form.pilots.choices = _pilot_choices()
    if request.method == "GET":
        form.pilots.data = [p.code for p in user.pilots]
    if form.validate_on_submit():
        role = form.role.data or user.role
        if user.id == current_user.id and role != user.role:
            form.role.errors = [
                *form.role.errors,
                _("You cannot change your own role: ask another administrator."),
            ]
        else:
            try:
                changes = update_user(
                    db.session,
                    user,
                    role=role,
                    pilot_codes=tuple(form.pilots.data or ()),
                    display_name=form.display_name.data or "",
                    email=form.email.data or None,
                )
            except UserError:
                form.pilots.errors = [*form.pilots.errors, _("Unknown pilot.")]
            else:
                if changes:
                    audit.record(
                        "update_user",
                        object_type="user",
                        object_id=user.id,
                        details={"username": user.username, **changes},
                    )
                    flash(_("The changes to %(name)s were saved.", name=user.username), "info")
                else:
                    flash(_("Nothing was changed."), "info")
                _warn_without_pilots(user)
                return redirect(url_for("admin.edit_user", user_id=user.id))
    return render_template(
        "admin/user.html",
        user=user,
        form=form,
        reset_form=ResetPasswordForm(),
        role_labels=ROLE_LABELS,
        lacks_pilots=lacks_pilots(user),
        language=current_language(),
    )


@bp.post("/users/<int:user_id>/password")
@allow(Role.ADMIN)
def reset_user_password(user_id: int) -> Response:
    """A temporary password the user must replace at their next login."""
    user = _user(user_id)
    reset_form = ResetPasswordForm()
    if reset_form.validate_on_submit():
        try:
            reset_password(user, reset_form.new_password.data or "")
        except UserError as error:
            reset_form.new_password.errors = [password_message(error.code)]
        else:
            audit.record(
                "reset_password",
                object_type="user",
                object_id=user.id,
                details={"username": user.username},
            )
            flash(
                _(
                    "The password of %(name)s was reset. Give them the temporary password in "
                    "person or by phone; they must choose a new one when they log in.",
                    name=user.username,
                ),
                "info",
            )
            return redirect(url_for("admin.edit_user", user_id=user.id))
    form = EditUserForm(obj=user)
    form.pilots.choices = _pilot_choices()
    form.pilots.data = [p.code for p in user.pilots]
    page = render_template(
        "admin/user.html",
        user=user,
        form=form,
        reset_form=reset_form,
        role_labels=ROLE_LABELS,
        lacks_pilots=lacks_pilots(user),
        language=current_language(),
    )
    return make_response(page, 422)


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
    person_ids = {e.person_id for e in events if e.person_id is not None}
    pseudonyms = (
        dict(
            db.session.execute(
                select(Person.id, Person.pseudonym).where(Person.id.in_(person_ids))
            ).all()
        )
        if person_ids
        else {}
    )
    language = current_language()
    pilots = {p.code: p.label(language) for p in db.session.scalars(select(Pilot))}
    # The trail names who viewed whom: reading it is itself recorded.
    audit.record(
        "view_audit_log",
        object_type="audit_log",
        details={**filters.as_details(), "page": page, "rows": len(events)},
    )
    actions = sorted(
        ((code, str(label)) for code, label in ACTION_LABELS.items()), key=lambda pair: pair[1]
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
        actions=actions,
        action_label=action_label,
        object_label=object_label,
        pseudonyms=pseudonyms,
        pilot_names=pilots,
    )


@bp.get("/audit.csv")
@allow(Role.ADMIN)
def audit_csv() -> Response:
    """The audit trail (with the page's filters) as CSV; the export itself is audited."""
    filters = audit_export.parse_filters(request.args)
    if filters.invalid:
        abort(400)
    audit.record("export_audit_log", object_type="audit_log", details=filters.as_details())
    filename = f"audit-log-{county_today().isoformat()}.csv"
    return Response(
        stream_with_context(audit_export.csv_lines(db.session, filters)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
