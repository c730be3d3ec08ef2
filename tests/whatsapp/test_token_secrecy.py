"""Acceptance: "The access token is not readable in the database dump or any log line."

An account is created with a known token, then every place it could leak is searched for it: the
``dumpdata`` output and the raw column (only ``fernet:`` ciphertext), every log record of every
logger at DEBUG while the account is saved and while Cloud API calls fail (Meta's 190 echoing the
token, a proxy's HTML page, a refused connection, a timeout), the raised errors, and the pages
and API answers that show the account and its messages.
"""

import io
import json
import logging
from collections.abc import Iterator

import httpx2  # the client is exercised through httpx2's MockTransport, as in its unit tests
import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from books.services.organizations import membership_add
from tests.books.api.builders import client_for
from tests.books.factories import UserFactory, make_contact, make_document, make_organization
from whatsapp.choices import MessageStatus
from whatsapp.client import CloudAPI, CloudAPIError
from whatsapp.models import WhatsAppAccount

from .factories import make_account, make_message

pytestmark = pytest.mark.django_db

#: Meta's shape ("EAA…", which the client also scrubs by shape) and an arbitrary one (only the
#: exact-value scrub can catch it).
TOKENS = [
    pytest.param("EAAJZCk9uRZBsBAKnownSecretToken0123456789abcdefXYZ", id="meta-shaped"),
    pytest.param("hub.known-secret_token.0123456789~not-meta-shaped", id="any-shape"),
]
PHONE_NUMBER_ID = "106540352242922"


