"""Plain-language fix hints for WhatsApp Cloud API error codes.

Meta's error titles ("Re-engagement message", "(#132001) Template name does not exist in the
translation") mean nothing to an accountant. Every failed message in the hub shows one sentence
that says what went wrong and what to do next, written for the person who pressed "Send".

The same codes arrive in two places: synchronously in the HTTP error of a request
(``whatsapp.client.CloudAPIError``) and asynchronously in the ``errors`` of a ``failed`` status
webhook. Both look hints up here, so this module imports no app and no HTTP library.

Store the numeric code (and subcode) on the row and call :func:`fix_hint` when you render it: the
sentences are translatable, so the hint comes out in the language of whoever reads it.

Codes: Meta's error-codes page, as catalogued in ``/work/shared/reference/outside-contracts.md``.
"""

from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

__all__ = ["GENERIC_HINT", "TEMPORARY_HINT", "TRANSPORT_HINT", "fix_hint"]

_RETRIES_AUTOMATICALLY = _(
    "WhatsApp is limiting how fast messages can be sent; the hub will slow down and retry automatically."
)
_PERMISSIONS = _(
    "The WhatsApp connection is missing a permission: reconnect the WhatsApp Business account in "
    "Settings → Integrations and accept every permission Meta asks for."
)
_PAYMENT = _(
    "There's a problem with the WhatsApp payment method: the account owner should check Billing in Meta "
    "Business Manager."
)

#: Hints by Meta error code (or by ``error_subcode`` for template-creation errors, which Meta
#: reports as code 100 with a 2388xxx subcode).
_HINTS: dict[int, Promise] = {
    # Authorization and permissions.
    0: _PERMISSIONS,
    3: _PERMISSIONS,
    10: _PERMISSIONS,
    190: _(
        "The WhatsApp access token expired or was revoked: reconnect the WhatsApp Business account in "
        "Settings → Integrations."
    ),
    200: _PERMISSIONS,
    131005: _PERMISSIONS,
    # Throttling: the hub backs off on its own.
    4: _RETRIES_AUTOMATICALLY,
    80007: _RETRIES_AUTOMATICALLY,
    130429: _RETRIES_AUTOMATICALLY,
    131056: _(
        "Too many messages were sent to this customer in a short time; the hub will wait and retry automatically."
    ),
    # Meta-side trouble: retried.
    1: _("WhatsApp had an unexpected problem; the hub will retry automatically."),
    2: _("WhatsApp is temporarily unavailable; the hub will retry automatically."),
    131000: _("Something went wrong at WhatsApp; the hub will retry automatically."),
    131016: _("WhatsApp is temporarily unavailable; the hub will retry automatically."),
    131057: _("The WhatsApp account is briefly under maintenance; the hub will retry automatically in a minute."),
    133004: _("WhatsApp is temporarily unavailable; the hub will retry automatically."),
    135000: _("WhatsApp reported an unexpected error; the hub will retry automatically."),
    # Account state.
    368: _(
        "Meta temporarily restricted this WhatsApp account for a policy violation: check Account Quality "
        "in WhatsApp Manager."
    ),
    131031: _(
        "The WhatsApp Business account is locked by Meta: check Account Quality in WhatsApp Manager; "
        "sending resumes once Meta unlocks it."
    ),
    131042: _PAYMENT,
    131044: _PAYMENT,
    131045: _("This phone number isn't registered correctly with WhatsApp: register it again in Settings → WhatsApp."),
    133010: _("This phone number isn't registered with WhatsApp yet: finish registering it in Settings → WhatsApp."),
    130497: _("Your WhatsApp Business account isn't allowed to message customers in this country."),
    # The recipient.
    131021: _("The recipient is the sending number itself: use the customer's own WhatsApp number."),
    131026: _(
        "The recipient's number can't receive WhatsApp messages: check the number and country code with "
        "the customer, or ask them to update WhatsApp."
    ),
    131030: _(
        "This test number may only message numbers on its allowed list: add the recipient in Meta's "
        "developer console, or switch to a production number."
    ),
    131047: _(
        "More than 24 hours have passed since the customer last wrote: send an approved template instead "
        "of a free-form message."
    ),
    131048: _(
        "WhatsApp restricted sending because recent messages were reported or blocked: pause bulk sends "
        "and review the template's wording."
    ),
    131049: _(
        "WhatsApp held back this marketing message because the customer received many recently; don't "
        "resend it for at least 24 hours."
    ),
    131050: _(
        "The customer has stopped marketing messages from your business: mark them as opted out of "
        "marketing and send only utility messages."
    ),
    130472: _(
        "Meta held this message back because the customer is part of a WhatsApp experiment; it can't be "
        "delivered now and will not be retried."
    ),
    # The content.
    100: _(
        "WhatsApp rejected a value in the request: check the template variables and the recipient's "
        "number; if it persists, give your administrator the details below."
    ),
    131008: _("A required value is missing from the message: check the template variables mapped to this document."),
    131009: _("A value in the message isn't valid: check the template variables and the attachment."),
    131051: _("WhatsApp doesn't support this kind of message: send a template, a text or a document instead."),
    131052: _("WhatsApp couldn't download the file the customer sent: ask them to send it again."),
    131053: _(
        "WhatsApp couldn't use the attached file: check that it is a PDF, JPEG or PNG within the size "
        "limits and that its link can be opened from the internet."
    ),
    # Templates at send time.
    132000: _(
        "The number of values doesn't match the template's variables: review the variable mapping in "
        "Settings → WhatsApp templates."
    ),
    132001: _(
        "The template doesn't exist in that language or isn't approved yet: sync templates in Settings → WhatsApp."
    ),
    132005: _("The message is too long once the variables are filled in: shorten the values or the template text."),
    132007: _("The message breaks WhatsApp's content policy: edit the template or the text."),
    132012: _(
        "A value doesn't match the format the template expects (for example a document header, or named "
        "versus numbered variables): review the template's header type and variable mapping."
    ),
    132015: _(
        "The template is paused because customers rated it poorly: edit it, or wait for Meta to unpause "
        "it, then send again."
    ),
    132016: _("Meta disabled the template after repeated poor ratings: create a new template and send with it."),
    # Phone number registration.
    133005: _(
        "The two-step verification PIN is wrong: enter the 6-digit PIN set for this number, or reset it "
        "in WhatsApp Manager."
    ),
    133006: _("The phone number needs to be verified again: request a new code in Settings → WhatsApp."),
    133008: _("Too many wrong PIN attempts: wait a while before trying again."),
    136025: _("The code is wrong or has expired: check it, or ask for a new one."),
    133009: _("PIN attempts came too fast: wait a minute before trying again."),
    # Template creation (error_subcode of code 100).
    2388019: _("The business has reached Meta's limit on the number of templates: delete unused templates first."),
    2388040: _("A template field is longer than WhatsApp allows: shorten the header, body, footer or button text."),
    2388047: _("The template's header or body isn't in a format WhatsApp accepts: check the variables and formatting."),
    2388073: _("The template footer isn't valid: footers are plain text of at most 60 characters, without variables."),
    2388293: _("The template has too many variables for its length: add more fixed text around the variables."),
    2388299: _(
        "A template can't start or end with a variable: add some fixed text before the first or after the last."
    ),
}

