"""Bulk sends through the pages, as a browser uses them: the lists' checkboxes and bulk-action bar,
the summary (what goes, what is skipped and why, the credits), Send answered at once with the
progress page (the work is a task), a double click that starts one bulk send, the live part of
the progress page, the recent bulk sends, and who may see what.

Meta is not involved: the bulk task is run by the test where a worker would run it, dispatch is
never enqueued (``_dispatch_after_commit`` is replaced), and message statuses are moved by hand.
Credits are the real ``credits`` services, priced one credit per utility message.
"""

from __future__ import annotations

import datetime
import html
import re
from decimal import Decimal
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from books.choices import ContactType, DocumentKind, DocumentStatus
from books.formatting import date_format
from books.history import document_url
from books.kinds import KINDS
from books.models import Document, Role
from books.permissions import Perm
from books.services.organizations import membership_add
from credits.models import Price, Reservation
from credits.services import credits_adjust
from templates_mgmt.choices import Module, TemplateStatus
from templates_mgmt.models import MessageTemplate, ModuleSetting
from tests.books.factories import UserFactory, make_contact, make_document, make_organization
from tests.whatsapp.factories import make_account, make_approved_template
from whatsapp.choices import AccountStatus, MessageStatus
from whatsapp.models import BulkSend, Message
from whatsapp.services.bulk import MAX_SELECTION, bulk_send_run
from whatsapp.services.notifications import KIND_MODULES
from whatsapp.views import bulk as bulk_views

pytestmark = pytest.mark.django_db

INVOICE = KINDS[DocumentKind.INVOICE]


# --- Set-up ----------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_worker(monkeypatch):
    """The broker: bulk tasks enqueued (their ids, in order) and never run; dispatch never enqueued."""
    started: list[int] = []
    monkeypatch.setattr("whatsapp.services.bulk._enqueue", started.append)
    monkeypatch.setattr("whatsapp.services.dispatch._dispatch_after_commit", lambda ids: None)
    return started


@pytest.fixture
def user():
    return UserFactory(username="meera")


@pytest.fixture
def org(user):
    organization = make_organization(name="Sharma Accounting", user=user, role="Accountant")
    credits_adjust(organization=organization, amount=Decimal("50"), note="opening", user=None)
    Price.objects.create(organization=organization, category="utility", country_code="", credits=Decimal("1"))
    return organization


@pytest.fixture
def member(client, user, org):
    client.force_login(user)
    return client


@pytest.fixture
def account(org):
    return make_account(org)


@pytest.fixture
def template(account):
    return make_approved_template(account, Module.INVOICES)


@pytest.fixture
def mixed(org, template):
    """Three good invoices, a draft, a void one, one whose customer has no WhatsApp, one with a bad number."""
    good = [make_document(org) for _ in range(3)]
    draft = make_document(org, issue=False)
    void = make_document(org)
    void.status = DocumentStatus.VOID
    void.save()
    opted_out = make_document(org, contact=make_contact(org, whatsapp=False))
    bad_number = make_document(org)
    bad_number.contact.persons.update(mobile="12345")
    return good, {"draft": draft, "void": void, "opted_out": opted_out, "bad_number": bad_number}


def all_ids(good, others) -> list[int]:
    return [d.pk for d in good] + [d.pk for d in others.values()]


def summary_url(module: str, ids=(), **query) -> str:
    params = {"ids": ",".join(map(str, ids)), **query} if ids else query
    url = reverse("whatsapp_send:bulk_new", args=[module])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")


def page(response) -> str:
    return html.unescape(response.content.decode())


def plain(text: str) -> str:
    """The page's text without tags, whitespace collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", text).split())


def count(response, name: str) -> int:
    return int(re.search(rf'data-count="{name}">(?:<strong[^>]*>)?(\d+)', response.content.decode()).group(1))


def key_of(response) -> str:
    return re.search(r'name="key" value="([^"]+)"', response.content.decode()).group(1)


def refusal_code(response) -> str | None:
    found = re.search(r'data-refusal="([a-z_]+)"', response.content.decode())
    return found.group(1) if found else None


def send_disabled(response) -> bool:
    return bool(re.search(r"<button[^>]*data-send[^>]*disabled", response.content.decode()))


def skipped_groups(response) -> dict[str, set[int]]:
    """Reason code → the ids listed under it."""
    text = response.content.decode()
    groups = {}
    for match in re.finditer(r'data-skipped-group="([a-z_]+)"(.*?)</ul>', text, re.S):
        groups[match.group(1)] = {int(pk) for pk in re.findall(r'data-skipped-id="(\d+)"', match.group(2))}
    return groups


def start(member, module: str, ids, *, key: str = "k-1", template=None, **fields):
    data = {"ids": ",".join(map(str, ids)), "key": key, **fields}
    if template is not None:
        data["template"] = str(template.pk)
    return member.post(reverse("whatsapp_send:bulk_start", args=[module]), data)


class ListForm(HTMLParser):
    """What a browser would POST from a list page: the bulk form's ``selected`` checkboxes (inside
    the form, or tied to it with ``form=``) and its bar's buttons (their ``formaction``)."""

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id = form_id
        self.inside = False
        self.boxes: list[str] = []
        self.actions: dict[str, str] = {}
        self.links: dict[str, str] = {}
        self.csrf = ""

    def handle_starttag(self, tag, attrs) -> None:
        attrs = dict(attrs)
        if tag == "form" and attrs.get("id") == self.form_id:
            self.inside = True
        ours = self.inside or attrs.get("form") == self.form_id
        if tag == "input" and ours and attrs.get("name") == "selected":
            self.boxes.append(attrs["value"])
        if tag == "input" and ours and attrs.get("name") == "csrfmiddlewaretoken":
            self.csrf = attrs["value"]
        if tag == "button" and ours and "formaction" in attrs:
            self.actions[attrs["data-bulk-action"]] = html.unescape(attrs["formaction"])
        if tag == "a" and "data-bulk-action" in attrs:
            self.links[attrs["data-bulk-action"]] = attrs["href"]

    def handle_endtag(self, tag) -> None:
        if tag == "form":
            self.inside = False


def list_form(response, form_id: str) -> ListForm:
    parser = ListForm(form_id)
    parser.feed(response.content.decode())
    return parser


# --- The lists: checkboxes and the bulk-action bar --------------------------------------------------


