import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, models
from django.test import override_settings
from django.test.utils import isolate_apps

from books.encrypted import EncryptedTextField, decrypt, encrypt


def test_a_value_round_trips_and_is_not_stored_in_clear():
    stored = encrypt("EAAG-secret-token")
    assert stored.startswith("fernet:")
    assert "EAAG-secret-token" not in stored
    assert decrypt(stored) == "EAAG-secret-token"


def test_keys_can_be_rotated_by_prepending_a_new_one():
    with override_settings(FIELD_ENCRYPTION_KEY="old-key"):
        stored = encrypt("token")
    with override_settings(FIELD_ENCRYPTION_KEY="new-key,old-key"):
        assert decrypt(stored) == "token"
    with override_settings(FIELD_ENCRYPTION_KEY="new-key"), pytest.raises(ImproperlyConfigured):
        decrypt(stored)


def test_without_a_key_nothing_is_stored():
    with override_settings(FIELD_ENCRYPTION_KEY=""), pytest.raises(ImproperlyConfigured):
        encrypt("token")


@pytest.mark.django_db
@isolate_apps("books")
def test_the_database_holds_only_ciphertext():
    class _Secret(models.Model):
        value = EncryptedTextField(blank=True)

        class Meta:
            app_label = "books"
            db_table = "test_encrypted_secret"

        def __str__(self) -> str:
            return f"secret {self.pk}"

    with connection.schema_editor() as editor:
        editor.create_model(_Secret)
    try:
        row = _Secret.objects.create(value="EAAG-very-secret")
        with connection.cursor() as cursor:
            cursor.execute("SELECT value FROM test_encrypted_secret WHERE id = %s", [row.pk])
            (raw,) = cursor.fetchone()
        assert "EAAG-very-secret" not in raw
        assert _Secret.objects.get(pk=row.pk).value == "EAAG-very-secret"
        assert _Secret.objects.create(value="").value == ""
    finally:
        with connection.schema_editor() as editor:
            editor.delete_model(_Secret)
