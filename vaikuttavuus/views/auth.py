"""Logging in and out, and changing one's password."""

from __future__ import annotations

from typing import cast
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user
from werkzeug.wrappers import Response

from vaikuttavuus.extensions import db, limiter
from vaikuttavuus.forms.auth import ConfirmForm, LoginForm, PasswordChangeForm
from vaikuttavuus.models import Role, new_session_nonce
from vaikuttavuus.security import PASSWORD_CHANGE_REQUIRED, start_session
from vaikuttavuus.security.access import allow, public
from vaikuttavuus.security.passwords import password_message, password_problem, verify_password
from vaikuttavuus.security.throttle import (
    LoginAttempt,
    login_actor,
    note_breach,
    remember_device,
    too_many_attempts,
)
from vaikuttavuus.services import audit
from vaikuttavuus.services.users import (
    UserError,
    authenticate,
    must_choose_password,
    set_password,
)

bp = Blueprint("auth", __name__, url_prefix="/auth")

ALL_ROLES = tuple(role.value for role in Role)


def _safe_next(target: str | None) -> str | None:
    """Only same-site relative paths are followed after login (no open redirect)."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> Response | str:
    if current_user.is_authenticated:
        return redirect(url_for("main.index"))
    form = LoginForm()
    if form.validate_on_submit():
        username = form.username.data or ""
        attempt = LoginAttempt.from_request(username)
        refused = attempt.refusal()
        if refused is not None:
            return refused
        result = authenticate(db.session, username, form.password.data or "")
        if result.user is not None:
            user = result.user
            start_session(user)
            login_user(user)
            audit.record("login", object_type="user", object_id=user.id)
            target = _safe_next(request.args.get("next")) or url_for("main.index")
            # ASVS 2.1.7: a password the policy refuses (set before it, or by an administrator
            # from an older list) must be replaced before anything else is done.
            problem = password_problem(
                form.password.data or "", (user.username, user.display_name, user.email)
            )
            if problem is not None:
                session[PASSWORD_CHANGE_REQUIRED] = True
                flash(_("Your password no longer meets the password rules. Choose a new one."),
                      "info")  # fmt: skip
                target = url_for("auth.change_password")
            elif must_choose_password(user):  # an administrator set a temporary password
                session[PASSWORD_CHANGE_REQUIRED] = True
                flash(_("An administrator has reset your password. Choose a new one."), "info")
                target = url_for("auth.change_password")
            response = redirect(target)
            remember_device(response, user.username)
            return response
        attempt.failed()
        audit.record(
            "login_failed",
            object_type="user",
            actor=login_actor(username),
            details={"reason": result.reason},
        )
        flash(_("Wrong username or password."), "error")
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
@allow(*ALL_ROLES)
def logout() -> Response:
    form = ConfirmForm()
    if form.validate_on_submit():
        audit.record("logout", object_type="user", object_id=current_user.id)
        # A new nonce invalidates this session's cookie for good, even if it was copied.
        current_user.session_nonce = new_session_nonce()
        logout_user()
        flash(_("You have logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/password", methods=["GET", "POST"])
@allow(*ALL_ROLES)
def change_password() -> Response | str:
    form = PasswordChangeForm()
    # The user object itself: login_user() must not be given the current_user proxy, which
    # would then resolve to itself for the rest of the request (endless recursion).
    user = current_user._get_current_object()
    if form.validate_on_submit():
        limit = str(current_app.config["PASSWORD_CHANGE_RATE_LIMIT"])
        who = ("password-change", str(user.id))
        if not limiter.allowed(limit, *who):
            note_breach(limit, who, "password_change_throttled")
            return too_many_attempts(limiter.retry_after(limit, *who))
        if not verify_password(user.password_hash, form.current_password.data or ""):
            limiter.hit(limit, *who)
            audit.record("password_change_failed", object_type="user", object_id=user.id)
            # validated fields hold their errors in a list (the stubs say Sequence)
            cast(list[str], form.current_password.errors).append(
                _("The current password is wrong.")
            )
        else:
            try:
                set_password(user, form.new_password.data or "")
            except UserError as error:
                cast(list[str], form.new_password.errors).append(password_message(error.code))
            else:
                audit.record("password_changed", object_type="user", object_id=user.id)
                start_session(user)
                login_user(user)
                flash(_("Your password has been changed."), "info")
                return redirect(url_for("main.index"))
    return render_template("auth/password.html", form=form)