@pytest.fixture
def every_log_record(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """caplog at DEBUG for every logger, including those that do not propagate to the root."""
    caplog.set_level(logging.DEBUG)
    names = [name for name, logger in logging.root.manager.loggerDict.items() if isinstance(logger, logging.Logger)]
    for name in names:
        caplog.set_level(logging.DEBUG, logger=name)
    isolated = [logging.getLogger(name) for name in names if not logging.getLogger(name).propagate]
    for logger in isolated:
        logger.addHandler(caplog.handler)
    yield caplog
    for logger in isolated:
        logger.removeHandler(caplog.handler)


def all_log_text(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Each record as any handler could write it: message, raw args and formatted traceback."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    texts = []
    for record in caplog.records:
        texts += [record.getMessage(), str(record.msg), repr(record.args), formatter.format(record)]
    return texts


def stored_column(account: WhatsAppAccount) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT access_token FROM whatsapp_whatsappaccount WHERE id = %s", [account.pk])
        return cursor.fetchone()[0]


@pytest.fixture
def organization():
    return make_organization(name="Sharma Accounting")


@pytest.mark.parametrize("token", TOKENS)
def test_the_database_dump_holds_only_ciphertext(organization, token):
    make_account(organization, token=token)
    out = io.StringIO()

    call_command("dumpdata", "whatsapp", format="json", stdout=out)

    dump = out.getvalue()
    assert token not in dump
    accounts = [row for row in json.loads(dump) if row["model"] == "whatsapp.whatsappaccount"]
    assert len(accounts) == 1 and accounts[0]["fields"]["access_token"].startswith("fernet:")


@pytest.mark.parametrize("token", TOKENS)
def test_the_raw_column_holds_only_ciphertext(organization, token):
    account = make_account(organization, token=token)

    raw = stored_column(account)

    assert raw.startswith("fernet:") and token not in raw
    assert WhatsAppAccount.objects.get(pk=account.pk).access_token == token


@pytest.mark.parametrize("token", TOKENS)
def test_no_log_record_holds_the_token_when_saving_or_when_calls_fail(organization, every_log_record, token):
    # Saving and reading with SQL logging on: the parameters logged are the ciphertext.
    with CaptureQueriesContext(connection):
        account = make_account(organization, token=token, numbers=1)
        account = WhatsAppAccount.objects.get(pk=account.pk)
        account.access_token = token
        account.save()

    def meta(request: httpx2.Request) -> httpx2.Response:
        assert request.headers["Authorization"] == f"Bearer {token}"  # the header, and only the header
        assert token not in str(request.url)
        answers = {
            "/v25.0/106540352242922/messages": httpx2.Response(
                401,
                json={
                    "error": {
                        "message": f"Error validating access token: Session has expired. Token {token}",
                        "type": "OAuthException",
                        "code": 190,
                        "error_subcode": 463,
                        "error_data": {"details": f"The access token {token} expired"},
                        "error_user_msg": f"token={token}",
                        "fbtrace_id": "AbCdEf123",
                    }
                },
            ),
            "/v25.0/106540352242922": httpx2.Response(
                502, html=f"<html><body>Bad gateway for Authorization: Bearer {token}</body></html>"
            ),
        }
        if request.url.path in answers:
            return answers[request.url.path]
        if request.url.path.endswith("/message_templates"):
            raise httpx2.ConnectError(f"connection refused while sending Bearer {token}", request=request)
        raise httpx2.ReadTimeout("timed out", request=request)

    api = CloudAPI(
        account.access_token,
        base_url="https://graph.example.test",
        version="v25.0",
        transport=httpx2.MockTransport(meta),
    )
    calls = [
        lambda: api.send_text(PHONE_NUMBER_ID, "+919820012345", "Your invoice INV-000001"),
        lambda: api.get_phone_number(PHONE_NUMBER_ID),
        lambda: list(api.list_templates("102290129340398")),
        lambda: api.get_media("1013"),
    ]
    errors: list[CloudAPIError] = []
    for call in calls:
        with pytest.raises(CloudAPIError) as caught:
            call()
        errors.append(caught.value)

    expired = errors[0]
    assert expired.code == 190 and expired.is_auth_error and not expired.retryable
    assert "Settings → Integrations" in expired.fix_hint
    assert [e.retryable for e in errors[1:]] == [True, True, True]
    records = all_log_text(every_log_record)
    assert any("Cloud API" in text for text in records), "the client logs its calls at DEBUG"
    assert any("INSERT" in text and "whatsapp_whatsappaccount" in text for text in records), "SQL was logged"
    for text in records:
        assert token not in text
    for error in errors:
        for text in (str(error), repr(error), error.title, error.message, error.details, *map(str, error.args)):
            assert token not in text
    assert token not in repr(api) and token not in str(api)


@pytest.mark.parametrize("token", TOKENS)
def test_no_admin_page_or_api_answer_shows_the_token(client, organization, token):
    user = UserFactory(is_staff=True, is_superuser=True)
    membership_add(organization=organization, user=user, role_name="Admin")
    account = make_account(organization, token=token)
    customer = make_contact(organization)
    message = make_message(
        account,
        contact=customer,
        document=make_document(organization, contact=customer),
        status=MessageStatus.FAILED,
        error_code=190,
        error_title="Authentication error",
        error_details="Session has expired",
    )
    ciphertext = stored_column(account)
    client.force_login(user)
    api = client_for(user)

    responses = [
        client.get(reverse("admin:whatsapp_whatsappaccount_changelist")),
        client.get(reverse("admin:whatsapp_whatsappaccount_change", args=[account.pk])),
        client.get(reverse("admin:whatsapp_message_change", args=[message.pk])),
        api.get("/api/v1/whatsapp/messages"),
        api.get(f"/api/v1/whatsapp/messages/{message.pk}"),
    ]

    for response in responses:
        assert response.status_code == 200
        body = response.content.decode()
        assert token not in body and ciphertext not in body and "fernet:" not in body


def test_a_dump_loads_back_to_the_same_token_without_encrypting_twice(organization):
    from django.core import serializers

    token = "EAAJZCk9uRZBsBAKnownSecretToken0123456789abcdefXYZ"
    account = make_account(organization, token=token)
    dump = serializers.serialize("json", [account])
    WhatsAppAccount.objects.filter(pk=account.pk).update(access_token="")

    for restored in serializers.deserialize("json", dump):
        restored.save()

    assert WhatsAppAccount.objects.get(pk=account.pk).access_token == token
    assert stored_column(account).startswith("fernet:") and token not in stored_column(account)
