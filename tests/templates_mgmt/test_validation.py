"""One test per rule Meta enforces on a template, each with the message the accountant reads."""

from typing import Any

import pytest
from django.core.exceptions import ValidationError

from books.models import Organization
from templates_mgmt.choices import AttachmentMode, ButtonType, HeaderType, Module, TemplateStatus
from templates_mgmt.models import MessageTemplate
from templates_mgmt.validation import TemplateDraft, has_emoji, template_clean, variables_too_many
from tests.books.factories import make_organization
from tests.templates_mgmt.factories import JPEG, PDF, PNG, WABA_ID, invoice_template_fields, make_template, static_file

pytestmark = pytest.mark.django_db


@pytest.fixture
def organization() -> Organization:
    return make_organization()


def draft(**overrides: Any) -> TemplateDraft:
    return TemplateDraft(**invoice_template_fields(**overrides))


def errors(organization: Organization, **overrides: Any) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        template_clean(organization=organization, waba_id=WABA_ID, draft=draft(**overrides))
    return caught.value.message_dict


def button(**fields: str) -> dict[str, str]:
    return {"type": ButtonType.URL, "text": "Pay now", "url": "https://pay.example.com/", **fields}


# --- A valid template, normalised -----------------------------------------------------------------


def test_a_valid_template_is_normalised_for_meta(organization: Organization) -> None:
    clean = template_clean(organization=organization, waba_id=WABA_ID, draft=draft(category="utility"))

    assert clean.category == "UTILITY"
    assert clean.buttons == [
        {
            "type": "url",
            "text": "View invoice",
            "url": "https://books.example.com/i/{{1}}",
            "url_suffix_field": "invoice_number",
        },
        {"type": "phone_number", "text": "Call us", "phone_number": "+912240001234"},
    ]
    assert clean.field_mapping == {
        "header": {},
        "body": {
            "customer_name": "customer_name",
            "invoice_number": "invoice_number",
            "invoice_total": "invoice_total",
            "due_date": "due_date",
        },
        "buttons": {"0": "invoice_number"},
    }
    assert clean.attachment_mime == "application/pdf"


def test_every_problem_is_reported_at_once(organization: Organization) -> None:
    found = errors(organization, name="Bad Name", body="", footer="x" * 61)

    assert set(found) == {"name", "body", "footer"}


# --- Name, language, category, module -------------------------------------------------------------


def test_the_name_is_required(organization: Organization) -> None:
    assert errors(organization, name="")["name"] == ["Enter a name for the template."]


def test_the_name_has_at_most_512_characters(organization: Organization) -> None:
    assert errors(organization, name="a" * 513)["name"] == ["The name can be at most 512 characters long."]


def test_the_name_has_only_lowercase_letters_digits_and_underscores(organization: Organization) -> None:
    assert errors(organization, name="Invoice Notice")["name"] == [
        "Use only lowercase letters, digits and underscores in the name, for example invoice_reminder."
    ]


def test_one_template_per_name_and_language_in_a_waba(organization: Organization) -> None:
    make_template(organization)

    assert errors(organization)["name"] == [
        "A template named “invoice_notice” already exists in English. Choose another name, or another language "
        "for the same name."
    ]
    template_clean(organization=organization, waba_id=WABA_ID, draft=draft(language="es"))


def test_a_deleted_templates_name_stays_blocked(organization: Organization) -> None:
    make_template(organization)
    MessageTemplate.objects.update(status=TemplateStatus.DELETED)

    assert errors(organization)["name"] == [
        "A deleted template used the name “invoice_notice” in English, and WhatsApp keeps that name blocked for "
        "4 weeks after a deletion. Choose another name."
    ]


def test_the_language_is_one_meta_supports(organization: Organization) -> None:
    assert errors(organization, language="en-US")["language"] == ["Choose a language WhatsApp supports for templates."]


def test_the_category_is_utility_or_marketing(organization: Organization) -> None:
    assert errors(organization, category="AUTHENTICATION")["category"] == [
        "Choose Utility or Marketing as the category."
    ]


def test_the_module_is_required(organization: Organization) -> None:
    assert errors(organization, module="")["module"] == ["Choose the module this template belongs to."]


# --- Header ---------------------------------------------------------------------------------------


def test_the_header_type_is_one_of_the_offered_ones(organization: Organization) -> None:
    assert errors(organization, header_type="video")["header_type"] == [
        "Choose a header: none, text, document or image."
    ]


