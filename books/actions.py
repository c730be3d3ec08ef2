"""Menu items and tabs that other apps add to the document and contact pages.

``books`` knows nothing of WhatsApp: an app registers what it offers from its
``AppConfig.ready()``, and the pages render whatever is registered for the document's kind or the
contact's type, filtered by the user's permissions::

    document_action_register(
        key="whatsapp", menu=MENU_SEND, label=_("WhatsApp message"), kinds=("invoice", "estimate"),
        url=lambda document: reverse("whatsapp_send:document", args=[document.pk]),
        perm=Perm.NOTIFICATIONS_SEND, sends=True,
    )

A document action registered with ``sends=True`` is also where the form's "Save and send" goes.
Contact actions receive the page's parameters (the statement tab passes its period as ``from`` /
``to``); contact tabs render their own panel inside the contact page.

List actions are the bulk-action bar of the document lists and the customer and vendor lists:
each is a submit button whose ``formaction`` receives the ticked rows as ``selected`` (a plain
form POST, with the CSRF token of the list's form)::

    list_action_register(
        key="whatsapp", menu=MENU_SEND, label=_("WhatsApp message"), kinds=("invoice",),
        url=lambda kind: reverse("whatsapp_send:bulk_new", args=["invoices"]), perm=Perm.NOTIFICATIONS_SEND,
    )

A list action with ``submits=False`` is a plain link in the same menu (e.g. the history of what
was sent in bulk).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from django.http import HttpRequest
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from books.models import Contact, ContactPerson, Document, Membership

#: The menus the pages have: "Send" on documents and contacts, "Reminders" on invoices, "Share
#: via" on the statement tab. Anything else is shown under its own registered label.
MENU_SEND = "send"
MENU_REMINDERS = "reminders"
MENU_SHARE_VIA = "share_via"
MENU_LABELS: dict[str, Promise] = {
    MENU_SEND: _("Send"),
    MENU_REMINDERS: _("Reminders"),
    MENU_SHARE_VIA: _("Share via"),
}


@dataclass(frozen=True)
class MenuItem:
    """One rendered entry of a menu: what it says and where it goes."""

    key: str
    label: str | Promise
    url: str
    #: On a list's bulk-action bar: a button that POSTs the ticked rows to ``url`` (else a link).
    submits: bool = False


@dataclass(frozen=True)
class Menu:
    """A dropdown of the page ("Send", "Reminders", "Share via") and its items."""

    key: str
    label: str | Promise
    items: tuple[MenuItem, ...]


@dataclass(frozen=True)
class DocumentAction:
    key: str
    menu: str
    label: str | Promise
    kinds: frozenset[str]
    url: Callable[[Document], str]
    perm: str = ""
    #: Offered only when this says so (e.g. reminders for an unpaid invoice); always when None.
    when: Callable[[Document], bool] | None = None
    #: The target of the form's "Save and send" for these kinds.
    sends: bool = False


@dataclass(frozen=True)
class ContactAction:
    key: str
    menu: str
    label: str | Promise
    contact_types: frozenset[str]
    #: Builds the URL from the contact and the page's parameters (the statement's ``from``/``to``).
    url: Callable[[Contact, Mapping[str, str]], str]
    perm: str = ""


@dataclass(frozen=True)
class ContactTab:
    """A tab of the contact page whose panel another app renders (e.g. "Mails & messages")."""

    key: str
    label: str | Promise
    contact_types: frozenset[str]
    #: Returns the panel's HTML (already escaped, e.g. from ``render_to_string``).
    render: Callable[[HttpRequest, Contact], str]
    perm: str = ""


@dataclass(frozen=True)
class ListAction:
    """An entry of a list page's bulk-action bar, for the lists of ``kinds`` and ``contact_types``."""

    key: str
    menu: str
    label: str | Promise
    #: Document kinds whose list offers it ("invoice", …).
    kinds: frozenset[str]
    #: Contact types whose list offers it ("customer", "vendor").
    contact_types: frozenset[str]
    #: Builds the URL from the list's kind or contact type: where the ticked ids are POSTed.
    url: Callable[[str], str]
    perm: str = ""
    #: False: a plain link (nothing is POSTed), e.g. to what was sent before.
    submits: bool = True


# Filled once per process by the apps' ready(); read by every request.
_document_actions: dict[str, DocumentAction] = {}
_contact_actions: dict[str, ContactAction] = {}
_contact_tabs: dict[str, ContactTab] = {}
_list_actions: dict[str, ListAction] = {}


def document_action_register(
    *,
    key: str,
    menu: str,
    label: str | Promise,
    kinds: Iterable[str],
    url: Callable[[Document], str],
    perm: str = "",
    when: Callable[[Document], bool] | None = None,
    sends: bool = False,
) -> DocumentAction:
    """Offer ``label`` in the document page's ``menu`` for documents of ``kinds``.

    ``key`` names the registration (a second ``ready()`` replaces it); ``perm`` is the permission
    the user needs on top of seeing the document; ``label`` should be a lazy translation.
    """
    action = DocumentAction(
        key=key, menu=menu, label=label, kinds=frozenset(kinds), url=url, perm=str(perm), when=when, sends=sends
    )
    _document_actions[key] = action
    return action


