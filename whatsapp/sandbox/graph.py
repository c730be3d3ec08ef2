"""The Graph API stand-in: Meta's paths under ``/sandbox/graph/v{N}/``.

One view takes every ``/{object_id}[/{edge}]`` request: it authenticates the token
(``Authorization: Bearer`` or ``OAuth``), finds the object among the token's account's WABA, app,
phone numbers, templates, media and upload sessions, and calls the handler for (object kind,
edge, method). Handlers parse, call one service, and serialise in Meta's shape; every refusal is
a :class:`~.errors.GraphError` rendered as Meta's error body. A send (``POST /{phone}/messages``)
finds its number and checks the token in one query.

A send is counted against the number's cap in the second it arrived, as at Meta's front door:
the request's arrival is stamped by :class:`~.middleware.SandboxGraphMiddleware`, or by the view
as it starts when that middleware is not installed (:func:`~.middleware.arrival_stamp`), and the
send is counted at that time however long the process took to reach its statement. The
configured latency is slept after the answer is ready, so it delays neither the stamp nor the
count, and the wait holds neither a lock nor a transaction (nor a connection, when Django would
close it after the request anyway), so concurrent requests overlap.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from functools import wraps
from typing import Any, Final
from urllib.parse import urlencode

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from . import selectors, services
from .choices import TemplateStatus
from .errors import (
    GraphError,
    ServerErrorPage,
    invalid_parameter,
    token_invalid,
    token_missing,
    unsupported_request,
)
from .middleware import arrival_stamp
from .models import SandboxBusinessAccount, SandboxMedia, SandboxPhoneNumber, SandboxTemplate, SandboxUploadSession

DEFAULT_PAGE_SIZE: Final = 25
MAX_PAGE_SIZE: Final = 1000
SERVER_ERROR_PAGE: Final = (
    "<!DOCTYPE html><html><head><title>Sorry, something went wrong.</title></head>"
    "<body><h1>Sorry, something went wrong.</h1><p>We're working on it and we'll get it fixed as soon as we can.</p>"
    "</body></html>"
)


def sandbox_is_enabled() -> bool:
    """``WHATSAPP_SANDBOX_ENABLED``, by default on in DEBUG only: production has no fake Meta."""
    return bool(getattr(settings, "WHATSAPP_SANDBOX_ENABLED", settings.DEBUG))


def sandbox_enabled(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Answer 404 for every sandbox URL unless the sandbox is enabled."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not sandbox_is_enabled():
            raise Http404("The WhatsApp sandbox is disabled.")
        return view(request, *args, **kwargs)

    return wrapper


def _error(exc: GraphError) -> JsonResponse:
    response = JsonResponse(exc.body(), status=exc.http_status)
    if exc.code == 190:
        response["WWW-Authenticate"] = f'OAuth "Facebook Platform" "invalid_token" "{exc.title}"'
    return response


def _graph_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Arrival stamp, latency, enablement, CSRF exemption and Meta's error rendering for a Graph endpoint."""

    @csrf_exempt
    @sandbox_enabled
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        arrival_stamp(request)  # unless the middleware did, the earliest this request is seen
        latency = selectors.sandbox_settings_get().latency_ms
        try:
            response = view(request, *args, **kwargs)
        except GraphError as exc:
            response = _error(exc)
        except ServerErrorPage:
            response = HttpResponse(SERVER_ERROR_PAGE, status=500, content_type="text/html; charset=utf-8")
        if latency:
            services.connection_release()
            time.sleep(latency / 1000)
        return response

    return wrapper


def _token(request: HttpRequest) -> str:
    header = request.META.get("HTTP_AUTHORIZATION", "")  # request.headers would copy every header first
    scheme, _, token = header.partition(" ")
    if scheme.lower() not in {"bearer", "oauth"} or not token.strip():
        token = request.GET.get("access_token", "")
    return token.strip()


