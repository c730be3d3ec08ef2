"""Meta's errors, as the Graph API words and shapes them.

One exception, :class:`GraphError`, carries what Meta's error body carries; the Graph views turn
it into ``{"error": {...}}`` with the HTTP status Meta uses. :data:`CATALOGUE` holds the titles and
details of the codes the sandbox produces (validation and injected faults), so a synchronous
error and the ``errors`` of a ``failed`` status webhook say the same thing.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from typing import Any, Final

ERROR_CODES_HREF: Final = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"

_TRACE_ALPHABET = string.ascii_letters + string.digits + "_-"


def fbtrace_id() -> str:
    """A trace id shaped like Meta's (27 URL-safe characters)."""
    return "A" + "".join(secrets.choice(_TRACE_ALPHABET) for _ in range(26))


@dataclass(frozen=True, slots=True)
class Known:
    """A Meta error code as the error-codes page names it: title, the usual details, HTTP status."""

    title: str
    details: str
    http_status: int = 400
    transient: bool | None = None


#: Codes the sandbox produces, worded as Meta's error-codes page words them.
CATALOGUE: Final[dict[int, Known]] = {
    1: Known("An unknown error has occurred.", "An unknown error has occurred.", 500, True),
    2: Known("Service temporarily unavailable", "Temporary due to downtime or due to being overloaded.", 503, True),
    4: Known("Application request limit reached", "The app has reached its API call rate limit.", 400, True),
    100: Known("Invalid parameter", "The request included one or more unsupported or misspelled parameters."),
    190: Known("Invalid OAuth access token - Cannot parse access token", "", 401),
    368: Known(
        "Temporarily blocked for policies violations",
        "The WhatsApp Business Account is restricted from messaging due to policy violations.",
    ),
    80007: Known("Rate limit issues", "The WhatsApp Business Account has reached its rate limit.", 400, True),
    130429: Known("Rate limit hit", "Cloud API message throughput has been reached."),
    130472: Known(
        "User's number is part of an experiment",
        "Failed to send message because this user's phone number is part of an experiment",
    ),
    131000: Known("Something went wrong", "Message failed to send due to an unknown error.", 500, True),
    131008: Known("Required parameter is missing", "The request is missing a required parameter."),
    131009: Known("Parameter value is not valid", "One or more parameter values are invalid."),
    131016: Known("Service unavailable", "A service is temporarily unavailable.", 503, True),
    131026: Known(
        "Message undeliverable",
        "Unable to deliver message. Reasons can include: the recipient's phone number is not a WhatsApp phone "
        "number; the recipient has not accepted the new Terms of Service and Privacy Policy; the recipient is "
        "using an old WhatsApp version.",
    ),
    131031: Known("Business Account locked", "The WhatsApp Business Account associated with the app is locked."),
    131047: Known(
        "Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
    ),
    131048: Known(
        "Spam rate limit hit",
        "Message failed to send because there are restrictions on how many "
        "messages can be sent from this phone number.",
    ),
    131049: Known(
        "Meta chose not to deliver.",
        "This message was not delivered to maintain healthy ecosystem engagement.",
    ),
    131050: Known("Unable to deliver the message", "The user has stopped marketing messages from this business."),
    131051: Known("Unsupported message type", "Unsupported message type."),
    131053: Known("Media upload error", "Unable to upload the media used in the message."),
    131056: Known(
        "(Business Account, Consumer Account) pair rate limit hit",
        "Message failed to send because there were too many messages sent from this phone number to the same "
        "phone number in a short period of time.",
    ),
    131057: Known("Account in maintenance mode", "Business Account is in maintenance mode.", 400, True),
    132000: Known(
        "Number of parameters does not match the expected number of params",
        "The number of parameters does not match the expected number of parameters.",
    ),
    132001: Known("Template name does not exist in the translation", "Template does not exist."),
    132005: Known("Translated text too long", "Translated text is too long."),
    132007: Known("Template Format Character Policy Violated", "Template content violates a WhatsApp policy."),
    132012: Known(
        "Parameter format does not match format in the created template",
        "Variable parameter values formatted incorrectly.",
    ),
    132015: Known("Template is Paused", "Template is paused due to low quality so it cannot be sent."),
    132016: Known("Template is Disabled", "Template has been paused too many times due to low quality."),
    133005: Known("Two step verification PIN Mismatch", "The two-step verification PIN is incorrect."),
    133006: Known("Phone number re-verification needed", "The phone number needs to be verified before registering."),
    133010: Known(
        "Phone number Not Registered", "The phone number is not registered on the WhatsApp Business Platform."
    ),
    136025: Known("Verify code error", "Code couldn't be verified, You have entered the wrong code."),
}