def contact_action_register(
    *,
    key: str,
    menu: str,
    label: str | Promise,
    contact_types: Iterable[str],
    url: Callable[[Contact, Mapping[str, str]], str],
    perm: str = "",
) -> ContactAction:
    """Offer ``label`` in the contact page's ``menu`` (``send`` on the page, ``share_via`` on the
    statement tab) for contacts of ``contact_types``."""
    action = ContactAction(
        key=key, menu=menu, label=label, contact_types=frozenset(contact_types), url=url, perm=str(perm)
    )
    _contact_actions[key] = action
    return action


def contact_tab_register(
    *,
    key: str,
    label: str | Promise,
    contact_types: Iterable[str],
    render: Callable[[HttpRequest, Contact], str],
    perm: str = "",
) -> ContactTab:
    """Add a tab to the contact page; its panel is whatever ``render(request, contact)`` returns.

    The tab lives at ``books:contact_tab`` (``contacts/<pk>/tabs/<key>/``) and needs the
    contact's view permission plus ``perm``."""
    tab = ContactTab(key=key, label=label, contact_types=frozenset(contact_types), render=render, perm=str(perm))
    _contact_tabs[key] = tab
    return tab


def list_action_register(
    *,
    key: str,
    menu: str,
    label: str | Promise,
    url: Callable[[str], str],
    kinds: Iterable[str] = (),
    contact_types: Iterable[str] = (),
    perm: str = "",
    submits: bool = True,
) -> ListAction:
    """Offer ``label`` in the bulk-action bar's ``menu`` of the lists of ``kinds`` (documents) and
    ``contact_types`` (customers, vendors). ``url`` gets the list's kind or contact type and
    returns where the form POSTs the ticked rows (``selected``), or the link when not ``submits``."""
    action = ListAction(
        key=key,
        menu=menu,
        label=label,
        kinds=frozenset(kinds),
        contact_types=frozenset(contact_types),
        url=url,
        perm=str(perm),
        submits=submits,
    )
    _list_actions[key] = action
    return action


def _allowed(perm: str, membership: Membership | None) -> bool:
    return not perm or (membership is not None and membership.has_perm(perm))


def _menus(items: Iterable[tuple[str, MenuItem]]) -> list[Menu]:
    grouped: dict[str, list[MenuItem]] = {}
    for menu, item in items:
        grouped.setdefault(menu, []).append(item)
    return [Menu(key=menu, label=MENU_LABELS.get(menu, menu), items=tuple(found)) for menu, found in grouped.items()]


def document_menus(document: Document, *, membership: Membership | None) -> list[Menu]:
    """The menus of the document page for this user, in registration order."""
    return _menus(
        (action.menu, MenuItem(action.key, action.label, action.url(document)))
        for action in _document_actions.values()
        if document.kind in action.kinds
        and _allowed(action.perm, membership)
        and (action.when is None or action.when(document))
    )


def document_send_url(
    document: Document, *, membership: Membership | None, persons: Iterable[ContactPerson] = ()
) -> str:
    """Where "Save and send" goes for ``document`` ("" when nothing sends its kind for this user),
    with the chosen "Share with" people preselected (``?contact_persons=1,2``)."""
    action = document_sender(document.kind, membership=membership)
    if action is None:
        return ""
    url = action.url(document)
    ids = ",".join(str(person.pk) for person in persons)
    if not ids:
        return url
    return f"{url}{'&' if '?' in url else '?'}{urlencode({'contact_persons': ids})}"


def document_sender(kind: str, *, membership: Membership | None) -> DocumentAction | None:
    """The registered "Save and send" target of ``kind`` the user may use, if any."""
    return next(
        (
            action
            for action in _document_actions.values()
            if action.sends and kind in action.kinds and _allowed(action.perm, membership)
        ),
        None,
    )


def contact_menus(
    contact: Contact, *, membership: Membership | None, menu: str | None = None, params: Mapping[str, str] | None = None
) -> list[Menu]:
    """The menus of the contact page (or only ``menu``), their URLs built with ``params``."""
    params = params or {}
    return _menus(
        (action.menu, MenuItem(action.key, action.label, action.url(contact, params)))
        for action in _contact_actions.values()
        if contact.contact_type in action.contact_types
        and (menu is None or action.menu == menu)
        and _allowed(action.perm, membership)
    )


def contact_tabs(contact: Contact, *, membership: Membership | None) -> list[ContactTab]:
    """The registered tabs this user sees on ``contact``'s page."""
    return [
        tab
        for tab in _contact_tabs.values()
        if contact.contact_type in tab.contact_types and _allowed(tab.perm, membership)
    ]


def contact_tab_get(key: str) -> ContactTab | None:
    return _contact_tabs.get(key)


def list_menus(*, kind: str = "", contact_type: str = "", membership: Membership | None) -> list[Menu]:
    """The bulk-action bar's menus of the list of ``kind`` (documents) or ``contact_type``
    (customers or vendors) for this user, in registration order."""
    return _menus(
        (action.menu, MenuItem(action.key, action.label, action.url(kind or contact_type), submits=action.submits))
        for action in _list_actions.values()
        if ((kind and kind in action.kinds) or (contact_type and contact_type in action.contact_types))
        and _allowed(action.perm, membership)
    )