def test_a_text_header_needs_text(organization: Organization) -> None:
    assert errors(organization, header_type=HeaderType.TEXT, header_text=" ")["header_text"] == [
        "Enter the header text, or choose no header."
    ]


def test_a_text_header_has_at_most_60_characters(organization: Organization) -> None:
    assert errors(organization, header_type=HeaderType.TEXT, header_text="x" * 61)["header_text"] == [
        "The header can be at most 60 characters long (it has 61)."
    ]


def test_a_text_header_has_at_most_one_dynamic_field(organization: Organization) -> None:
    text = "Invoice {{invoice_number}} of {{invoice_date}}"

    assert errors(organization, header_type=HeaderType.TEXT, header_text=text)["header_text"] == [
        "The header can contain at most one dynamic field."
    ]


def test_a_text_header_has_no_emoji(organization: Organization) -> None:
    assert errors(organization, header_type=HeaderType.TEXT, header_text="Your invoice 🧾")["header_text"] == [
        "The header can't contain emoji or line breaks."
    ]


def test_a_header_field_comes_from_the_modules_catalogue(organization: Organization) -> None:
    found = errors(organization, header_type=HeaderType.TEXT, header_text="Quote {{quote_number}}")

    assert found["header_text"] == [
        "“{{quote_number}}” is not a dynamic field of Invoices. Insert fields from the list."
    ]


def test_an_attachment_header_says_where_its_file_comes_from(organization: Organization) -> None:
    assert errors(organization, attachment_mode="")["attachment_mode"] == [
        "Choose whether the attachment is dynamic (the transaction's own PDF) or static (a file you upload)."
    ]


def test_a_dynamic_attachment_needs_a_module_with_a_pdf(organization: Organization) -> None:
    found = errors(organization, module=Module.CUSTOMERS, body="Dear {{customer_name}}, thank you for your business.")

    assert found["attachment_mode"] == [
        "Customers templates have no transaction PDF to attach; upload a static file instead."
    ]


def test_vendor_templates_carry_no_attachment(organization: Organization) -> None:
    found = errors(
        organization, module=Module.VENDORS, body="Dear {{vendor_name}}, thank you for your prompt supplies."
    )

    assert found["attachment_mode"] == ["Vendors templates can't carry an attachment; choose a text header or none."]


def test_a_dynamic_attachment_is_a_document_not_an_image(organization: Organization) -> None:
    assert errors(organization, header_type=HeaderType.IMAGE)["attachment_mode"] == [
        "A dynamic attachment is the transaction's PDF, so the header must be a document, not an image."
    ]


def test_a_static_attachment_is_only_for_the_customers_module(organization: Organization) -> None:
    found = errors(organization, attachment_mode=AttachmentMode.STATIC, attachment=static_file())

    assert found["attachment_mode"] == [
        "Static attachments can be used only in Customers templates; choose a dynamic attachment."
    ]


def customer_draft(**overrides: Any) -> dict[str, Any]:
    return {
        "module": Module.CUSTOMERS,
        "body": "Dear {{customer_name}}, our new price list is attached for your reference.",
        "attachment_mode": AttachmentMode.STATIC,
        "buttons": [],
        **overrides,
    }


def test_a_static_attachment_needs_its_file(organization: Organization) -> None:
    assert errors(organization, **customer_draft(attachment=None))["attachment"] == ["Upload the file to attach."]


def test_a_static_document_is_a_pdf_by_its_content(organization: Organization) -> None:
    disguised = static_file(b"<html>not a pdf</html>", name="prices.pdf")

    assert errors(organization, **customer_draft(attachment=disguised))["attachment"] == [
        "The attachment must be a PDF file."
    ]


def test_a_static_image_is_a_jpeg_or_png_by_its_content(organization: Organization) -> None:
    found = errors(organization, **customer_draft(header_type=HeaderType.IMAGE, attachment=static_file(PDF, "a.png")))

    assert found["attachment"] == ["The image must be a JPEG or PNG file."]
    for content in (PNG, JPEG):
        template_clean(
            organization=organization,
            waba_id=WABA_ID,
            draft=draft(**customer_draft(header_type=HeaderType.IMAGE, attachment=static_file(content, "a.img"))),
        )


def test_a_static_image_is_at_most_5_mb(organization: Organization) -> None:
    big = static_file(PNG + b"\x00" * (5 * 1024 * 1024), name="banner.png")

    assert errors(organization, **customer_draft(header_type=HeaderType.IMAGE, attachment=big))["attachment"] == [
        "The file is 5.0 MB; WhatsApp accepts images of up to 5.0 MB."
    ]