def test_the_invoice_list_s_checkboxes_post_the_ticked_ids_to_the_summary(member, mixed) -> None:
    good, others = mixed
    form = list_form(member.get(reverse("books:document_list", args=[INVOICE.slug])), "document-bulk-form")

    assert set(form.boxes) == {str(pk) for pk in all_ids(good, others)}
    assert form.actions == {
        "whatsapp_bulk": reverse("whatsapp_send:bulk_new", args=[Module.INVOICES]),
        "whatsapp_bulk_reminder": reverse("whatsapp_send:bulk_new", args=[Module.PAYMENT_REMINDERS]),
    }
    assert form.links["whatsapp_bulk_sends"] == reverse("whatsapp_send:bulk_list")

    # Tick two, press Send → WhatsApp message: a plain form POST, answered with the summary's URL.
    ticked = [str(good[0].pk), str(others["draft"].pk)]
    response = member.post(form.actions["whatsapp_bulk"], {"selected": ticked})
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.path == reverse("whatsapp_send:bulk_new", args=[Module.INVOICES])
    assert parse_qs(location.query) == {"ids": [",".join(ticked)]}
    summary = member.get(response["Location"])
    assert (count(summary, "selected"), count(summary, "will-send"), count(summary, "skipped")) == (2, 1, 1)


def test_customers_and_vendors_lists_send_a_notice_or_this_month_s_statement(member, org, account) -> None:
    customer = make_contact(org)
    vendor = make_contact(org, contact_type=ContactType.VENDOR)

    for list_name, contact, notice, statement in (
        ("books:customer_list", customer, Module.CUSTOMERS, Module.CUSTOMER_STATEMENTS),
        ("books:vendor_list", vendor, Module.VENDORS, Module.VENDOR_STATEMENTS),
    ):
        form = list_form(member.get(reverse(list_name)), "contact-bulk-form")
        assert form.boxes == [str(contact.pk)]  # tied to the bar's form with form="contact-bulk-form"
        assert form.csrf
        assert form.actions == {
            "whatsapp_bulk_notice": reverse("whatsapp_send:bulk_new", args=[notice]),
            "whatsapp_bulk_statement": reverse("whatsapp_send:bulk_new", args=[statement]),
        }
        response = member.post(form.actions["whatsapp_bulk_notice"], {"selected": form.boxes})
        assert parse_qs(urlsplit(response["Location"]).query) == {"ids": [str(contact.pk)]}


def test_a_list_no_module_sends_has_checkboxes_but_no_whatsapp_action(member, org) -> None:
    make_document(org, kind=DocumentKind.BILL, contact=make_contact(org, contact_type=ContactType.VENDOR))
    form = list_form(
        member.get(reverse("books:document_list", args=[KINDS[DocumentKind.BILL].slug])), "document-bulk-form"
    )
    assert len(form.boxes) == 1 and form.actions == {} and form.links == {}


def test_a_role_without_notifications_send_has_no_whatsapp_actions_and_gets_403(client, org, mixed) -> None:
    good, _others = mixed
    viewer = UserFactory()
    Role.objects.create(organization=org, name="Viewer", permissions=[Perm.SALES_VIEW, Perm.CUSTOMERS_VIEW])
    membership_add(organization=org, user=viewer, role_name="Viewer")
    client.force_login(viewer)

    form = list_form(client.get(reverse("books:document_list", args=[INVOICE.slug])), "document-bulk-form")
    assert form.boxes and form.actions == {}
    assert client.get(summary_url(Module.INVOICES, [good[0].pk])).status_code == 403
    assert start(client, Module.INVOICES, [good[0].pk]).status_code == 403
    assert client.get(reverse("whatsapp_send:bulk_list")).status_code == 403
    assert not BulkSend.objects.exists()


def test_bulk_sending_needs_the_right_to_see_what_is_sent(client, org, mixed) -> None:
    good, _others = mixed
    sender = UserFactory()
    Role.objects.create(organization=org, name="Sender", permissions=[Perm.NOTIFICATIONS_SEND, Perm.CUSTOMERS_VIEW])
    membership_add(organization=org, user=sender, role_name="Sender")
    client.force_login(sender)

    assert client.get(summary_url(Module.INVOICES, [good[0].pk])).status_code == 403
    assert start(client, Module.INVOICES, [good[0].pk]).status_code == 403
    assert client.get(summary_url(Module.CUSTOMERS, [good[0].contact_id])).status_code == 200
    assert client.get(summary_url(Module.VENDORS, [good[0].contact_id])).status_code == 403


# --- The summary -----------------------------------------------------------------------------------


def test_the_summary_counts_what_goes_groups_the_skipped_by_reason_and_shows_the_credits(member, mixed) -> None:
    good, others = mixed
    response = member.get(summary_url(Module.INVOICES, all_ids(good, others)))

    assert response.status_code == 200
    assert (count(response, "selected"), count(response, "will-send"), count(response, "skipped")) == (7, 3, 4)
    assert skipped_groups(response) == {
        "document_not_sendable": {others["draft"].pk, others["void"].pk},
        "recipient_not_opted_in": {others["opted_out"].pk},
        "recipient_invalid_number": {others["bad_number"].pk},
    }
    text = page(response)
    assert "Draft or void" in text and "WhatsApp channel not enabled for the contact" in text
    assert f'<a href="{document_url(others["draft"])}">{others["draft"].number}</a>' in text
    assert "IM credits to reserve: 3 · available: 50" in plain(text)
    assert "data-credits-short" not in text
    assert re.search(r'<option value="\d+" selected>invoices_notice \(en\) · default', text)
    assert not send_disabled(response) and refusal_code(response) is None
    assert "Send to 3" in plain(text)
    assert not BulkSend.objects.exists() and not Message.objects.exists()


def test_the_summary_warns_when_credits_are_short_and_links_to_buying_them(client, org, mixed) -> None:
    good, _others = mixed
    credits_adjust(organization=org, amount=Decimal("-48"), note="spent", user=None)
    admin = UserFactory()
    membership_add(organization=org, user=admin, role_name="Admin")
    client.force_login(admin)

    response = client.get(summary_url(Module.INVOICES, [d.pk for d in good]))
    text = page(response)
    assert "IM credits to reserve: 3 · available: 2" in plain(text)
    assert "data-credits-short" in text and f'href="{reverse("credits:buy")}"' in text
    assert not send_disabled(response)  # what fits is sent, the rest is skipped as such


def test_an_accountant_short_of_credits_is_told_to_ask_an_administrator(member, org, mixed) -> None:
    good, _others = mixed
    credits_adjust(organization=org, amount=Decimal("-50"), note="spent", user=None)
    text = page(member.get(summary_url(Module.INVOICES, [d.pk for d in good])))
    assert "Ask an administrator to buy IM credits." in text and reverse("credits:buy") not in text


