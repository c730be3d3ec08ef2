"""Signals ``books`` sends for the apps built on it (it imports none of them).

``organization_time_zone_changed`` — sent by
:func:`~books.services.organizations.organization_update`, inside its transaction, when the
organization's time zone changed (``sender=Organization``, ``organization=``, ``old_time_zone=``).
What an app scheduled in the organization's time zone moves with it; a receiver that raises rolls
the change back.
"""

from django.dispatch import Signal

organization_time_zone_changed = Signal()
