"""The accountant's WhatsApp pages, through the views as a browser uses them: the Send page from
every entry point (document, reminders, contact, statement, "Save and send"), each rule that
refuses a send shown before Send, a send that queues messages and reserves credits once however
often it is posted, the Comments & History card that refreshes itself until every message is
final, the contact's "Mails & messages" tab, the read-only chat, the Document admin action, and
who may see what.

Meta is not involved: ``notification_send`` writes rows and reservations, and dispatch is only
enqueued on commit (these tests never commit). Credits are the real ``credits`` services.
"""

from __future__ import annotations

import datetime
import html
import re
from decimal import Decimal

import pytest
from django.contrib.admin.sites import site as admin_site
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from books.choices import ContactType, DocumentKind, DocumentStatus
from books.history import document_url
from books.kinds import KINDS
from books.models import Document, Role
from books.permissions import Perm
from books.services.organizations import membership_add
from credits.formatting import credits_format
from credits.models import Reservation
from credits.selectors import credit_balance_get
from credits.services import credits_adjust, credits_price
from templates_mgmt.choices import Module, TemplateStatus
from templates_mgmt.models import ModuleSetting
from templates_mgmt.services import template_create
from tests.books.factories import UserFactory, make_contact, make_document, make_organization
from tests.whatsapp.factories import make_account, make_approved_template, make_message, module_template_fields
from whatsapp.choices import AccountStatus, Direction, MessageStatus, MessageType
from whatsapp.models import Message, NotificationRequest, PhoneNumber

pytestmark = pytest.mark.django_db

INVOICE = KINDS[DocumentKind.INVOICE]
TODAY_MINUS = datetime.timedelta(days=40)
#: Bodies with enough words around their fields for Meta's ratio rule.
BODIES = {
    Module.INVOICES: "Dear {{customer_name}}, invoice {{invoice_number}} for {{invoice_total}} is due on "
    "{{due_date}}. Please pay on time to avoid late fees.",
    Module.PAYMENT_REMINDERS: "Dear {{customer_name}}, invoice {{invoice_number}} still has {{balance_due}} to pay "
    "since {{due_date}}. Please pay it soon to avoid late fees.",
    Module.CUSTOMERS: "Dear {{customer_name}}, everyone at {{organization_name}} wishes you and your team a happy "
    "and prosperous new year.",
    Module.VENDORS: "Dear {{vendor_name}}, please note that {{organization_name}} has moved to a new billing "
    "address starting next month.",
}


def approved(account, module: str = Module.INVOICES, **overrides):
    """An approved template of ``module``, the module's default unless told, the module enabled."""
    if module in BODIES:
        overrides.setdefault("body", BODIES[module])
    return make_approved_template(account, module, **overrides)


SENT_AT = datetime.datetime(2026, 3, 12, 8, 30, tzinfo=datetime.UTC)  # 14:00 in Asia/Kolkata


# --- Set-up ----------------------------------------------------------------------------------------


@pytest.fixture
def user():
    return UserFactory(username="meera")


@pytest.fixture
def org(user):
    organization = make_organization(name="Sharma Accounting", user=user, role="Accountant")
    credits_adjust(organization=organization, amount=Decimal("50"), note="opening", user=None)
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
    return approved(account, Module.INVOICES)


@pytest.fixture
def customer(org):
    """Ravi Traders with two people on WhatsApp: Person0 (primary) and Person1."""
    return make_contact(org, name="Ravi Traders", persons=2)


@pytest.fixture
def invoice(org, customer):
    """An issued invoice, overdue by 25 days, shared with the second person only."""
    today = org.today()
    second = customer.persons.order_by("id")[1]
    return make_document(
        org,
        contact=customer,
        date=today - TODAY_MINUS,
        due_date=today - datetime.timedelta(days=25),
        share_with=[second],
    )


def send_url(document, **query) -> str:
    url = reverse("whatsapp_send:document", args=[document.pk])
    if query:
        url += "?" + "&".join(f"{key}={value}" for key, value in query.items())
    return url


def page(response) -> str:
    return html.unescape(response.content.decode())


def price(person) -> Decimal:
    """What one utility message to ``person`` costs (the price table's, whatever it holds)."""
    return credits_price(organization=person.contact.organization, category="utility", phone=person.mobile)