def _inactive(org, account):
    account.status = AccountStatus.INACTIVE
    account.save()


def _module_off(org, account):
    ModuleSetting.objects.filter(organization=org, module=Module.INVOICES).update(enabled=False)


def _no_template(org, account):
    MessageTemplate.objects.filter(organization=org).delete()


@pytest.mark.parametrize(
    ("make_refused", "code", "fix_url"),
    [
        (_inactive, "integration_inactive", "whatsapp:integration"),
        (_module_off, "module_disabled", "whatsapp:template_modules"),
        (_no_template, "template_missing", "whatsapp:template_list"),
    ],
)
def test_a_rule_of_the_whole_send_is_a_message_with_its_fix_and_send_is_disabled(
    member, org, account, mixed, make_refused, code, fix_url
) -> None:
    good, _others = mixed
    make_refused(org, account)
    response = member.get(summary_url(Module.INVOICES, [d.pk for d in good]))

    assert response.status_code == 200
    assert refusal_code(response) == code and send_disabled(response)
    assert f'href="{reverse(fix_url)}" data-refusal-fix' in page(response)

    response = start(member, Module.INVOICES, [d.pk for d in good])
    assert response.status_code == 400 and refusal_code(response) == code
    assert "Nothing was sent." in page(response)
    assert not BulkSend.objects.exists()


def test_another_template_of_the_module_can_be_chosen_and_htmx_refreshes_the_summary(member, account, mixed) -> None:
    good, _others = mixed
    other = make_approved_template(account, Module.INVOICES, name="invoice_short", default=False)
    response = member.get(summary_url(Module.INVOICES, [good[0].pk], template=other.pk), headers={"HX-Request": "true"})
    text = page(response)
    assert text.startswith('<div id="bulk-summary"') and "<html" not in text
    assert f'<option value="{other.pk}" selected>invoice_short' in text
    assert 'name="key"' not in text  # the one-time key stays in the page, outside the refreshed part


def test_without_a_default_the_first_approved_template_is_chosen_as_on_the_send_page(member, org, account) -> None:
    only = make_approved_template(account, Module.INVOICES, name="invoice_plain", default=False)
    invoice = make_document(org)
    response = member.get(summary_url(Module.INVOICES, [invoice.pk]))
    assert f'<option value="{only.pk}" selected>invoice_plain' in page(response)
    assert refusal_code(response) is None and not send_disabled(response)


def test_an_empty_or_unknown_selection_says_so_and_links_back_to_the_list(member, org, template) -> None:
    response = member.get(summary_url(Module.INVOICES))
    assert refusal_code(response) == "no_selection" and send_disabled(response)
    assert f'href="{reverse("books:document_list", args=[INVOICE.slug])}" data-refusal-fix' in page(response)

    foreign = make_document(make_organization(name="Globex"))
    response = member.get(summary_url(Module.INVOICES, [foreign.pk]))
    assert skipped_groups(response) == {"not_found": {foreign.pk}}
    assert foreign.number not in page(response)
    assert member.get(summary_url("no_such_module", [1])).status_code == 404


# --- Send: answered at once, then the progress page -------------------------------------------------


def test_send_records_the_bulk_send_enqueues_its_task_and_redirects_to_its_progress(
    member, user, org, template, mixed, no_worker, django_capture_on_commit_callbacks
) -> None:
    good, others = mixed
    summary = member.get(summary_url(Module.INVOICES, all_ids(good, others)))
    with django_capture_on_commit_callbacks(execute=True):
        response = start(member, Module.INVOICES, all_ids(good, others), key=key_of(summary), template=template)

    bulk = BulkSend.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("whatsapp_send:bulk", args=[bulk.pk])
    assert (bulk.target, bulk.module, bulk.template, bulk.created_by) == ("documents", "invoices", template, user)
    assert bulk.target_ids == all_ids(good, others) and bulk.state == BulkSend.State.PENDING
    assert no_worker == [bulk.pk]
    assert not Message.objects.exists()  # the task writes the messages, not the request
    progress = member.get(response["Location"])
    assert "Bulk send started: 7 selected." in page(progress)
    assert 'data-state="pending"' in page(progress) and 'hx-trigger="every 2s"' in page(progress)


def test_a_double_click_on_send_starts_one_bulk_send(
    member, template, mixed, no_worker, django_capture_on_commit_callbacks
) -> None:
    good, _others = mixed
    ids = [d.pk for d in good]
    key = key_of(member.get(summary_url(Module.INVOICES, ids)))
    with django_capture_on_commit_callbacks(execute=True):
        first = start(member, Module.INVOICES, ids, key=key, template=template)
        second = start(member, Module.INVOICES, ids, key=key, template=template)

    assert BulkSend.objects.count() == 1 and len(no_worker) == 1
    assert first["Location"] == second["Location"] == reverse("whatsapp_send:bulk", args=[no_worker[0]])


def test_the_same_key_for_another_selection_is_refused_on_the_summary(member, template, mixed) -> None:
    good, _others = mixed
    start(member, Module.INVOICES, [good[0].pk], key="same", template=template)
    response = start(member, Module.INVOICES, [good[1].pk], key="same", template=template)

    assert response.status_code == 400 and refusal_code(response) == "idempotency_conflict"
    assert key_of(response) != "same"  # a fresh key: pressing Send again starts it
    assert BulkSend.objects.count() == 1


def test_a_new_summary_is_a_new_bulk_send(member, template, mixed) -> None:
    good, _others = mixed
    ids = [good[0].pk]
    for _ in range(2):
        start(member, Module.INVOICES, ids, key=key_of(member.get(summary_url(Module.INVOICES, ids))))
    assert BulkSend.objects.count() == 2


def test_vendors_are_sent_a_vendor_notice_in_bulk(member, org, account) -> None:
    make_approved_template(account, Module.VENDORS)
    vendors = [make_contact(org, contact_type=ContactType.VENDOR) for _ in range(2)]
    customer = make_contact(org)
    ids = [v.pk for v in vendors] + [customer.pk]

    summary = member.get(summary_url(Module.VENDORS, ids))
    assert (count(summary, "will-send"), count(summary, "skipped")) == (2, 1)
    assert skipped_groups(summary) == {"not_found": {customer.pk}}  # a customer is not a vendor
    response = start(member, Module.VENDORS, ids, key=key_of(summary))
    bulk = BulkSend.objects.get()
    assert (bulk.target, bulk.module, bulk.total) == ("contacts", "vendors", 3)
    assert response["Location"] == reverse("whatsapp_send:bulk", args=[bulk.pk])


