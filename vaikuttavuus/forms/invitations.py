"""Forms of the pilot lead's invitation pages (each carries the session CSRF token)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectField, SubmitField
from wtforms.validators import DataRequired, NumberRange

from vaikuttavuus.services.schedule import MAX_EXTENSION_DAYS

CHANNEL_LABELS = {
    "email": _l("E-mail"),
    "sms": _l("Text message (SMS)"),
    "letter": _l("Printed letter"),
}


class ResendForm(FlaskForm):
    channel = SelectField(_l("Channel"), choices=[], validate_choice=True)
    submit = SubmitField(_l("Send a new link"))

    def set_channels(self, channels: list[str]) -> None:
        self.channel.choices = [("", _l("Usual channel"))] + [
            (code, CHANNEL_LABELS[code]) for code in channels
        ]


class ExtendForm(FlaskForm):
    days = IntegerField(
        _l("Days"),
        default=14,
        validators=[DataRequired(), NumberRange(min=1, max=MAX_EXTENSION_DAYS)],
        render_kw={"inputmode": "numeric", "min": 1, "max": MAX_EXTENSION_DAYS, "class": "number"},
    )
    submit = SubmitField(_l("Extend"))


class CancelForm(FlaskForm):
    submit = SubmitField(_l("Yes, cancel the invitation"))


class RestoreForm(FlaskForm):
    submit = SubmitField(_l("Undo the cancellation"))


class LetterBatchForm(FlaskForm):
    submit = SubmitField(_l("Print the next letter batch (PDF)"))
