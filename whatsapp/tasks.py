"""Celery tasks of the WhatsApp app: thin wrappers that load by id and call one service."""

from celery import shared_task  # noqa: F401

# --- webhooks (whatsapp.services.webhooks) ---

# --- account, numbers, template deletion (whatsapp.services.accounts) ---