# --- Progress ----------------------------------------------------------------------------------------


def fragment(member, bulk, **query):
    url = reverse("whatsapp_send:bulk_progress", args=[bulk.pk])
    if query:
        url += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    return member.get(url, headers={"HX-Request": "true"})


def percent(response) -> int:
    text = response.content.decode()
    value = int(re.search(r'<progress[^>]*value="(\d+)" max="100"', text).group(1))
    assert f"data-percent>{value} %<" in text
    return value


def polling(response) -> bool:
    return 'hx-trigger="every 2s"' in response.content.decode()


def test_the_progress_fragment_follows_the_task_and_the_messages_and_stops_polling_when_final(
    member, template, mixed
) -> None:
    good, others = mixed
    start(member, Module.INVOICES, all_ids(good, others), template=template)
    bulk = BulkSend.objects.get()

    response = fragment(member, bulk)
    assert response.status_code == 200 and "<html" not in page(response)
    assert percent(response) == 0 and polling(response)
    assert (count(response, "total"), count(response, "queued"), count(response, "skipped")) == (7, 0, 0)

    bulk_send_run(bulk_id=bulk.pk)  # the worker
    response = fragment(member, bulk)
    assert percent(response) == 50 and polling(response)
    assert (count(response, "queued"), count(response, "skipped"), count(response, "sent")) == (3, 4, 0)
    assert skipped_groups(response) == {
        "document_not_sendable": {others["draft"].pk, others["void"].pk},
        "recipient_not_opted_in": {others["opted_out"].pk},
        "recipient_invalid_number": {others["bad_number"].pk},
    }

    first, second, third = (Message.objects.get(document=d) for d in good)
    Message.objects.filter(pk=first.pk).update(status=MessageStatus.READ)
    Message.objects.filter(pk=second.pk).update(status=MessageStatus.DELIVERED)
    response = fragment(member, bulk)
    assert percent(response) == 50 + 50 * 2 // 3 and polling(response)

    Message.objects.filter(pk=third.pk).update(status=MessageStatus.FAILED, error_title="Number not on WhatsApp")
    response = fragment(member, bulk)
    assert percent(response) == 100 and not polling(response)
    counts = {name: count(response, name) for name in ("queued", "sent", "delivered", "read", "failed")}
    assert counts == {"queued": 0, "sent": 0, "delivered": 1, "read": 1, "failed": 1}
    assert "data-bulk-state>Finished<" in page(response)


def test_the_outcome_of_each_document_is_listed_page_by_page(member, template, mixed, monkeypatch) -> None:
    good, others = mixed
    monkeypatch.setattr(bulk_views, "OUTCOMES_PER_PAGE", 4)
    start(member, Module.INVOICES, all_ids(good, others), template=template)
    bulk = BulkSend.objects.get()
    bulk_send_run(bulk_id=bulk.pk)
    Message.objects.filter(document=good[0]).update(status=MessageStatus.DELIVERED)

    def outcomes(response) -> dict[int, str]:
        text = response.content.decode()
        rows = re.findall(r'data-outcome="(\d+)">(.*?)</tr>', text, re.S)
        return {int(pk): re.search(r'data-outcome-status="([a-z]+)"', row).group(1) for pk, row in rows}

    first = member.get(reverse("whatsapp_send:bulk", args=[bulk.pk]))
    assert outcomes(first) == {
        good[0].pk: "delivered",
        good[1].pk: "queued",
        good[2].pk: "queued",
        others["draft"].pk: "skipped",
    }
    assert f'<a href="{document_url(good[0])}">{good[0].number}</a>' in page(first)
    assert "1–4 of 7" in page(first)
    second = member.get(reverse("whatsapp_send:bulk", args=[bulk.pk]) + "?page=2")
    assert set(outcomes(second)) == {others["void"].pk, others["opted_out"].pk, others["bad_number"].pk}
    assert "only issued documents can be sent" in page(second)
    # The poll keeps the page it is on.
    assert set(outcomes(fragment(member, bulk, page=2))) == set(outcomes(second))


def test_a_bulk_send_that_queued_nothing_is_complete(member, template, mixed) -> None:
    _good, others = mixed
    start(member, Module.INVOICES, [others["draft"].pk], template=template)
    bulk = BulkSend.objects.get()
    bulk_send_run(bulk_id=bulk.pk)
    response = fragment(member, bulk)
    assert percent(response) == 100 and not polling(response)
    assert count(response, "skipped") == 1


def test_a_poll_after_the_session_expired_redirects_the_page_to_the_login(member, template, mixed) -> None:
    good, _others = mixed
    start(member, Module.INVOICES, [good[0].pk], template=template)
    bulk = BulkSend.objects.get()
    member.logout()

    response = fragment(member, bulk)
    page_url = reverse("whatsapp_send:bulk", args=[bulk.pk])
    assert response.status_code == 204 and not response.content
    location = urlsplit(response["HX-Redirect"])
    assert location.path == reverse("login") and parse_qs(location.query) == {"next": [page_url]}
    # Without htmx it is the usual redirect to the login page.
    assert member.get(reverse("whatsapp_send:bulk_progress", args=[bulk.pk])).status_code == 302


def test_another_organization_s_bulk_send_is_not_found(member, user, org, template, mixed) -> None:
    good, _others = mixed
    foreign = make_organization(name="Globex")
    theirs = BulkSend.objects.create(organization=foreign, target="documents", module="invoices", total=1)

    assert member.get(reverse("whatsapp_send:bulk", args=[theirs.pk])).status_code == 404
    assert fragment(member, theirs).status_code == 404
    start(member, Module.INVOICES, [good[0].pk], template=template)
    listed = page(member.get(reverse("whatsapp_send:bulk_list")))
    assert f'data-bulk="{BulkSend.objects.get(organization=org).pk}"' in listed
    assert f'data-bulk="{theirs.pk}"' not in listed


# --- Recent bulk sends --------------------------------------------------------------------------------