def credits_text(value: Decimal) -> str:
    """Credits as the page writes them (Babel; these small amounts read the same in every English locale)."""
    return credits_format(value, organization=None)


def plain(text: str) -> str:
    """The page's text without tags, whitespace collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", text).split())


def checked_people(response) -> set[int]:
    return {
        int(value) for value in re.findall(r'name="contact_persons" value="(\d+)" checked', response.content.decode())
    }


def token_of(response) -> str:
    return re.search(r'name="token" value="([^"]+)"', response.content.decode()).group(1)


def refusal_code(response) -> str | None:
    found = re.search(r'data-refusal="([a-z_]+)"', response.content.decode())
    return found.group(1) if found else None


def send_disabled(response) -> bool:
    return bool(re.search(r"<button[^>]*data-send[^>]*disabled", response.content.decode()))


# --- The Send page ---------------------------------------------------------------------------------


def test_the_send_page_preselects_the_default_template_and_the_share_with_people(
    member, account, template, customer, invoice
) -> None:
    other = approved(account, Module.INVOICES, name="invoice_short", default=False)
    first, second = customer.persons.order_by("id")

    response = member.get(send_url(invoice))

    assert response.status_code == 200
    text = page(response)
    assert f'<option value="{template.pk}" selected>{template.name} (en) · default</option>' in text
    assert f'<option value="{other.pk}">' in text
    assert checked_people(response) == {second.pk}  # the invoice's "Share with", not everybody
    assert f'value="{first.pk}"' in text
    assert f"Dear Ravi Traders, invoice {invoice.number}" in text  # the preview bubble, real values
    assert f"{invoice.number}.pdf" in text  # its PDF header
    assert f"IM credits needed: {credits_text(price(second))} · available: 50" in plain(text)
    assert refusal_code(response) is None and not send_disabled(response)


def test_choosing_another_template_refreshes_the_preview_through_htmx(
    member, account, template, customer, invoice
) -> None:
    other = make_approved_template(
        account,
        Module.INVOICES,
        name="invoice_short",
        default=False,
        body="Hi {{customer_name}}, your invoice {{invoice_number}} is ready to download now. Thanks.",
    )
    second = customer.persons.order_by("id")[1]

    response = member.get(
        send_url(invoice),
        {"template": other.pk, "contact_persons": [second.pk], "recipients_chosen": "1"},
        HTTP_HX_REQUEST="true",
    )

    assert response.status_code == 200
    text = page(response)
    assert text.startswith('<div id="send-plan"') and "<html" not in text  # the partial only
    assert f"Hi Ravi Traders, your invoice {invoice.number} is ready" in text
    assert f'<option value="{other.pk}" selected>' in text


def test_unticking_everybody_is_a_choice_that_disables_send(member, template, invoice) -> None:
    response = member.get(send_url(invoice), {"recipients_chosen": "1"}, HTTP_HX_REQUEST="true")

    assert checked_people(response) == set()
    assert refusal_code(response) == "no_recipients" and send_disabled(response)


def test_a_link_s_contact_persons_are_preselected(member, template, customer, invoice) -> None:
    first, second = customer.persons.order_by("id")

    response = member.get(send_url(invoice, contact_persons=f"{first.pk},{second.pk}"))

    assert checked_people(response) == {first.pk, second.pk}


def test_an_unreachable_person_is_disabled_with_the_reason(member, template, customer, invoice) -> None:
    first = customer.persons.order_by("id")[0]
    first.whatsapp_enabled = False
    first.save()

    text = page(member.get(send_url(invoice)))

    box = re.search(rf'<input type="checkbox" name="contact_persons" value="{first.pk}"[^>]*>', text).group()
    assert "disabled" in box and "checked" not in box
    assert f"WhatsApp is not enabled as a communication channel for {first.name}." in text


def test_reminders_use_the_payment_reminders_module(member, account, template, invoice) -> None:
    reminder = approved(account, Module.PAYMENT_REMINDERS)

    response = member.get(send_url(invoice, module=Module.PAYMENT_REMINDERS))

    text = page(response)
    assert f'<option value="{reminder.pk}" selected>' in text and f'value="{template.pk}"' not in text
    assert "Payment reminders" in text
    assert '<input type="hidden" name="module" value="payment_reminders">' in text


def test_sending_a_reminder_from_the_invoice_queues_a_payment_reminder(member, account, template, invoice) -> None:
    reminder = approved(account, Module.PAYMENT_REMINDERS)
    url = send_url(invoice, module=Module.PAYMENT_REMINDERS)
    form = member.get(url)
    person = invoice.share_with.get()

    response = member.post(
        url,
        {
            "token": token_of(form),
            "module": Module.PAYMENT_REMINDERS,
            "template": reminder.pk,
            "contact_persons": [person.pk],
        },
    )

    assert response.status_code == 302
    message = Message.objects.get(document=invoice)
    assert (message.module, message.template, message.contact_person) == (Module.PAYMENT_REMINDERS, reminder, person)


@pytest.mark.parametrize(
    ("module", "contact_type"),
    [(Module.CUSTOMERS, ContactType.CUSTOMER), (Module.VENDORS, ContactType.VENDOR)],
)
def test_a_contact_gets_a_notice_of_its_module(member, org, account, module, contact_type) -> None:
    approved(account, module)
    contact = make_contact(org, contact_type=contact_type, name="Kumar Textiles")

    response = member.get(reverse("whatsapp_send:contact", args=[contact.pk]))

    assert response.status_code == 200 and refusal_code(response) is None
    assert "Sharma Accounting" in page(response)  # {{organization_name}} in the preview


def test_a_statement_is_sent_for_the_tab_s_period(member, org, account, customer) -> None:
    approved(account, Module.CUSTOMER_STATEMENTS)
    url = reverse("whatsapp_send:statement", args=[customer.pk]) + "?from=2026-03-01&to=2026-03-31"

    response = member.get(url)

    assert response.status_code == 200 and refusal_code(response) is None
    text = page(response)
    assert '<input type="hidden" name="from" value="2026-03-01">' in text
    assert '<input type="hidden" name="to" value="2026-03-31">' in text
    assert "Statement of Ravi Traders, 01/03/2026 to 31/03/2026" in text


def test_a_statement_period_that_ends_before_it_starts_is_not_found(member, account, customer) -> None:
    approved(account, Module.CUSTOMER_STATEMENTS)
    url = reverse("whatsapp_send:statement", args=[customer.pk]) + "?from=2026-03-31&to=2026-03-01"
    assert member.get(url).status_code == 404


# --- Each rule, before Send --------------------------------------------------------------------------


def _module_off(ctx):
    ModuleSetting.objects.filter(organization=ctx["org"], module=Module.INVOICES).update(enabled=False)


def _not_approved(ctx):
    pending = template_create(
        organization=ctx["org"],
        waba_id=ctx["account"].waba_id,
        **module_template_fields(Module.INVOICES, name="invoice_pending", body=BODIES[Module.INVOICES]),
    )
    pending.status = TemplateStatus.PENDING
    pending.save()
    return {"template": pending.pk}


def _not_opted_in(ctx):
    person = ctx["invoice"].share_with.get()
    person.whatsapp_enabled = False
    person.save()
    return {"contact_persons": person.pk}


def _invalid_number(ctx):
    person = ctx["invoice"].share_with.get()
    person.mobile = "12345"
    person.save()
    return {"contact_persons": person.pk}


def _draft(ctx):
    Document.objects.filter(pk=ctx["invoice"].pk).update(status=DocumentStatus.DRAFT)


def _no_channel_number(ctx):
    PhoneNumber.objects.filter(organization=ctx["org"]).update(code_verification_status="NOT_VERIFIED")


def _inactive(ctx):
    ctx["account"].status = AccountStatus.INACTIVE
    ctx["account"].save()


def _no_credits(ctx):
    credits_adjust(organization=ctx["org"], amount=Decimal("-50"), note="spent", user=None)


RULES = {
    "module_disabled": _module_off,
    "template_not_approved": _not_approved,
    "recipient_not_opted_in": _not_opted_in,
    "recipient_invalid_number": _invalid_number,
    "document_not_sendable": _draft,
    "no_channel_number": _no_channel_number,
    "integration_inactive": _inactive,
    "insufficient_credits": _no_credits,
}


@pytest.mark.parametrize("code", list(RULES))
def test_each_rule_is_shown_before_send_and_send_is_disabled(member, org, account, template, invoice, code) -> None:
    query = RULES[code]({"org": org, "account": account, "invoice": invoice}) or {}

    response = member.get(send_url(invoice, **query))

    assert response.status_code == 200
    assert refusal_code(response) == code and send_disabled(response)


def test_the_refusal_links_to_where_it_is_fixed(member, org, template, invoice) -> None:
    _no_credits({"org": org})

    text = page(member.get(send_url(invoice)))

    needed = credits_text(price(invoice.share_with.get()))
    assert f"Not enough IM credits: this needs {needed} and 0 are available." in text
    assert f'href="{reverse("credits:buy")}" data-refusal-fix' in text


# --- Sending -----------------------------------------------------------------------------------------


def test_send_queues_one_message_per_person_reserves_credits_and_goes_back_to_the_invoice(
    member, org, template, customer, invoice
) -> None:
    first, second = customer.persons.order_by("id")
    form = member.get(send_url(invoice))

    response = member.post(
        send_url(invoice),
        {
            "token": token_of(form),
            "template": template.pk,
            "contact_persons": [first.pk, second.pk],
            "recipients_chosen": "1",
        },
    )

    assert response.status_code == 302 and response["Location"] == document_url(invoice)
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["WhatsApp message queued for 2 recipients."]
    messages = list(Message.objects.filter(document=invoice).order_by("contact_person_id"))
    assert [(m.status, m.contact_person_id, m.template_id) for m in messages] == [
        (MessageStatus.QUEUED, first.pk, template.pk),
        (MessageStatus.QUEUED, second.pk, template.pk),
    ]
    assert Reservation.objects.filter(organization=org).count() == 2
    assert credit_balance_get(organization=org).reserved == price(first) + price(second)


def test_a_double_submit_sends_once(member, org, template, invoice) -> None:
    form = member.get(send_url(invoice))
    data = {"token": token_of(form), "template": template.pk, "contact_persons": [invoice.share_with.get().pk]}

    first = member.post(send_url(invoice), data)
    second = member.post(send_url(invoice), data)

    assert first.status_code == second.status_code == 302
    assert Message.objects.filter(document=invoice).count() == 1
    assert Reservation.objects.filter(organization=org).count() == 1
    assert NotificationRequest.objects.filter(organization=org).count() == 1
    assert credit_balance_get(organization=org).reserved == price(invoice.share_with.get())


def test_a_template_deleted_after_the_page_loaded_is_refused_not_replaced_by_the_default(
    member, org, account, template, invoice
) -> None:
    chosen = approved(account, Module.INVOICES, name="invoice_short", default=False)
    form = member.get(send_url(invoice), {"template": chosen.pk})
    chosen.status = TemplateStatus.DELETED
    chosen.save(update_fields=["status"])
    data = {"token": token_of(form), "template": chosen.pk, "contact_persons": [invoice.share_with.get().pk]}

    response = member.post(send_url(invoice), data)

    assert response.status_code == 400
    assert refusal_code(response) == "template_not_found"
    assert not Message.objects.filter(document=invoice).exists()
    assert not Reservation.objects.filter(organization=org).exists()
    unknown = member.get(send_url(invoice), {"template": 999_999})
    assert unknown.status_code == 200 and refusal_code(unknown) == "template_not_found" and send_disabled(unknown)


def test_a_new_page_load_is_a_new_send(member, template, invoice) -> None:
    data = {"template": template.pk, "contact_persons": [invoice.share_with.get().pk]}
    member.post(send_url(invoice), {**data, "token": token_of(member.get(send_url(invoice)))})
    member.post(send_url(invoice), {**data, "token": token_of(member.get(send_url(invoice)))})
    assert Message.objects.filter(document=invoice).count() == 2


def test_a_refused_send_comes_back_on_the_page_and_writes_nothing(member, org, template, invoice) -> None:
    form = member.get(send_url(invoice))
    _no_credits({"org": org})

    response = member.post(
        send_url(invoice),
        {"token": token_of(form), "template": template.pk, "contact_persons": [invoice.share_with.get().pk]},
    )

    assert response.status_code == 400
    assert refusal_code(response) == "insufficient_credits"
    assert "Nothing was sent." in page(response)
    assert not Message.objects.exists() and not NotificationRequest.objects.exists()


def test_the_same_token_for_another_request_is_refused_on_the_page(member, customer, template, invoice) -> None:
    first, second = customer.persons.order_by("id")
    token = token_of(member.get(send_url(invoice)))
    member.post(send_url(invoice), {"token": token, "template": template.pk, "contact_persons": [first.pk]})

    response = member.post(send_url(invoice), {"token": token, "template": template.pk, "contact_persons": [second.pk]})

    assert response.status_code == 400 and refusal_code(response) == "idempotency_conflict"
    assert Message.objects.count() == 1


# --- Who may send -----------------------------------------------------------------------------------


def test_another_organization_s_ids_are_not_found(member, template, invoice) -> None:
    foreign = make_organization(name="Globex", user=UserFactory())
    their_invoice = make_document(foreign)
    their_customer = their_invoice.contact

    assert member.get(send_url(their_invoice)).status_code == 404
    assert member.post(send_url(their_invoice), {"token": "x"}).status_code == 404
    assert member.get(reverse("whatsapp_send:contact", args=[their_customer.pk])).status_code == 404
    assert member.get(reverse("whatsapp_send:statement", args=[their_customer.pk])).status_code == 404
    assert member.get(reverse("whatsapp_send:chat_contact", args=[their_customer.pk])).status_code == 404
    assert not Message.objects.exists()


def test_a_kind_no_module_sends_is_not_found(member, org, template) -> None:
    bill = make_document(org, kind=DocumentKind.BILL)
    assert member.get(send_url(bill)).status_code == 404


def test_a_role_without_notifications_send_gets_403_and_no_send_menu(client, org, template, invoice) -> None:
    viewer = UserFactory()
    Role.objects.create(
        organization=org, name="Viewer", permissions=[Perm.SALES_VIEW, Perm.SALES_MANAGE, Perm.CUSTOMERS_VIEW]
    )
    membership_add(organization=org, user=viewer, role_name="Viewer")
    client.force_login(viewer)

    assert client.get(send_url(invoice)).status_code == 403
    assert client.post(send_url(invoice), {"token": "x"}).status_code == 403
    assert client.get(reverse("whatsapp_send:contact", args=[invoice.contact_id])).status_code == 403
    detail = page(client.get(document_url(invoice)))
    assert 'data-menu="send"' not in detail and 'data-menu="reminders"' not in detail
    form = page(client.get(reverse("books:document_edit", args=[INVOICE.slug, invoice.pk])))
    assert "Save and send" not in form
    assert not Message.objects.exists()


def test_sending_needs_the_right_to_see_the_document(client, org, template, invoice) -> None:
    sender = UserFactory()
    Role.objects.create(organization=org, name="Sender", permissions=[Perm.NOTIFICATIONS_SEND, Perm.CUSTOMERS_VIEW])
    membership_add(organization=org, user=sender, role_name="Sender")
    client.force_login(sender)

    assert client.get(send_url(invoice)).status_code == 403
    assert client.get(reverse("whatsapp_send:contact", args=[invoice.contact_id])).status_code == 200


# --- Entry points --------------------------------------------------------------------------------------


def test_the_invoice_page_has_send_and_reminders_menus(member, template, invoice) -> None:
    text = page(member.get(document_url(invoice)))

    assert 'data-menu="send"' in text and 'data-menu="reminders"' in text
    assert f'href="{send_url(invoice)}" data-action="whatsapp">WhatsApp message</a>' in text
    assert (
        f'href="{send_url(invoice, module="payment_reminders")}" data-action="whatsapp_reminder">Send WhatsApp message'
        in text
    )
    assert member.get(send_url(invoice, module="payment_reminders")).status_code == 200


@pytest.mark.parametrize(
    "kind",
    [
        DocumentKind.SALES_ORDER,
        DocumentKind.ESTIMATE,
        DocumentKind.RETAINER_INVOICE,
        DocumentKind.CREDIT_NOTE,
        DocumentKind.SALES_RECEIPT,
        DocumentKind.CUSTOMER_PAYMENT,
    ],
)
def test_every_kind_a_module_sends_has_the_send_menu_but_no_reminders(member, org, customer, kind) -> None:
    document = make_document(
        org, kind=kind, contact=customer, amount=Decimal("500") if KINDS[kind].is_payment else None
    )

    text = page(member.get(document_url(document)))

    assert f'href="{send_url(document)}" data-action="whatsapp"' in text
    assert 'data-menu="reminders"' not in text
    assert member.get(send_url(document)).status_code == 200


def test_a_paid_invoice_has_no_reminders_and_a_bill_no_send_menu(member, org, template, customer) -> None:
    paid = make_document(org, contact=customer)
    Document.objects.filter(pk=paid.pk).update(status=DocumentStatus.PAID, balance=0)
    bill = make_document(org, kind=DocumentKind.BILL)

    assert 'data-menu="reminders"' not in page(member.get(document_url(paid)))
    assert 'data-menu="send"' not in page(member.get(document_url(bill)))


def test_the_customer_page_and_its_statement_tab_lead_to_whatsapp(member, customer) -> None:
    detail = page(member.get(reverse("books:contact_detail", args=[customer.pk])))
    statement = page(
        member.get(
            reverse("books:contact_statement", args=[customer.pk]), {"from_date": "2026-03-01", "to_date": "2026-03-31"}
        )
    )

    assert f'href="{reverse("whatsapp_send:contact", args=[customer.pk])}" data-action="whatsapp"' in detail
    share = reverse("whatsapp_send:statement", args=[customer.pk]) + "?from=2026-03-01&to=2026-03-31"
    assert f'href="{share}" data-action="whatsapp_statement">WhatsApp</a>' in statement.replace("&amp;", "&")
    assert 'data-menu="share_via"' in statement


def test_save_and_send_saves_issues_and_opens_the_send_page_with_the_share_with_people(
    member, template, customer
) -> None:
    second = customer.persons.order_by("id")[1]
    data = {
        "contact": str(customer.pk),
        "date": "2026-10-01",
        "due_date": "2026-10-16",
        "reference_number": "",
        "currency": "",
        "notes": "",
        "terms": "",
        "share_with": [str(second.pk)],
        "action": "send",
        "lines-TOTAL_FORMS": "1",
        "lines-INITIAL_FORMS": "0",
        "lines-MIN_NUM_FORMS": "0",
        "lines-MAX_NUM_FORMS": "1000",
        "lines-0-item": "Audit",
        "lines-0-description": "",
        "lines-0-quantity": "1",
        "lines-0-rate": "1500.00",
        "lines-0-tax_percent": "0",
    }
    assert "Save and send" in page(member.get(reverse("books:document_create", args=[INVOICE.slug])))

    response = member.post(reverse("books:document_create", args=[INVOICE.slug]), data)

    invoice = Document.objects.get(kind=DocumentKind.INVOICE)
    assert invoice.status == DocumentStatus.SENT
    assert response.status_code == 302 and response["Location"] == send_url(invoice, contact_persons=second.pk)
    assert checked_people(member.get(response["Location"])) == {second.pk}


def test_save_and_send_on_a_draft_issues_it(member, template, customer) -> None:
    draft = make_document(customer.organization, contact=customer, issue=False)
    data = {
        "contact": str(customer.pk),
        "date": "2026-10-01",
        "due_date": "2026-10-16",
        "reference_number": "",
        "currency": "",
        "notes": "",
        "terms": "",
        "action": "send",
        "lines-TOTAL_FORMS": "1",
        "lines-INITIAL_FORMS": "0",
        "lines-MIN_NUM_FORMS": "0",
        "lines-MAX_NUM_FORMS": "1000",
        "lines-0-item": "Audit",
        "lines-0-description": "",
        "lines-0-quantity": "1",
        "lines-0-rate": "1500.00",
        "lines-0-tax_percent": "0",
    }

    response = member.post(reverse("books:document_edit", args=[INVOICE.slug, draft.pk]), data)

    draft.refresh_from_db()
    assert draft.status == DocumentStatus.SENT
    assert response.status_code == 302 and response["Location"].startswith(send_url(draft))


def test_a_bill_form_has_no_save_and_send(member) -> None:
    assert "Save and send" not in page(member.get(reverse("books:document_create", args=["bills"])))


# --- Comments & History ------------------------------------------------------------------------------


def history_url(document) -> str:
    return reverse("books:document_history", args=[document.spec.slug, document.pk])


def test_history_shows_status_timeline_and_chat_link_and_polls_while_a_message_is_on_its_way(
    member, account, customer, invoice
) -> None:
    person = customer.persons.order_by("id")[1]
    message = make_message(
        account,
        contact=customer,
        contact_person=person,
        document=invoice,
        status=MessageStatus.DELIVERED,
        template_name="invoice_notices",
        queued_at=SENT_AT,
        sent_at=SENT_AT + datetime.timedelta(seconds=2),
        delivered_at=SENT_AT + datetime.timedelta(seconds=5),
    )

    response = member.get(history_url(invoice))

    assert response.status_code == 200
    text = page(response)
    assert 'hx-trigger="every 3s"' in text  # delivered is not final: read or failed may follow
    chat = reverse("whatsapp_send:chat_contact", args=[customer.pk])
    assert f'<a href="{chat}">WhatsApp message sent to {person.name}' in text
    assert f'id="whatsapp-message-{message.pk}" data-state="delivered"' in text
    assert "<summary>Show details</summary>" in text
    assert re.search(r"<dt>Queued</dt>\s*<dd[^>]*> <time[^>]*>12/03/2026 14:00:00</time>", text)
    assert re.search(r"<dt>Delivered</dt>\s*<dd[^>]*> <time[^>]*>12/03/2026 14:00:05</time>", text)
    assert f'<dt>Recipient</dt>\n          <dd><a href="{chat}">{person.name}</a></dd>' in text


def test_history_stops_polling_once_every_message_is_final_and_shows_the_fix_hint(
    member, account, customer, invoice
) -> None:
    make_message(account, contact=customer, document=invoice, status=MessageStatus.READ)
    make_message(
        account,
        contact=customer,
        document=invoice,
        status=MessageStatus.FAILED,
        failed_at=SENT_AT,
        error_code=131026,
        error_title="Message undeliverable",
    )

    text = page(member.get(history_url(invoice)))

    assert "hx-trigger" not in text and 'id="document-history"' in text
    assert '<dd class="history-error">Message undeliverable (131026)</dd>' in text
    assert "The recipient's number can't receive WhatsApp messages" in text
    # The document page starts without polling too.
    assert 'hx-trigger="every 3s"' not in page(member.get(document_url(invoice)))


def test_the_document_page_polls_when_a_message_was_just_queued(member, account, customer, invoice) -> None:
    make_message(account, contact=customer, document=invoice, status=MessageStatus.QUEUED)
    text = page(member.get(document_url(invoice)))
    assert f'hx-get="{history_url(invoice)}" hx-trigger="every 3s"' in text


def test_the_polled_card_costs_the_same_queries_however_many_messages(member, account, customer, invoice) -> None:
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert member.get(history_url(invoice)).status_code == 200
        return len(captured)

    make_message(account, contact=customer, contact_person=customer.persons.first(), document=invoice)
    one = queries()
    for _ in range(5):
        make_message(account, contact=customer, contact_person=customer.persons.first(), document=invoice)
    assert queries() == one


def test_the_history_card_of_another_organization_is_not_found(member, org) -> None:
    foreign = make_document(make_organization(name="Globex"))
    assert member.get(history_url(foreign)).status_code == 404


# --- Mails & messages ------------------------------------------------------------------------------------


def tab_url(contact) -> str:
    return reverse("books:contact_tab", args=[contact.pk, "messages"])


def test_the_mails_and_messages_tab_lists_the_contact_s_messages_with_their_documents(
    member, account, customer, invoice
) -> None:
    make_message(
        account, contact=customer, contact_person=customer.persons.first(), document=invoice, content="Invoice ready"
    )
    make_message(
        account,
        contact=customer,
        direction=Direction.INBOUND,
        status=MessageStatus.RECEIVED,
        message_type=MessageType.TEXT,
        content="Paid today",
    )
    make_message(account, status=MessageStatus.READ, content="Someone else's")

    response = member.get(tab_url(customer))

    assert response.status_code == 200
    text = page(response)
    assert ">Mails & messages</a>" in text and 'aria-current="page">Mails & messages' in text
    assert "Invoice ready" in text and "Paid today" in text and "Someone else's" not in text
    assert f'<a href="{document_url(invoice)}">{invoice.number}</a>' in text
    assert '<option value="whatsapp" selected>WhatsApp messages</option>' in text


def test_the_tab_filters_failed_messages_with_their_fix_hints(member, account, customer) -> None:
    make_message(account, contact=customer, status=MessageStatus.READ, content="All good")
    make_message(
        account,
        contact=customer,
        status=MessageStatus.FAILED,
        content="Bounced",
        error_code=131026,
        error_title="Message undeliverable",
    )

    text = page(member.get(tab_url(customer), {"show": "failed"}))

    assert "Bounced" in text and "All good" not in text
    assert "Message undeliverable (131026)" in text
    assert "The recipient's number can't receive WhatsApp messages" in text
    assert '<option value="failed" selected>Failed</option>' in text

    replies = page(member.get(tab_url(customer), {"show": "received"}))
    assert "Bounced" not in replies and "No WhatsApp message matches this filter." in replies


def test_the_tab_is_paginated(member, account, customer) -> None:
    for index in range(27):
        make_message(account, contact=customer, content=f"Message number {index:02d}")

    first = page(member.get(tab_url(customer)))
    second = page(member.get(tab_url(customer), {"page": 2}))

    assert "Message number 26" in first and "Message number 00" not in first
    assert "1–25 of 27" in first and "Message number 00" in second


def test_the_tab_needs_the_contact_s_view_permission(client, org, customer) -> None:
    seller = UserFactory()
    Role.objects.create(organization=org, name="Seller", permissions=[Perm.SALES_VIEW])
    membership_add(organization=org, user=seller, role_name="Seller")
    client.force_login(seller)
    assert client.get(tab_url(customer)).status_code == 403
    assert client.get(reverse("whatsapp_send:chat_contact", args=[customer.pk])).status_code == 403


def test_an_unknown_tab_is_not_found(member, customer) -> None:
    assert member.get(reverse("books:contact_tab", args=[customer.pk, "nothing"])).status_code == 404


# --- The read-only chat -------------------------------------------------------------------------------


def test_the_chat_shows_the_conversation_oldest_first_and_escapes_inbound_text(member, account, customer) -> None:
    make_message(account, contact=customer, content="Your invoice is ready", created_at=SENT_AT)
    inbound = make_message(
        account,
        contact=customer,
        direction=Direction.INBOUND,
        status=MessageStatus.RECEIVED,
        message_type=MessageType.TEXT,
        content='<script>alert("x")</script> *paid*',
    )

    response = member.get(reverse("whatsapp_send:chat_contact", args=[customer.pk]))

    raw = response.content.decode()
    assert response.status_code == 200
    assert "<script>alert" not in raw
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; <strong>paid</strong>" in raw
    assert raw.index("Your invoice is ready") < raw.index(f'id="chat-message-{inbound.pk}"')  # newest at the bottom
    assert "Replying arrives with the chat module." in raw


# --- Admin action -------------------------------------------------------------------------------------


def test_the_document_admin_sends_by_whatsapp_and_reports_refusals(rf, org, template, customer, invoice) -> None:
    from django.contrib.messages.storage.fallback import FallbackStorage

    draft = make_document(org, contact=customer, issue=False)
    admin_user = UserFactory(username="root", is_staff=True, is_superuser=True)
    request = rf.post("/admin/books/document/")
    request.user = admin_user
    request.session = {}
    request._messages = FallbackStorage(request)
    model_admin = admin_site._registry[Document]
    action = model_admin.get_actions(request)["send_by_whatsapp"][0]

    action(model_admin, request, Document.objects.filter(pk__in=[invoice.pk, draft.pk]))

    reported = [str(message) for message in get_messages(request)]
    assert f"{draft.number} was not sent: {draft.number} is draft: only issued documents can be sent." in reported
    assert "1 document sent by WhatsApp (1 message queued)." in reported
    assert Message.objects.filter(document=invoice, status=MessageStatus.QUEUED).count() == 1
    assert not Message.objects.filter(document=draft).exists()