def _authenticate(request: HttpRequest) -> SandboxBusinessAccount:
    token = _token(request)
    if not token:
        raise token_missing()
    account = selectors.account_for_token(token=token)
    if account is None:
        raise token_invalid()
    return account


def _params(request: HttpRequest) -> dict[str, Any]:
    """Query parameters merged with the body (JSON object, or form fields): Meta reads both."""
    params: dict[str, Any] = {key: request.GET.get(key) for key in request.GET}
    content_type = request.content_type or ""
    if request.method in {"POST", "DELETE"} and content_type == "application/json" and request.body:
        try:
            body = json.loads(request.body)
        except ValueError as exc:
            raise invalid_parameter("The request body is not valid JSON.") from exc
        if not isinstance(body, dict):
            raise invalid_parameter("The request body must be a JSON object.")
        params.update(body)
    elif request.method == "POST" and content_type in {"multipart/form-data", "application/x-www-form-urlencoded"}:
        params.update({key: request.POST.get(key) for key in request.POST})
    return params


def _fields(params: dict[str, Any]) -> list[str]:
    raw = params.get("fields")
    return [f.strip() for f in str(raw).split(",") if f.strip()] if raw else []


def _pick(full: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    if not fields:
        return full
    return {"id": full["id"], **{key: full[key] for key in fields if key in full}}


def _limit(params: dict[str, Any]) -> int:
    raw = params.get("limit")
    if raw in (None, ""):
        return DEFAULT_PAGE_SIZE
    try:
        value = int(raw)
    except (TypeError, ValueError) as exc:
        raise invalid_parameter("Param limit must be an integer.") from exc
    if value < 1:
        raise invalid_parameter("Param limit must be a positive integer.")
    return min(value, MAX_PAGE_SIZE)


# --- Serialisation in Meta's shapes -------------------------------------------------------------


def phone_json(phone: SandboxPhoneNumber) -> dict[str, Any]:
    can_send = "AVAILABLE" if phone.registered and phone.is_verified else "BLOCKED"
    entity: dict[str, Any] = {"entity_type": "PHONE_NUMBER", "id": phone.phone_number_id, "can_send_message": can_send}
    if can_send != "AVAILABLE":
        entity["errors"] = [
            {
                "error_code": 133010,
                "error_description": "The phone number is not registered on the WhatsApp Business Platform.",
                "possible_solution": "Verify the number and register it on the Cloud API.",
            }
        ]
    # Registered numbers are connected; a verified but unregistered one was taken off the API.
    status = "CONNECTED" if phone.registered else ("DISCONNECTED" if phone.is_verified else "PENDING")
    return {
        "id": phone.phone_number_id,
        "display_phone_number": phone.display_phone_number,
        "verified_name": phone.verified_name,
        "code_verification_status": phone.code_verification_status,
        "quality_rating": phone.quality_rating,
        "status": status,
        "name_status": phone.name_status,
        "platform_type": "CLOUD_API" if phone.registered else "NOT_APPLICABLE",
        "throughput": {"level": phone.throughput_level},
        "whatsapp_business_manager_messaging_limit": phone.messaging_limit_tier,
        "messaging_limit_tier": phone.messaging_limit_tier,
        "health_status": {"can_send_message": can_send, "entities": [entity]},
        "is_official_business_account": False,
        "account_mode": "LIVE",
        "is_on_biz_app": False,
    }


def template_json(template: SandboxTemplate) -> dict[str, Any]:
    approved = template.status == TemplateStatus.APPROVED
    return {
        "id": template.template_id,
        "name": template.name,
        "status": template.status,
        "category": template.category,
        "language": template.language,
        "components": template.components,
        "parameter_format": template.parameter_format,
        "quality_score": {"score": "GREEN" if approved else "UNKNOWN"},
        "rejected_reason": template.rejected_reason,
    }


def media_json(request: HttpRequest, media: SandboxMedia) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "url": media_download_url(request, media),
        "mime_type": media.mime_type,
        "sha256": media.sha256,
        "file_size": media.file_size,
        "id": media.media_id,
    }


def media_download_url(request: HttpRequest, media: SandboxMedia) -> str:
    return request.build_absolute_uri(reverse("whatsapp_sandbox:media_download", args=[media.media_id]))


# --- Handlers: (request, account, object, params) -> response body -----------------------------

Handler = Callable[[HttpRequest, SandboxBusinessAccount, Any, dict[str, Any]], dict[str, Any]]


def _send(request: HttpRequest, account: SandboxBusinessAccount, phone: SandboxPhoneNumber, params: dict[str, Any]):
    return services.message_send(phone=phone, body=params, arrived_at=arrival_stamp(request))


def _media_upload(request: HttpRequest, account: SandboxBusinessAccount, phone: SandboxPhoneNumber, params):
    if params.get("messaging_product") != "whatsapp":
        raise invalid_parameter("The parameter messaging_product is required and must be 'whatsapp'.")
    upload = request.FILES.get("file")
    if upload is None:
        raise invalid_parameter("The parameter file is required.")
    mime_type = str(params.get("type") or upload.content_type or "")
    media = services.media_upload(
        account=account, phone=phone, content=upload.read(), mime_type=mime_type, filename=upload.name or ""
    )
    return {"id": media.media_id}


def _phone_get(request, account, phone: SandboxPhoneNumber, params):
    return _pick(phone_json(phone), _fields(params))


def _request_code(request, account, phone: SandboxPhoneNumber, params):
    services.phone_request_code(
        phone=phone, code_method=str(params.get("code_method") or ""), language=str(params.get("language") or "")
    )
    return {"success": True}


def _verify_code(request, account, phone: SandboxPhoneNumber, params):
    services.phone_verify_code(phone=phone, code=str(params.get("code") or ""))
    return {"success": True}


def _register(request, account, phone: SandboxPhoneNumber, params):
    if params.get("messaging_product") != "whatsapp":
        raise invalid_parameter("The parameter messaging_product is required and must be 'whatsapp'.")
    services.phone_register(phone=phone, pin=params.get("pin"))
    return {"success": True}


def _deregister(request, account, phone: SandboxPhoneNumber, params):
    services.phone_deregister(phone=phone)
    return {"success": True}


def _waba_get(request, account: SandboxBusinessAccount, waba, params):
    full = {
        "id": account.waba_id,
        "name": account.name,
        "timezone_id": "71",
        "currency": "INR",
        "message_template_namespace": f"sandbox_{account.waba_id}",
        "account_review_status": "APPROVED",
        "business_verification_status": "verified",
    }
    return _pick(full, _fields(params))


def _phone_numbers(request, account: SandboxBusinessAccount, waba, params):
    fields = _fields(params)
    phones = list(account.phone_numbers.order_by("pk"))
    data = [_pick(phone_json(phone), fields) for phone in phones]
    if not data:
        return {"data": []}
    return {
        "data": data,
        "paging": {
            "cursors": {
                "before": selectors.encode_cursor(phones[0].pk),
                "after": selectors.encode_cursor(phones[-1].pk),
            }
        },
    }


def _templates_list(request: HttpRequest, account: SandboxBusinessAccount, waba, params):
    limit = _limit(params)
    page = selectors.template_page(
        account=account,
        limit=limit,
        after=params.get("after") or None,
        before=params.get("before") or None,
        name=params.get("name") or None,
        status=params.get("status") or None,
    )
    fields = _fields(params)
    data = [_pick(template_json(template), fields) for template in page.items]
    if not data:
        return {"data": []}
    paging: dict[str, Any] = {"cursors": {"before": page.before, "after": page.after}}
    if page.has_next:
        query = {k: v for k, v in params.items() if k not in {"after", "before", "access_token"} and v is not None}
        query.update(limit=limit, after=page.after)
        paging["next"] = request.build_absolute_uri(request.path) + "?" + urlencode(query)
    return {"data": data, "paging": paging}


