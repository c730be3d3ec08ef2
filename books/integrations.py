"""The integrations the Settings page lists, registered by the apps that provide them.

``books`` knows nothing of WhatsApp (or of any other integration): an app registers its settings
page from its ``AppConfig.ready()`` and the Settings index shows one tile per registration::

    integration_register(key="whatsapp", label=_("WhatsApp"), description=_("…"), url_name="whatsapp:integration")
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.functional import Promise


@dataclass(frozen=True, slots=True)
class Integration:
    """One tile under Settings → Integrations: what it is and where its settings page lives."""

    key: str
    label: str | Promise
    description: str | Promise
    url_name: str
    icon: str = ""


# Filled once per process by the apps' ready(); read by every request.
_registry: dict[str, Integration] = {}


def integration_register(
    *, key: str, label: str | Promise, description: str | Promise, url_name: str, icon: str = ""
) -> Integration:
    """Add (or replace, so a second ``ready()`` is harmless) the integration named ``key``.

    ``label`` and ``description`` should be lazy translations: they are rendered per request.
    ``icon`` is a symbol id of ``static/img/icons.svg``.
    """
    integration = Integration(key=key, label=label, description=description, url_name=url_name, icon=icon)
    _registry[key] = integration
    return integration


def integration_list() -> list[Integration]:
    """The registered integrations, in registration order."""
    return list(_registry.values())
