"""Staff forms read only what they declare: form fields from the form body, files only into
file fields.

Flask-WTF hands a form ``request.files`` merged with ``request.form`` (and a JSON body as if it
were form data), so an upload sent under a text field's name, or a JSON object, reached text
validators as a file object or a dict and ended in a server error. The wrapper below gives a
form its uploads only for its own file fields and never reads JSON into a form.
"""

from __future__ import annotations

from typing import Any

from flask import request
from flask_wtf import FlaskForm
from flask_wtf.form import _Auto, _is_submitted  # the sentinel and check Flask-WTF uses
from werkzeug.datastructures import CombinedMultiDict, MultiDict
from wtforms import FileField


def declared_formdata(meta: Any, form: Any, formdata: Any) -> Any:
    if formdata is not _Auto:
        return formdata
    if not _is_submitted():
        return None
    file_fields = {name for name, field in form._fields.items() if isinstance(field, FileField)}
    uploads = [(k, v) for k, v in request.files.items(multi=True) if k in file_fields]
    if uploads:
        return CombinedMultiDict((MultiDict(uploads), request.form))
    return request.form


def install() -> None:
    FlaskForm.Meta.wrap_formdata = declared_formdata