# --- Body -----------------------------------------------------------------------------------------


def test_the_body_is_required(organization: Organization) -> None:
    assert errors(organization, body="  ")["body"] == ["Enter the message."]


def test_the_body_has_at_most_1024_characters(organization: Organization) -> None:
    assert errors(organization, body="Hello there. " * 80)["body"] == [
        "The message can be at most 1,024 characters long (it has 1,039)."
    ]


def test_the_body_does_not_start_with_a_field(organization: Organization) -> None:
    found = errors(organization, body="{{customer_name}}, invoice {{invoice_number}} is ready for you to view today.")

    assert found["body"] == ["The message can't start or end with a dynamic field; add some words before and after it."]


def test_the_body_does_not_end_with_a_field_even_before_a_full_stop(organization: Organization) -> None:
    found = errors(organization, body="Hello, your invoice is ready and the amount due is {{invoice_total}}.")

    assert found["body"] == ["The message can't start or end with a dynamic field; add some words before and after it."]


@pytest.mark.parametrize("between", [" ", ", ", " - "])
def test_fields_are_not_next_to_each_other(organization: Organization, between: str) -> None:
    body = f"Dear customer, invoice {{{{invoice_number}}}}{between}{{{{invoice_total}}}} is now due for payment today."

    assert errors(organization, body=body)["body"] == [
        "Dynamic fields can't be next to each other: add words between {{invoice_number}} and {{invoice_total}}."
    ]


def test_the_body_has_enough_words_for_its_fields(organization: Organization) -> None:
    # 3 fields need 2 × 3 + 1 = 7 other words; "Hi", "invoice", "of", "due", "now" are 5.
    body = "Hi {{customer_name}}, invoice {{invoice_number}} of {{invoice_total}} due now."

    assert errors(organization, body=body)["body"] == [
        "The message has too many dynamic fields for its length: with 3 fields it needs at least 7 other words, "
        "and it has 5. Add text or remove fields."
    ]


def test_the_ratio_rule_counts_words_with_letters_or_digits() -> None:
    assert variables_too_many("Dear Guest, Reservation {{1}} arriving from {{2}} departs on {{3}}.") is None
    assert variables_too_many("Hello {{1}}, your order {{2}} for {{3}} will be delivered by {{4}}.") == (9, 8)
    assert variables_too_many("No fields at all.") is None


def test_body_fields_come_from_the_modules_catalogue(organization: Organization) -> None:
    body = "Dear {{customer_name}}, your quote {{quote_number}} is ready for you to review today."

    assert errors(organization, body=body)["body"] == [
        "“{{quote_number}}” is not a dynamic field of Invoices. Insert fields from the list."
    ]


def test_body_braces_must_be_balanced(organization: Organization) -> None:
    body = "Dear {{customer_name}, your invoice is ready for you to review today."

    assert errors(organization, body=body)["body"] == [
        "Check the braces in the message: a dynamic field is written {{field_name}}."
    ]


# --- Footer ---------------------------------------------------------------------------------------


def test_the_footer_has_at_most_60_characters(organization: Organization) -> None:
    assert errors(organization, footer="x" * 61)["footer"] == [
        "The footer can be at most 60 characters long (it has 61)."
    ]


def test_the_footer_is_one_line(organization: Organization) -> None:
    assert errors(organization, footer="Acme Books\nMumbai")["footer"] == ["The footer must be a single line."]


def test_the_footer_has_no_emoji(organization: Organization) -> None:
    assert errors(organization, footer="Thank you ❤️")["footer"] == ["The footer can't contain emoji."]


def test_the_footer_has_no_fields(organization: Organization) -> None:
    assert errors(organization, footer="Regards, {{organization_name}}")["footer"] == [
        "The footer can't contain dynamic fields."
    ]


def test_emoji_detection_leaves_ordinary_symbols_alone() -> None:
    assert not has_emoji("© Acme Books ₹ – GSTIN 27AAAPA1234A1Z5")
    assert has_emoji("Thanks 👍") and has_emoji("Done ✅") and has_emoji("©\ufe0f")


# --- Buttons --------------------------------------------------------------------------------------


def test_at_most_two_buttons(organization: Organization) -> None:
    assert errors(organization, buttons=[button(), button(), button()])["buttons"] == [
        "Add at most 2 call-to-action buttons."
    ]


