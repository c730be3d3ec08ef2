"""The sandbox's JSON control API, for tests and benchmarks driving it from outside the process.

``/sandbox/control/...``: faults, settings (latency, status and review delays, status batching,
timeout), the numbers' throughput level and messaging limit, the messages and webhooks it has
seen, what each number accepted and refused, a customer writing in, delivering what is pending,
and a reset. Like every sandbox URL it exists only while ``WHATSAPP_SANDBOX_ENABLED`` is on.

    POST   /sandbox/control/faults        {"code", "phone_number_id"?, "recipient"?, "mode"?, "remaining"?}
    GET    /sandbox/control/faults
    DELETE /sandbox/control/faults        (all)   DELETE /sandbox/control/faults/<id>
    GET    /sandbox/control/settings      POST {"latency_ms"?, "sent_delay"?, ..., "status_batch_ms"?}
    GET    /sandbox/control/phone_numbers
    POST   /sandbox/control/phone_numbers/<phone_number_id>  {"throughput_level"?, "messaging_limit_tier"?}
    GET    /sandbox/control/messages?recipient=&phone_number_id=&limit=
    GET    /sandbox/control/webhooks?limit=
    GET    /sandbox/control/stats[?detail=1]   accepted / refused per number, peak per second
    POST   /sandbox/control/inbound       {"phone_number_id", "from", "name"?, "text"}
    POST   /sandbox/control/flush         deliver every pending webhook now
    POST   /sandbox/control/reset         {"templates": false}  (the stats too)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from . import delivery, limits, selectors, services
from .graph import media_download_url, sandbox_enabled
from .models import SandboxFault, SandboxMessage, SandboxPhoneNumber, SandboxSettings, SandboxWebhookDelivery


class _BadRequest(Exception):
    pass


def _control(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @csrf_exempt
    @sandbox_enabled
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except (_BadRequest, ValueError, TypeError) as exc:
            return JsonResponse({"error": str(exc)}, status=400)

    return wrapper


def _body(request: HttpRequest) -> dict[str, Any]:
    """The JSON object sent, or the form fields when the body isn't JSON (e.g. a bare POST)."""
    if request.content_type != "application/json":
        return {key: request.POST.get(key) for key in request.POST}
    if not request.body:
        return {}
    try:
        data = json.loads(request.body)
    except ValueError as exc:
        raise _BadRequest("The body must be JSON.") from exc
    if not isinstance(data, dict):
        raise _BadRequest("The body must be a JSON object.")
    return data


def fault_json(fault: SandboxFault) -> dict[str, Any]:
    return {
        "id": fault.pk,
        "code": fault.code,
        "mode": fault.mode,
        "phone_number_id": fault.phone_number_id,
        "recipient": fault.recipient,
        "remaining": fault.remaining,
        "hits": fault.hits,
    }


def settings_json(row: SandboxSettings) -> dict[str, Any]:
    return {name: getattr(row, name) for name in services.SETTINGS_FIELDS}


def phone_json(phone: SandboxPhoneNumber) -> dict[str, Any]:
    return {
        "phone_number_id": phone.phone_number_id,
        "display_phone_number": phone.display_phone_number,
        "waba_id": phone.account.waba_id,
        "registered": phone.registered,
        "code_verification_status": phone.code_verification_status,
        "throughput_level": phone.throughput_level,
        "messages_per_second": limits.throughput_cap(phone),
        "messaging_limit_tier": phone.messaging_limit_tier,
    }


def message_json(message: SandboxMessage) -> dict[str, Any]:
    return {
        "wamid": message.wamid,
        "direction": message.direction,
        "phone_number_id": message.phone_number.phone_number_id,
        "recipient": message.recipient,
        "type": message.type,
        "status": message.status,
        "error_code": message.error_code,
        "template_name": message.template_name,
        "template_language": message.template_language,
        "biz_opaque_callback_data": message.biz_opaque_callback_data,
        "pricing": message.pricing,
        "rendered": message.rendered,
        "request": message.request,
        "created_at": message.created_at.isoformat(),
    }


def delivery_json(row: SandboxWebhookDelivery) -> dict[str, Any]:
    return {
        "id": row.pk,
        "kind": row.kind,
        "event": row.event,
        "state": row.state,
        "attempts": row.attempts,
        "url": row.url,
        "last_status_code": row.last_status_code,
        "last_error": row.last_error,
        "due_at": row.due_at.isoformat(),
        "payload": json.loads(row.payload),
    }


@_control
@require_http_methods(["GET", "POST", "DELETE"])
def faults(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        data = _body(request)
        remaining = data.get("remaining")
        fault = services.fault_create(
            code=str(data.get("code", "")),
            phone_number_id=str(data.get("phone_number_id") or ""),
            recipient=str(data.get("recipient") or ""),
            mode=str(data.get("mode") or "sync"),
            remaining=None if remaining in (None, "") else int(remaining),
        )
        return JsonResponse(fault_json(fault), status=201)
    if request.method == "DELETE":
        return JsonResponse({"deleted": services.fault_delete()})
    return JsonResponse({"data": [fault_json(fault) for fault in selectors.fault_list()]})


@_control
@require_http_methods(["DELETE"])
def fault_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return JsonResponse({"deleted": services.fault_delete(pk=pk)})


@_control
@require_http_methods(["GET", "POST"])
def sandbox_settings(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return JsonResponse(settings_json(services.sandbox_settings_update(**_body(request))))
    return JsonResponse(settings_json(selectors.sandbox_settings_get(fresh=True)))


@_control
@require_http_methods(["GET"])
def phone_numbers(request: HttpRequest) -> HttpResponse:
    rows = SandboxPhoneNumber.objects.select_related("account").order_by("phone_number_id")
    return JsonResponse({"data": [phone_json(phone) for phone in rows]})


@_control
@require_http_methods(["POST"])
def phone_number_detail(request: HttpRequest, phone_number_id: str) -> HttpResponse:
    phone = SandboxPhoneNumber.objects.select_related("account").filter(phone_number_id=phone_number_id).first()
    if phone is None:
        return JsonResponse({"error": "Unknown phone_number_id."}, status=404)
    data = _body(request)
    unknown = set(data) - {"throughput_level", "messaging_limit_tier"}
    if unknown:
        raise _BadRequest(f"Unknown fields: {', '.join(sorted(unknown))}")
    services.phone_number_limits_update(
        phone=phone,
        throughput_level=data.get("throughput_level") or None,
        messaging_limit_tier=data.get("messaging_limit_tier") or None,
    )
    return JsonResponse(phone_json(phone))


@_control
@require_http_methods(["GET"])
def stats(request: HttpRequest) -> HttpResponse:
    detail = request.GET.get("detail", "").lower() in {"1", "true", "yes"}
    return JsonResponse(selectors.send_stats(detail=detail))


@_control
@require_http_methods(["GET"])
def messages(request: HttpRequest) -> HttpResponse:
    rows = selectors.message_list(
        recipient=request.GET.get("recipient") or None,
        phone_number_id=request.GET.get("phone_number_id") or None,
        limit=min(int(request.GET.get("limit") or 100), 1000),
    )
    return JsonResponse({"data": [message_json(message) for message in rows]})


@_control
@require_http_methods(["GET"])
def webhooks(request: HttpRequest) -> HttpResponse:
    rows = selectors.delivery_list(limit=min(int(request.GET.get("limit") or 50), 1000))
    return JsonResponse({"data": [delivery_json(row) for row in rows]})


@_control
@require_http_methods(["POST"])
def inbound(request: HttpRequest) -> HttpResponse:
    data = _body(request)
    phone = (
        SandboxPhoneNumber.objects.select_related("account")
        .filter(phone_number_id=str(data.get("phone_number_id") or ""))
        .first()
    )
    if phone is None:
        raise _BadRequest("Unknown phone_number_id.")
    message = services.inbound_message_create(
        phone=phone,
        wa_id=str(data.get("from") or ""),
        profile_name=str(data.get("name") or ""),
        text=str(data.get("text") or ""),
        media_url=lambda media: media_download_url(request, media),
    )
    return JsonResponse({"id": message.wamid}, status=201)


@_control
@require_http_methods(["POST"])
def flush(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"processed": delivery.flush()})


@_control
@require_http_methods(["POST"])
def reset(request: HttpRequest) -> HttpResponse:
    services.sandbox_reset(templates=bool(_body(request).get("templates")))
    return JsonResponse({"success": True})