def _template_create(request, account: SandboxBusinessAccount, waba, params):
    template = services.template_create(account=account, data=params)
    return {"id": template.template_id, "status": template.status, "category": template.category}


def _templates_delete(request, account: SandboxBusinessAccount, waba, params):
    services.template_delete(account=account, name=str(params.get("name") or ""), hsm_id=params.get("hsm_id"))
    return {"success": True}


def _subscribed_apps(request, account: SandboxBusinessAccount, waba, params):
    if not account.subscribed:
        return {"data": []}
    item: dict[str, Any] = {
        "whatsapp_business_api_data": {
            "link": f"https://www.facebook.com/games/?app_id={account.app_id}",
            "name": "WhatsApp hub (sandbox app)",
            "id": account.app_id,
        }
    }
    if account.override_callback_uri:
        item["override_callback_uri"] = account.override_callback_uri
    return {"data": [item]}


def _subscribe(request, account: SandboxBusinessAccount, waba, params):
    services.account_subscribe(
        account=account,
        override_callback_uri=str(params.get("override_callback_uri") or ""),
        verify_token=str(params.get("verify_token") or ""),
    )
    return {"success": True}


def _unsubscribe(request, account: SandboxBusinessAccount, waba, params):
    services.account_unsubscribe(account=account)
    return {"success": True}


def _upload_session_create(request, account: SandboxBusinessAccount, app, params):
    session = services.upload_session_create(
        account=account,
        file_name=str(params.get("file_name") or ""),
        file_length=str(params.get("file_length") or ""),
        file_type=str(params.get("file_type") or ""),
    )
    return {"id": f"{session.upload_id}?sig={session.signature}"}


def _template_get(request, account, template: SandboxTemplate, params):
    return _pick(template_json(template), _fields(params))


def _template_edit(request, account, template: SandboxTemplate, params):
    services.template_edit(template=template, data=params)
    return {"success": True}


def _media_get(request, account, media: SandboxMedia, params):
    _check_media_phone(account, media, params)
    return media_json(request, media)


def _media_delete(request, account, media: SandboxMedia, params):
    _check_media_phone(account, media, params)
    services.media_delete(media=media)
    return {"success": True}


def _check_media_phone(account: SandboxBusinessAccount, media: SandboxMedia, params: dict[str, Any]) -> None:
    phone_number_id = params.get("phone_number_id")
    if phone_number_id and (
        selectors.phone_number_get(account=account, phone_number_id=str(phone_number_id)) is None
        or (media.phone_number_id is not None and media.phone_number.phone_number_id != phone_number_id)
    ):
        raise invalid_parameter(f"Media {media.media_id} does not belong to phone number {phone_number_id}.")


def _upload_write(request: HttpRequest, account, session: SandboxUploadSession, params):
    # Django's development server drops headers with underscores (``file_offset``); absent means 0.
    offset = request.headers.get("file_offset", request.headers.get("file-offset", "0"))
    handle = services.upload_session_write(session=session, content=request.body, file_offset=offset)
    return {"h": handle}


def _upload_status(request, account, session: SandboxUploadSession, params):
    return {"id": session.upload_id, "file_offset": len(session.content or b"")}


ROUTES: Final[dict[tuple[str, str, str], Handler]] = {
    ("phone", "messages", "POST"): _send,
    ("phone", "media", "POST"): _media_upload,
    ("phone", "", "GET"): _phone_get,
    ("phone", "request_code", "POST"): _request_code,
    ("phone", "verify_code", "POST"): _verify_code,
    ("phone", "register", "POST"): _register,
    ("phone", "deregister", "POST"): _deregister,
    ("waba", "", "GET"): _waba_get,
    ("waba", "phone_numbers", "GET"): _phone_numbers,
    ("waba", "message_templates", "GET"): _templates_list,
    ("waba", "message_templates", "POST"): _template_create,
    ("waba", "message_templates", "DELETE"): _templates_delete,
    ("waba", "subscribed_apps", "GET"): _subscribed_apps,
    ("waba", "subscribed_apps", "POST"): _subscribe,
    ("waba", "subscribed_apps", "DELETE"): _unsubscribe,
    ("app", "uploads", "POST"): _upload_session_create,
    ("template", "", "GET"): _template_get,
    ("template", "", "POST"): _template_edit,
    ("media", "", "GET"): _media_get,
    ("media", "", "DELETE"): _media_delete,
    ("upload", "", "POST"): _upload_write,
    ("upload", "", "GET"): _upload_status,
}

