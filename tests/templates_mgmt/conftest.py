import pytest


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Uploaded header files go to a throwaway directory, never to var/media."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT
