"""The Cloud API client for an organization's WhatsApp Business account.

Services get their :class:`~whatsapp.client.CloudAPI` here, so the base URL and version always
come from settings (Meta in production, the sandbox in ``make run`` and tests) and the access
token is decrypted only at the moment a request needs it.
"""

from .client import CloudAPI
from .models import WhatsAppAccount


def cloud_api(access_token: str) -> CloudAPI:
    """A client for one access token, on the process's shared connection pool."""
    return CloudAPI(access_token)


def fresh_cloud_api(access_token: str) -> CloudAPI:
    """A client with a connection pool of its own (close it after use): a new connection per
    request, the naive way ``make bench`` compares batched dispatch with."""
    return CloudAPI(access_token, own_pool=True)


def account_cloud_api(account: WhatsAppAccount) -> CloudAPI:
    return cloud_api(account.access_token)