def test_the_recent_bulk_sends_link_to_their_progress_in_a_constant_number_of_queries(
    member, org, template, mixed, django_assert_max_num_queries
) -> None:
    good, others = mixed
    start(member, Module.INVOICES, all_ids(good, others), key="a", template=template)
    bulk_send_run(bulk_id=BulkSend.objects.get().pk)
    for key in ("b", "c"):
        start(member, Module.INVOICES, [good[0].pk], key=key, template=template)

    with django_assert_max_num_queries(8):
        response = member.get(reverse("whatsapp_send:bulk_list"))
    text = page(response)
    rows = re.findall(r'data-bulk="(\d+)"', text)
    assert [int(pk) for pk in rows] == list(
        BulkSend.objects.order_by("-created_at", "-pk").values_list("pk", flat=True)
    )
    done = BulkSend.objects.get(state=BulkSend.State.DONE)
    assert f'href="{reverse("whatsapp_send:bulk", args=[done.pk])}"' in text
    row = re.search(rf'data-bulk="{done.pk}">(.*?)</tr>', text, re.S).group(1)
    assert [int(n) for n in re.findall(r'class="num">(\d+)<', row)] == [7, 3, 4]
    assert Reservation.objects.filter(organization=org).count() == 3


# --- Select all matching, large selections, and the recent list's delivery figures --------------------


def overdue_invoice(org, **kwargs):
    today = org.today()
    return make_document(
        org, date=today - datetime.timedelta(days=40), due_date=today - datetime.timedelta(days=10), **kwargs
    )


def select_matching(response) -> tuple[int, str, str]:
    """The list's "Select all N matching": N, the filter it posts as ``matching`` and the form it
    belongs to (disabled until chosen, as the page renders it)."""
    text = response.content.decode()
    total = re.search(r'data-select-matching="(\d+)"', text).group(1)
    field = re.search(r'<input type="hidden" name="matching" value="([^"]*)" form="([^"]+)" disabled', text)
    assert f"Select all {total} matching" in plain(page(response))
    return int(total), html.unescape(field.group(1)), field.group(2)


def hidden_ids(response) -> list[int]:
    value = re.search(r'<input type="hidden" name="ids" value="([\d,]*)"', response.content.decode()).group(1)
    return [int(pk) for pk in value.split(",") if pk]


def test_select_all_matching_sends_the_overdue_filter_and_the_summary_resolves_it_in_this_organization(
    member, org, template, monkeypatch
) -> None:
    monkeypatch.setattr("books.views.documents.PAGE_SIZE", 2)
    overdue = [overdue_invoice(org) for _ in range(3)]
    make_document(org)  # not due yet
    overdue_invoice(make_organization(name="Globex"))  # overdue, but another organization's
    response = member.get(reverse("books:document_list", args=[INVOICE.slug]), {"status": "overdue"})
    form = list_form(response, "document-bulk-form")
    assert len(form.boxes) == 2  # the page

    total, matching, form_id = select_matching(response)
    assert (total, matching, form_id) == (3, "status=overdue", "document-bulk-form")

    # "Select all 3 matching", then Send → WhatsApp message: the page's ticked boxes and the filter.
    posted = member.post(form.actions["whatsapp_bulk"], {"selected": form.boxes, "matching": matching})
    assert posted.status_code == 302
    assert parse_qs(urlsplit(posted["Location"]).query) == {"matching": ["status=overdue"]}
    summary = member.get(posted["Location"])
    assert (count(summary, "selected"), count(summary, "will-send"), count(summary, "skipped")) == (3, 3, 0)
    assert hidden_ids(summary) == [d.pk for d in sorted(overdue, key=lambda d: (d.date, d.pk), reverse=True)]

    start(member, Module.INVOICES, hidden_ids(summary), key=key_of(summary))
    assert sorted(BulkSend.objects.get().target_ids) == sorted(d.pk for d in overdue)


@pytest.mark.parametrize("kind", sorted(KIND_MODULES))
def test_select_all_matching_resolves_every_document_list_s_filter_to_its_own_kind(member, org, kind) -> None:
    spec = KINDS[kind]
    sharma = make_contact(org, name="Sharma Traders", contact_type=spec.party)
    amount = {"amount": Decimal("500.00")} if spec.is_payment else {}
    ours = [make_document(org, kind=kind, contact=sharma, **amount) for _ in range(2)]
    make_document(org, kind=kind, **amount)  # another contact: not matched by the search
    other_kind = next(k for k in KIND_MODULES if k != kind and KINDS[k].party == spec.party)
    make_document(
        org, kind=other_kind, contact=sharma, **({"amount": Decimal("1")} if KINDS[other_kind].is_payment else {})
    )

    posted = member.post(reverse("whatsapp_send:bulk_new", args=[KIND_MODULES[kind]]), {"matching": "q=sharma"})
    summary = member.get(posted["Location"])
    assert sorted(hidden_ids(summary)) == sorted(d.pk for d in ours)


def test_select_all_matching_on_vendors_resolves_the_search_to_this_organization_s_vendors(
    member, org, account, monkeypatch
) -> None:
    make_approved_template(account, Module.VENDORS)
    monkeypatch.setattr("books.views.contacts.PAGE_SIZE", 2)
    kumars = [
        make_contact(org, contact_type=ContactType.VENDOR, name=f"Kumar Supplies {n}", persons=2) for n in range(3)
    ]
    make_contact(org, contact_type=ContactType.VENDOR, name="Zenith Labs")
    make_contact(org, name="Kumar Retail")  # a customer
    make_contact(make_organization(name="Globex"), contact_type=ContactType.VENDOR, name="Kumar Globex")
    response = member.get(reverse("books:vendor_list"), {"q": "kumar"})
    form = list_form(response, "contact-bulk-form")

    total, matching, form_id = select_matching(response)
    assert (total, matching, form_id) == (3, "q=kumar", "contact-bulk-form")

    posted = member.post(form.actions["whatsapp_bulk_notice"], {"selected": form.boxes, "matching": matching})
    summary = member.get(posted["Location"])
    assert (count(summary, "selected"), count(summary, "will-send")) == (3, 3)
    assert hidden_ids(summary) == [v.pk for v in kumars]  # the list's order, each vendor once


def test_select_all_matching_more_than_a_bulk_send_takes_is_refused_with_both_numbers(
    member, org, account, monkeypatch
) -> None:
    make_approved_template(account, Module.PAYMENT_REMINDERS)
    monkeypatch.setattr(bulk_views, "MAX_SELECTION", 2)
    for _ in range(3):
        overdue_invoice(org)
    make_document(org)

    response = member.post(
        reverse("whatsapp_send:bulk_new", args=[Module.PAYMENT_REMINDERS]), {"matching": "status=overdue"}
    )
    assert response.status_code == 200 and refusal_code(response) == "selection_too_large"
    assert "3 match this list; a bulk send takes at most 2." in page(response)
    assert f'href="{reverse("books:document_list", args=[INVOICE.slug])}" data-refusal-fix' in page(response)
    assert send_disabled(response) and hidden_ids(response) == []

    # At the cap it is planned.
    monkeypatch.setattr(bulk_views, "MAX_SELECTION", 3)
    summary = member.get(member.post(response.request["PATH_INFO"], {"matching": "status=overdue"})["Location"])
    assert refusal_code(summary) is None and count(summary, "selected") == 3


