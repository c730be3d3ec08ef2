"""Writes to message templates, by concept (STYLE.md: services split past ~400 lines).

Import from here: ``from templates_mgmt.services import template_submit``.
"""

from templates_mgmt.services.lifecycle import (
    template_clone,
    template_create,
    template_delete,
    template_resubmit,
    template_set_default,
    template_submit,
    template_update,
)
from templates_mgmt.services.modules import module_setting_update, template_assign
from templates_mgmt.services.status import template_status_apply
from templates_mgmt.services.sync import SyncResult, templates_sync

__all__ = [
    "SyncResult",
    "module_setting_update",
    "template_assign",
    "template_clone",
    "template_create",
    "template_delete",
    "template_resubmit",
    "template_set_default",
    "template_status_apply",
    "template_submit",
    "template_update",
    "templates_sync",
]