def test_at_most_one_phone_button(organization: Organization) -> None:
    phone = {"type": ButtonType.PHONE_NUMBER, "text": "Call", "phone_number": "+912240001234"}

    assert errors(organization, buttons=[phone, phone])["buttons"] == ["Only one button can call a phone number."]


def test_two_url_buttons_are_allowed(organization: Organization) -> None:
    clean = template_clean(
        organization=organization, waba_id=WABA_ID, draft=draft(buttons=[button(), button(text="Terms")])
    )

    assert [b["type"] for b in clean.buttons] == ["url", "url"]


def test_a_button_has_a_type(organization: Organization) -> None:
    assert errors(organization, buttons=[button(type="quick_reply")])["buttons"] == [
        "Button 1: choose whether it opens a website or calls a phone number."
    ]


def test_a_button_has_a_label(organization: Organization) -> None:
    assert errors(organization, buttons=[button(text="")])["buttons"] == [
        "Button 1: enter the text shown on the button."
    ]


def test_a_button_label_has_at_most_25_characters(organization: Organization) -> None:
    assert errors(organization, buttons=[button(text="Pay your invoice online now")])["buttons"] == [
        "Button 1: the button text can be at most 25 characters long (it has 27)."
    ]


def test_a_phone_button_has_a_number(organization: Organization) -> None:
    found = errors(organization, buttons=[{"type": ButtonType.PHONE_NUMBER, "text": "Call us", "phone_number": ""}])

    assert found["buttons"] == ["Button 1: enter the phone number to call."]


def test_a_phone_button_number_has_at_most_20_characters(organization: Organization) -> None:
    phone = {"type": ButtonType.PHONE_NUMBER, "text": "Call us", "phone_number": "+91 (22) 4000-1234 ext 5"}

    assert errors(organization, buttons=[phone])["buttons"] == [
        "Button 1: the phone number can be at most 20 characters long."
    ]


def test_a_phone_button_number_is_valid(organization: Organization) -> None:
    phone = {"type": ButtonType.PHONE_NUMBER, "text": "Call us", "phone_number": "12345"}

    assert errors(organization, buttons=[phone])["buttons"] == [
        "Button 1: “12345” is not a valid phone number; include the country code, e.g. +91 98200 12345."
    ]


def test_a_url_button_has_an_address(organization: Organization) -> None:
    assert errors(organization, buttons=[button(url="")])["buttons"] == ["Button 1: enter the website address."]


@pytest.mark.parametrize("url", ["books.example.com/pay", "ftp://example.com/file", "https://"])
def test_a_url_button_address_is_http_or_https(organization: Organization, url: str) -> None:
    assert errors(organization, buttons=[button(url=url)])["buttons"] == [
        "Button 1: enter a full website address starting with https:// or http://."
    ]


def test_a_url_button_address_has_at_most_2000_characters(organization: Organization) -> None:
    assert errors(organization, buttons=[button(url="https://example.com/" + "a" * 1990)])["buttons"] == [
        "Button 1: the website address can be at most 2,000 characters long."
    ]


def test_a_url_button_has_at_most_one_field(organization: Organization) -> None:
    url = "https://example.com/{{customer_name}}/{{invoice_number}}"

    assert errors(organization, buttons=[button(url=url)])["buttons"] == [
        "Button 1: a website address can contain only one dynamic field."
    ]


def test_a_url_button_field_is_at_the_end(organization: Organization) -> None:
    url = "https://example.com/{{invoice_number}}/pay"

    assert errors(organization, buttons=[button(url=url)])["buttons"] == [
        "Button 1: a dynamic field can only be at the end of the website address."
    ]


def test_a_url_button_field_comes_from_the_modules_catalogue(organization: Organization) -> None:
    assert errors(organization, buttons=[button(url="https://example.com/{{quote_number}}")])["buttons"] == [
        "Button 1: “{{quote_number}}” is not a dynamic field of Invoices."
    ]


def test_a_url_suffix_can_be_given_as_a_field(organization: Organization) -> None:
    clean = template_clean(
        organization=organization,
        waba_id=WABA_ID,
        draft=draft(buttons=[button(url="https://pay.example.com/inv/", url_suffix_field="invoice_number")]),
    )

    assert clean.buttons[0]["url"] == "https://pay.example.com/inv/{{1}}"
    assert clean.field_mapping["buttons"] == {"0": "invoice_number"}