def test_a_template_change_on_a_large_selection_posts_the_ids_instead_of_a_long_url(member, org, account, template):
    other = make_approved_template(account, Module.INVOICES, name="invoice_short", default=False)
    invoices = [make_document(org) for _ in range(3)]
    # 800 ids: their query alone is far past gunicorn's 4,094-byte request line.
    ids = [d.pk for d in invoices] + list(range(10_000_000, 10_000_797))
    bulk_new = reverse("whatsapp_send:bulk_new", args=[Module.INVOICES])

    summary = member.post(bulk_new, {"selected": ids})  # too long for a URL: answered with the summary
    assert summary.status_code == 200 and hidden_ids(summary) == ids
    form = re.search(r"<form[^>]*data-bulk-form[^>]*>", summary.content.decode()).group(0)
    assert f'hx-post="{bulk_new}"' in form and "hx-get" not in form
    assert 'hx-params="ids,template,from_date,to_date"' in form and 'hx-select="#bulk-summary"' in form

    # The select's change, as htmx sends it: a POST of the ids and the template, no query string.
    changed = member.post(
        bulk_new, {"ids": ",".join(map(str, ids)), "template": other.pk}, headers={"HX-Request": "true"}
    )
    assert changed.status_code == 200
    assert f'<option value="{other.pk}" selected>invoice_short' in page(changed)
    assert (count(changed, "selected"), count(changed, "will-send")) == (800, 3)

    # Without JavaScript, "Update summary" posts the same form: a short selection comes back as a URL
    # keeping the template, a long one is answered with the summary.
    short = member.post(bulk_new, {"ids": str(invoices[0].pk), "template": other.pk, "key": "k"})
    assert parse_qs(urlsplit(short["Location"]).query) == {"ids": [str(invoices[0].pk)], "template": [str(other.pk)]}
    long = member.post(bulk_new, {"ids": ",".join(map(str, ids)), "template": other.pk, "key": "k"})
    assert long.status_code == 200 and f'<option value="{other.pk}" selected>invoice_short' in page(long)


def test_the_recent_bulk_sends_show_delivery_figures_and_whether_still_sending_in_constant_queries(
    member, template, mixed
) -> None:
    good, _others = mixed

    def listed():
        with CaptureQueriesContext(connection) as queries:
            response = member.get(reverse("whatsapp_send:bulk_list"))
        text = response.content.decode()
        rows = {}
        for pk, row in re.findall(r'data-bulk="(\d+)">(.*?)</tr>', text, re.S):
            figures = dict(re.findall(r'data-count="([a-z-]+)">(\d+)<', row))
            state = re.search(r'data-bulk-state="([a-z]+)">([^<]+)<', row).groups()
            rows[int(pk)] = ({name: int(n) for name, n in figures.items()}, state)
        return rows, len(queries)

    start(member, Module.INVOICES, [d.pk for d in good], key="a", template=template)
    done = BulkSend.objects.get()
    bulk_send_run(bulk_id=done.pk)
    first, second, third = (Message.objects.get(document=d) for d in good)
    Message.objects.filter(pk=first.pk).update(status=MessageStatus.READ)
    Message.objects.filter(pk=second.pk).update(status=MessageStatus.DELIVERED)
    Message.objects.filter(pk=third.pk).update(status=MessageStatus.FAILED)
    one_row, one_row_queries = listed()
    assert one_row == {done.pk: ({"delivered": 2, "failed": 1, "on-the-way": 0}, ("complete", "Finished"))}

    start(member, Module.INVOICES, [d.pk for d in good[:2]], key="b", template=template)
    sending = BulkSend.objects.latest("pk")
    bulk_send_run(bulk_id=sending.pk)
    Message.objects.filter(bulk=sending, document=good[0]).update(status=MessageStatus.SENT)
    start(member, Module.INVOICES, [good[2].pk], key="c", template=template)
    waiting = BulkSend.objects.latest("pk")
    rows, queries = listed()
    assert rows == {
        done.pk: ({"delivered": 2, "failed": 1, "on-the-way": 0}, ("complete", "Finished")),
        sending.pk: ({"delivered": 0, "failed": 0, "on-the-way": 2}, ("sending", "Sending")),
        waiting.pk: ({"delivered": 0, "failed": 0, "on-the-way": 0}, ("sending", "Waiting")),
    }
    assert queries == one_row_queries


# --- The template asked for, more ticked than a bulk send takes, reasons in the viewer's language ----


def _deleted(org, account) -> str:
    """Deleted at Meta: the row stays, as the template lifecycle leaves it."""
    chosen = make_approved_template(account, Module.INVOICES, name="invoice_gone", default=False)
    MessageTemplate.objects.filter(pk=chosen.pk).update(status=TemplateStatus.DELETED)
    return str(chosen.pk)


def _removed(org, account) -> str:
    chosen = make_approved_template(account, Module.INVOICES, name="invoice_draft_gone", default=False)
    pk = chosen.pk
    chosen.delete()
    return str(pk)


def _another_organization_s(org, account) -> str:
    return str(make_approved_template(make_account(make_organization(name="Globex")), Module.INVOICES).pk)


@pytest.mark.parametrize(
    "unusable",
    [
        _deleted,
        _removed,
        _another_organization_s,
        pytest.param(lambda org, account: "999999", id="_unknown"),
        pytest.param(lambda org, account: "x", id="_not_an_id"),
    ],
)
def test_a_template_id_that_names_no_usable_template_is_refused_never_replaced_by_the_default(
    member, org, account, template, mixed, unusable
) -> None:
    good, _others = mixed
    ids = [d.pk for d in good]
    chosen = unusable(org, account)

    summary = member.get(summary_url(Module.INVOICES, ids, template=chosen))
    assert summary.status_code == 200 and refusal_code(summary) == "template_not_found" and send_disabled(summary)
    assert "The chosen message template no longer exists. Choose another one." in page(summary)
    fix = urlsplit(re.search(r'href="([^"]+)" data-refusal-fix', page(summary)).group(1))
    assert fix.path == reverse("whatsapp_send:bulk_new", args=[Module.INVOICES])
    assert parse_qs(fix.query) == {"ids": [",".join(map(str, ids))]}  # the module's default, once asked for

    data = {"ids": ",".join(map(str, ids)), "key": key_of(summary), "template": chosen}
    response = member.post(reverse("whatsapp_send:bulk_start", args=[Module.INVOICES]), data)
    assert response.status_code == 400 and refusal_code(response) == "template_not_found"
    assert "Nothing was sent." in page(response)
    assert not BulkSend.objects.exists() and not Message.objects.exists()