_FIRST_FAULTS: Final = ("130429", "131026", "131047", "131056", "500", "timeout")
#: What the fault form and the control API offer, the usual ones first: catalogued codes, an HTML 500, a timeout.
FAULT_CODES: Final = (
    *_FIRST_FAULTS,
    *(str(code) for code in sorted(CATALOGUE) if code not in {100, 190} and str(code) not in _FIRST_FAULTS),
)

#: Codes whose fault can only be synchronous: they are about the HTTP exchange itself.
SYNC_ONLY_FAULTS: Final = frozenset({"500", "timeout"})


class GraphError(Exception):
    """An error answer of the Graph API: the HTTP status and Meta's ``error`` object."""

    def __init__(
        self,
        code: int,
        *,
        message: str | None = None,
        details: str | None = None,
        http_status: int | None = None,
        subcode: int | None = None,
        error_type: str = "OAuthException",
        user_title: str | None = None,
        user_msg: str | None = None,
        transient: bool | None = None,
    ) -> None:
        known = CATALOGUE.get(code)
        title = message or (known.title if known else "Invalid parameter")
        super().__init__(title)
        self.code = code
        # Meta prefixes most messages with "(#code)"; token errors are the exception.
        self.message = title if code in {190, 104} or title.startswith("(#") else f"(#{code}) {title}"
        self.title = title
        self.details = details if details is not None else (known.details if known else "")
        self.http_status = http_status or (known.http_status if known else 400)
        self.subcode = subcode
        self.error_type = error_type
        self.user_title = user_title
        self.user_msg = user_msg
        self.transient = transient if transient is not None else (known.transient if known else None)

    def body(self) -> dict[str, Any]:
        """Meta's error body: ``{"error": {message, type, code, error_subcode?, error_data?, fbtrace_id}}``."""
        error: dict[str, Any] = {"message": self.message, "type": self.error_type, "code": self.code}
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        if self.transient is not None:
            error["is_transient"] = self.transient
        if self.user_title:
            error["error_user_title"] = self.user_title
        if self.user_msg:
            error["error_user_msg"] = self.user_msg
        if self.details:
            error["error_data"] = {"messaging_product": "whatsapp", "details": self.details}
        error["fbtrace_id"] = fbtrace_id()
        return {"error": error}


class ServerErrorPage(Exception):
    """An HTTP 500 from the front of Meta's house: an HTML page, no JSON error body."""


def status_error(code: int, details: str | None = None) -> dict[str, Any]:
    """One entry of a ``failed`` status webhook's ``errors``: ``{code, title, message, error_data, href}``."""
    known = CATALOGUE.get(code)
    title = known.title if known else "Something went wrong"
    return {
        "code": code,
        "title": title,
        "message": title,
        "error_data": {"details": details if details is not None else (known.details if known else title)},
        "href": ERROR_CODES_HREF,
    }


def invalid_parameter(details: str, *, message: str = "Invalid parameter") -> GraphError:
    """Meta's code 100 for a missing or malformed parameter, with ``error_data.details``."""
    return GraphError(100, message=message, details=details)


def unsupported_request(method: str, object_id: str) -> GraphError:
    """Meta's answer for an id that doesn't exist, isn't yours, or lacks the operation (100/33)."""
    return GraphError(
        100,
        message=(
            f"Unsupported {method.lower()} request. Object with ID '{object_id}' does not exist, cannot be loaded "
            "due to missing permissions, or does not support this operation. Please read the Graph API "
            "documentation at https://developers.facebook.com/docs/graph-api"
        ),
        details="",
        subcode=33,
        error_type="GraphMethodException",
    )


def template_creation_error(subcode: int | None, user_title: str, user_msg: str) -> GraphError:
    """Template-creation errors: code 100 with a 2388xxx subcode and a user-facing title and text."""
    return GraphError(
        100, message="Invalid parameter", details="", subcode=subcode, user_title=user_title, user_msg=user_msg
    )


def token_missing() -> GraphError:
    return GraphError(104, message="An access token is required to request this resource.", details="", http_status=400)


def token_invalid() -> GraphError:
    return GraphError(190, message="Invalid OAuth access token - Cannot parse access token", details="")
