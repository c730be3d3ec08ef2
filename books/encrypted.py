"""A model field whose value is encrypted at rest with ``FIELD_ENCRYPTION_KEY`` (Fernet).

Used for secrets the hub must send back out: WhatsApp access tokens, OAuth refresh tokens. The
database (and any dump of it) holds only ``fernet:<token>``; the clear value exists in memory.

``FIELD_ENCRYPTION_KEY`` may list several keys separated by commas: the first encrypts, all
decrypt, so a key can be rotated by prepending a new one and re-saving the rows.
"""

import base64
import hashlib
from functools import cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

PREFIX = "fernet:"


@cache
def _fernet(keys: str) -> MultiFernet:
    secrets = [k.strip() for k in keys.split(",") if k.strip()]
    if not secrets:
        raise ImproperlyConfigured("Set FIELD_ENCRYPTION_KEY to store secrets (access tokens) encrypted at rest.")
    # Any string is accepted as a key: it is stretched to the 32 bytes Fernet wants.
    return MultiFernet(
        [Fernet(base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest())) for secret in secrets]
    )


def encrypt(value: str) -> str:
    return PREFIX + _fernet(settings.FIELD_ENCRYPTION_KEY).encrypt(value.encode()).decode()


def decrypt(stored: str) -> str:
    if not stored.startswith(PREFIX):
        raise ValueError("not an encrypted value")
    try:
        return _fernet(settings.FIELD_ENCRYPTION_KEY).decrypt(stored[len(PREFIX) :].encode()).decode()
    except InvalidToken:
        raise ImproperlyConfigured(
            "A stored secret cannot be decrypted with FIELD_ENCRYPTION_KEY (was the key changed?)."
        ) from None


class EncryptedTextField(models.TextField):
    """Text encrypted at rest. Not searchable or orderable; empty stays empty."""

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value in (None, ""):
            return value
        return encrypt(str(value))

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        if value in (None, ""):
            return value
        return decrypt(value)

    def value_to_string(self, obj: models.Model) -> str:
        """Serialized (dumpdata, fixtures) as ciphertext: a dump holds no secret."""
        value = self.value_from_object(obj)
        return encrypt(str(value)) if value else value

    def to_python(self, value: Any) -> Any:
        """A serialized ciphertext (loaddata) becomes the clear value again, so saving doesn't encrypt it twice."""
        value = super().to_python(value)
        if isinstance(value, str) and value.startswith(PREFIX):
            return decrypt(value)
        return value