def test_a_template_deleted_between_the_summary_and_send_is_refused_on_send(member, account, template, mixed) -> None:
    good, _others = mixed
    chosen = make_approved_template(account, Module.INVOICES, name="invoice_short", default=False)
    summary = member.get(summary_url(Module.INVOICES, [good[0].pk], template=chosen.pk))
    assert f'<option value="{chosen.pk}" selected>invoice_short' in page(summary) and not send_disabled(summary)

    MessageTemplate.objects.filter(pk=chosen.pk).update(status=TemplateStatus.DELETED)
    response = start(member, Module.INVOICES, [good[0].pk], key=key_of(summary), template=chosen)

    assert response.status_code == 400 and refusal_code(response) == "template_not_found"
    assert not BulkSend.objects.exists()


def test_without_a_template_id_the_module_s_default_is_sent(member, template, mixed) -> None:
    good, _others = mixed
    url = reverse("whatsapp_send:bulk_start", args=[Module.INVOICES])
    for key, chosen in (("a", {}), ("b", {"template": ""})):
        assert member.post(url, {"ids": str(good[0].pk), "key": key, **chosen}).status_code == 302
    assert [bulk.template for bulk in BulkSend.objects.all()] == [template, template]


def test_more_ids_than_a_bulk_send_takes_are_refused_on_the_summary_and_on_send(member, template) -> None:
    ticked = [str(pk) for pk in range(1, MAX_SELECTION + 2)]
    # The summary's own form carries its ids in one field (a list's checkboxes stop at Django's
    # DATA_UPLOAD_MAX_NUMBER_FIELDS long before).
    summary = member.post(reverse("whatsapp_send:bulk_new", args=[Module.INVOICES]), {"ids": ",".join(ticked)})

    assert summary.status_code == 200 and refusal_code(summary) == "selection_too_large" and send_disabled(summary)
    assert f"Select at most {MAX_SELECTION} at a time." in page(summary)
    assert f'href="{reverse("books:document_list", args=[INVOICE.slug])}" data-refusal-fix' in page(summary)
    response = start(member, Module.INVOICES, ticked, key=key_of(summary))
    assert response.status_code == 400 and refusal_code(response) == "selection_too_large"
    assert not BulkSend.objects.exists()


def speak(member, language: str) -> None:
    """The language switcher of the page's header."""
    assert member.post(reverse("set_language"), {"language": language, "next": "/"}).status_code == 302


def test_the_progress_page_gives_the_skipped_reasons_in_the_viewer_s_language(member, template, mixed) -> None:
    good, others = mixed
    foreign = make_document(make_organization(name="Globex"))
    start(member, Module.INVOICES, [good[0].pk, others["opted_out"].pk, foreign.pk], template=template)
    bulk = BulkSend.objects.get()
    bulk_send_run(bulk_id=bulk.pk)  # the worker, in the default language
    contact = others["opted_out"].contact.display_name

    speak(member, "es")
    for response in (member.get(reverse("whatsapp_send:bulk", args=[bulk.pk])), fragment(member, bulk)):
        text = page(response)
        assert text.count(f"WhatsApp no está activado como canal de comunicación para {contact}.") == 2  # group, row
        assert text.count("No se encontró en esta organización.") == 2
        assert "WhatsApp is not enabled" not in text and "Not found in this organization." not in text

    speak(member, "en")
    text = page(member.get(reverse("whatsapp_send:bulk", args=[bulk.pk])))
    assert f"WhatsApp is not enabled as a communication channel for {contact}." in text
    assert "Not found in this organization." in text


def test_a_bulk_send_recorded_with_english_reasons_alone_still_reads_sensibly_in_spanish(member, org, template) -> None:
    skipped = [
        {"id": 7, "label": "INV-7", "code": "recipient_invalid_number", "reason": "Ravi has no valid mobile number."},
        {"id": 999_999, "label": "999999", "code": "not_found", "reason": "Not found in this organization."},
    ]
    bulk = BulkSend.objects.create(
        organization=org,
        target="documents",
        module="invoices",
        template=template,
        target_ids=[7, 999_999],
        total=2,
        state=BulkSend.State.DONE,
        skipped=skipped,
    )

    speak(member, "es")
    text = page(member.get(reverse("whatsapp_send:bulk", args=[bulk.pk])))
    assert "Número de móvil no válido" in text and "Ravi has no valid mobile number." in text  # label, as recorded
    assert "No se encontró en esta organización." in text  # a whole message of the catalog


# --- Statements: the period ----------------------------------------------------------------------------

MARCH = (datetime.date(2025, 3, 1), datetime.date(2025, 3, 31))


@pytest.fixture
def statement_customers(org, account):
    make_approved_template(account, Module.CUSTOMER_STATEMENTS)
    return [make_contact(org) for _ in range(2)]


def period_inputs(response) -> tuple[str, ...] | None:
    """The From/To date inputs' values, or None when the summary has none."""
    text = response.content.decode()
    found = [
        re.search(rf'<input type="date" name="{name}"[^>]*value="([^"]*)"', text) for name in ("from_date", "to_date")
    ]
    return tuple(match.group(1) for match in found) if all(found) else None


def period_error(response) -> str | None:
    found = re.search(r'data-period-error="([a-z_]+)"', response.content.decode())
    return found.group(1) if found else None


def covered(org, start: datetime.date, end: datetime.date) -> str:
    return f"Each statement covers {date_format(start, organization=org)} to {date_format(end, organization=org)}."


def replan(member, module: str, ids, **fields):
    """The summary's htmx POST on a change of the template or the dates."""
    data = {"ids": ",".join(map(str, ids)), **fields}
    return member.post(reverse("whatsapp_send:bulk_new", args=[module]), data, headers={"HX-Request": "true"})