NODE_TYPES: Final = {
    "phone": "WhatsAppBusinessPhoneNumber",
    "waba": "WhatsAppBusinessAccount",
    "app": "Application",
    "template": "WhatsAppMessageTemplate",
    "media": "WhatsAppBusinessMedia",
    "upload": "UploadSession",
}


def _resolve(account: SandboxBusinessAccount, object_id: str, params: dict[str, Any]) -> tuple[str, Any] | None:
    """Find the object among those this token may act on: (kind, object), or None."""
    if object_id == account.waba_id:
        return "waba", account
    if object_id == account.app_id:
        return "app", account
    if object_id.startswith("upload:"):
        session = account.upload_sessions.filter(upload_id=object_id).first()
        if session is None or params.get("sig") != session.signature:
            return None
        return "upload", session
    phone = selectors.phone_number_get(account=account, phone_number_id=object_id)
    if phone is not None:
        return "phone", phone
    template = selectors.template_get(account=account, template_id=object_id)
    if template is not None:
        return "template", template
    media = selectors.media_get(account=account, media_id=object_id)
    if media is not None:
        return "media", media
    return None


@_graph_view
def graph(request: HttpRequest, version: str, path: str) -> HttpResponse:
    """Every Graph call: ``/{object_id}`` or ``/{object_id}/{edge}``."""
    method = request.method or "GET"
    segments = [segment for segment in path.split("/") if segment]
    if method == "POST" and len(segments) == 2 and segments[1] == "messages" and (token := _token(request)):
        phone = selectors.phone_number_for_token(token=token, phone_number_id=segments[0])
        if phone is not None:  # otherwise the general path below answers with the right error
            return JsonResponse(_send(request, phone.account, phone, _params(request)))
    account = _authenticate(request)
    if not segments or len(segments) > 2:
        raise unsupported_request(method, path)
    object_id, edge = segments[0], segments[1] if len(segments) == 2 else ""
    params = _params(request)
    found = _resolve(account, object_id, params)
    if found is None:
        raise unsupported_request(method, object_id)
    kind, obj = found
    handler = ROUTES.get((kind, edge, method))
    if handler is None:
        if method == "GET" and edge:
            raise invalid_parameter(
                "", message=f"(#100) Tried accessing nonexisting field ({edge}) on node type ({NODE_TYPES[kind]})"
            )
        raise unsupported_request(method, object_id)
    return JsonResponse(handler(request, account, obj, params))


@_graph_view
def unknown_path(request: HttpRequest, path: str) -> HttpResponse:
    """A path without a ``v{N}.{M}`` version segment."""
    _authenticate(request)
    raise GraphError(2500, message=f"Unknown path components: /{path}", details="")


@_graph_view
def media_download(request: HttpRequest, media_id: str) -> HttpResponse:
    """The media URL of ``GET /{media_id}``: the file, for the owner's token only."""
    account = _authenticate(request)
    media = selectors.media_get(account=account, media_id=media_id)
    if media is None:
        raise unsupported_request("GET", media_id)
    response = HttpResponse(bytes(media.content), content_type=media.mime_type)
    response["Content-Length"] = str(media.file_size)
    if media.filename:
        response["Content-Disposition"] = f'attachment; filename="{media.filename.replace(chr(34), "")}"'
    return response
