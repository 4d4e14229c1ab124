"""The audit trail's action and object codes as the administrator's page names them.

The trail stores codes (``view_patient``, ``enrolment``): they are a stable contract for the
CSV export and for anyone who analyses the trail. The page shows these names instead, in the
user's language; an unknown code (from a newer version) is shown as it is.
``tests/unit/test_user_visible_messages.py`` checks that every code the source records has a
name here.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

ACTION_LABELS: dict[str, LazyString] = {
    # signing in
    "login": _l("Logged in"),
    "login_failed": _l("Failed login"),
    "login_throttled": _l("Logins refused (too many attempts)"),
    "logout": _l("Logged out"),
    "password_changed": _l("Changed own password"),
    "password_change_failed": _l("Wrong current password when changing it"),
    "password_change_throttled": _l("Password changes refused (too many attempts)"),
    # users
    "create_user": _l("Created a user"),
    "update_user": _l("Changed a user"),
    "reset_password": _l("Reset a user's password"),
    "view_audit_log": _l("Viewed the audit log"),
    "export_audit_log": _l("Downloaded the audit log"),
    # patients and clinicians
    "view_patient_list": _l("Viewed the patient list"),
    "view_patient": _l("Viewed a patient"),
    "export_patient_summary": _l("Downloaded a patient summary (PDF)"),
    "view_measurements": _l("Viewed clinical measurements"),
    "add_measurement": _l("Added a clinical measurement"),
    "correct_measurement": _l("Corrected a clinical measurement"),
    "view_assisted_entry": _l("Opened answer entry for a patient"),
    "assisted_entry_save": _l("Saved answers entered for a patient"),
    "assisted_entry_submit": _l("Sent answers entered for a patient"),
    "view_patient_costs": _l("Viewed a patient's costs"),
    # the patient's own actions through the link
    "patient_submit": _l("Patient sent answers"),
    "patient_opt_out": _l("Patient declined questionnaires"),
    "patient_link_throttled": _l("Personal links refused (too many wrong links)"),
    # invitations
    "view_invitations": _l("Viewed invitations"),
    "view_invitation": _l("Viewed an invitation"),
    "resend_invitation": _l("Sent a new link"),
    "extend_invitation": _l("Extended the answering time"),
    "cancel_invitation": _l("Cancelled an invitation"),
    "restore_invitation": _l("Undid the cancellation of an invitation"),
    "issue_link": _l("Issued a personal link (command line)"),
    "export_letters": _l("Printed a letter batch"),
    # pilot data
    "import": _l("Imported a file"),
    "import_dry_run": _l("Checked an import file"),
    "view_import_report": _l("Viewed an import report"),
    "export_import_report": _l("Downloaded an import report"),
    "view_cost_report": _l("Viewed cost figures"),
    "export_csv": _l("Downloaded a table as CSV"),
    "export_pdf": _l("Downloaded a PDF report"),
    "export_estimates": _l("Exported the estimates"),
    "export_data": _l("Exported pseudonymised data"),
    "export_dictionary": _l("Downloaded a data dictionary"),
    "export_fhir": _l("Exported data as FHIR"),
    # privacy
    "view_privacy": _l("Viewed data-subject requests"),
    "export_subject_access": _l("Downloaded a person's own data"),
    "withdraw_enrolment": _l("Withdrew a person"),
    "erase_person": _l("Erased a person"),
    # operations
    "backup_database": _l("Backed up the database"),
    "restore_database": _l("Restored the database"),
}

OBJECT_LABELS: dict[str, LazyString] = {
    "user": _l("User"),
    "person": _l("Person"),
    "enrolment": _l("Enrolment"),
    "invitation": _l("Invitation"),
    "pilot": _l("Pilot"),
    "clinical_measurement": _l("Clinical measurement"),
    "import_batch": _l("Import"),
    "letter_batch": _l("Letter batch"),
    "cohort_table": _l("Cohort table"),
    "cohort_summary": _l("Cohort summary"),
    "management_summary": _l("Management summary"),
    "estimates": _l("Estimates"),
    "audit_log": _l("Audit log"),
    "database": _l("Database"),
    "rate_limit": _l("Throttling"),
}


def action_label(code: str) -> str:
    label = ACTION_LABELS.get(code)
    return code if label is None else str(label)


def object_label(code: str | None) -> str:
    if not code:
        return ""
    label = OBJECT_LABELS.get(code)
    return code if label is None else str(label)