def test_a_statement_summary_s_period_is_chosen_replanned_and_sent_with_every_message(
    member, org, statement_customers
) -> None:
    ids = [c.pk for c in statement_customers]
    period = {"from_date": "2025-03-01", "to_date": "2025-03-31"}
    summary = member.get(summary_url(Module.CUSTOMER_STATEMENTS, ids))

    changed = replan(member, Module.CUSTOMER_STATEMENTS, ids, **period)
    assert changed.status_code == 200 and period_inputs(changed) == ("2025-03-01", "2025-03-31")
    assert covered(org, *MARCH) in plain(page(changed)) and count(changed, "will-send") == 2
    assert period_error(changed) is None and not send_disabled(changed)
    # Without JavaScript, "Update summary" comes back as the summary's URL with the dates.
    reloaded = member.post(
        reverse("whatsapp_send:bulk_new", args=[Module.CUSTOMER_STATEMENTS]), {"ids": ids[0], **period}
    )
    assert parse_qs(urlsplit(reloaded["Location"]).query) == {
        "ids": [str(ids[0])],
        "from_date": ["2025-03-01"],
        "to_date": ["2025-03-31"],
    }

    response = start(member, Module.CUSTOMER_STATEMENTS, ids, key=key_of(summary), **period)
    bulk = BulkSend.objects.get()
    assert response["Location"] == reverse("whatsapp_send:bulk", args=[bulk.pk])
    assert (bulk.module, bulk.statement_from, bulk.statement_to) == (Module.CUSTOMER_STATEMENTS, *MARCH)
    bulk_send_run(bulk_id=bulk.pk)
    assert set(Message.objects.values_list("contact_id", "statement_from", "statement_to")) == {
        (c.pk, *MARCH) for c in statement_customers
    }
    assert covered(org, *MARCH) in plain(page(member.get(response["Location"])))


def test_a_statement_summary_covers_this_month_up_to_today_unless_told_otherwise(
    member, org, statement_customers
) -> None:
    ids = [c.pk for c in statement_customers]
    today = org.today()
    month = (today.replace(day=1), today)

    summary = member.get(summary_url(Module.CUSTOMER_STATEMENTS, ids))

    assert period_inputs(summary) == (month[0].isoformat(), month[1].isoformat())
    assert f'max="{today.isoformat()}"' in page(summary) and covered(org, *month) in plain(page(summary))
    # Dates left blank are the same default.
    start(member, Module.CUSTOMER_STATEMENTS, ids, key=key_of(summary), from_date="", to_date="")
    bulk = BulkSend.objects.get()
    assert (bulk.statement_from, bulk.statement_to) == month
    bulk_send_run(bulk_id=bulk.pk)
    assert set(Message.objects.values_list("statement_from", "statement_to")) == {month}


@pytest.mark.parametrize(
    ("period", "code", "message"),
    [
        ({"from_date": "2025-02-30", "to_date": "2025-03-31"}, "invalid_date", "Enter a valid date."),
        ({"from_date": "March", "to_date": ""}, "invalid_date", "Enter a valid date."),
        (
            {"from_date": "2025-03-31", "to_date": "2025-03-01"},
            "invalid_period",
            "The statement period ends before it starts.",
        ),
        ({"from_date": "", "to_date": "2999-01-01"}, "period_in_future", "The statement period can't end after today."),
    ],
    ids=["no-such-day", "not-a-date", "ends-before-it-starts", "ends-after-today"],
)
def test_a_bad_period_is_an_error_at_the_dates_send_is_disabled_and_nothing_is_started(
    member, statement_customers, period, code, message
) -> None:
    ids = [c.pk for c in statement_customers]

    summary = replan(member, Module.CUSTOMER_STATEMENTS, ids, **period)

    assert period_error(summary) == code and message in page(summary) and send_disabled(summary)
    assert period_inputs(summary) == (period["from_date"], period["to_date"])  # as typed, to be corrected
    assert refusal_code(summary) is None  # said at the dates, not again in the banner

    response = start(member, Module.CUSTOMER_STATEMENTS, ids, key="k-bad", **period)
    assert response.status_code == 400 and period_error(response) == code and send_disabled(response)
    assert refusal_code(response) == code and "Nothing was sent." in page(response)
    assert not BulkSend.objects.exists()


def test_a_notice_module_shows_no_dates_and_ignores_any_posted(member, org, account) -> None:
    make_approved_template(account, Module.CUSTOMERS)
    customer = make_contact(org)

    summary = member.get(summary_url(Module.CUSTOMERS, [customer.pk]))
    assert period_inputs(summary) is None and "data-statement-period" not in page(summary)

    start(member, Module.CUSTOMERS, [customer.pk], key=key_of(summary), from_date="2025-03-31", to_date="2025-03-01")
    bulk = BulkSend.objects.get()
    assert (bulk.module, bulk.statement_from, bulk.statement_to) == (Module.CUSTOMERS, None, None)
    bulk_send_run(bulk_id=bulk.pk)
    assert list(Message.objects.values_list("statement_from", "statement_to")) == [(None, None)]


# --- Bulk payment reminders from the invoice list ----------------------------------------------------


def test_reminders_on_ticked_overdue_invoices_queue_payment_reminders_and_skip_the_paid_one(
    member, org, account
) -> None:
    reminder = make_approved_template(account, Module.PAYMENT_REMINDERS)
    issued, due = org.today() - datetime.timedelta(days=40), org.today() - datetime.timedelta(days=10)
    overdue = [make_document(org, date=issued, due_date=due) for _ in range(2)]
    paid = make_document(org, date=issued, due_date=due)
    Document.objects.filter(pk=paid.pk).update(balance=Decimal("0"), status=DocumentStatus.PAID)
    form = list_form(
        member.get(reverse("books:document_list", args=[INVOICE.slug]), {"status": "overdue"}), "document-bulk-form"
    )
    ticked = [str(d.pk) for d in (*overdue, paid)]

    response = member.post(form.actions["whatsapp_bulk_reminder"], {"selected": ticked})
    summary = member.get(response["Location"])
    assert (count(summary, "will-send"), count(summary, "skipped")) == (2, 1)
    assert skipped_groups(summary) == {"nothing_due": {paid.pk}}
    sent = start(member, Module.PAYMENT_REMINDERS, [int(pk) for pk in ticked], key=key_of(summary))

    assert sent.status_code == 302
    bulk = BulkSend.objects.get(organization=org)
    assert (bulk.module, bulk.template) == (Module.PAYMENT_REMINDERS, reminder)
    bulk_send_run(bulk_id=bulk.pk)
    messages = Message.objects.filter(bulk=bulk)
    assert {m.document_id for m in messages} == {d.pk for d in overdue}
    assert {(m.module, m.template_id) for m in messages} == {(Module.PAYMENT_REMINDERS, reminder.pk)}