#: For codes with no entry of their own in Meta's template range (132000–132999).
_TEMPLATE_RANGE_HINT = _(
    "There's a problem with the message template: sync templates in Settings → WhatsApp and check the "
    "template's variables."
)

#: A temporary failure the hub retries on its own.
TEMPORARY_HINT = _("WhatsApp had a temporary problem; the hub will retry automatically.")

#: No answer from WhatsApp at all (timeout, refused or dropped connection).
TRANSPORT_HINT = _("WhatsApp couldn't be reached or didn't answer in time; the hub will retry automatically.")

#: Anything else.
GENERIC_HINT = _(
    "WhatsApp rejected the request: check the details below; if it keeps happening, give your administrator "
    "the error code and trace id."
)


def fix_hint(code: int | None, subcode: int | None = None, *, retryable: bool = False) -> str:
    """Return the sentence an accountant should read for a Meta error, in the active language.

    ``subcode`` wins over ``code`` when it has its own entry (template-creation errors are all
    code 100 and only the subcode says what to fix). Unknown codes fall back to a "will retry"
    sentence when ``retryable``, else to a generic one, so a hint is never empty.
    """
    for candidate in (subcode, code):
        if candidate is not None and candidate in _HINTS:
            return str(_HINTS[candidate])
    if code is not None and 132000 <= code <= 132999:
        return str(_TEMPLATE_RANGE_HINT)
    if code is not None and 200 <= code <= 299:  # Graph's "API Permission" family
        return str(_PERMISSIONS)
    return str(TEMPORARY_HINT if retryable else GENERIC_HINT)
