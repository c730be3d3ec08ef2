"""Mounted at ``/sandbox/``: the Graph stand-in under ``graph/``, the control API, the pages."""

from django.urls import path, re_path

from . import control, graph, views

app_name = "whatsapp_sandbox"

urlpatterns = [
    # Graph API stand-in: WHATSAPP_GRAPH_URL=http://<host>/sandbox/graph
    path("graph/media-download/<str:media_id>/", graph.media_download, name="media_download"),
    re_path(r"^graph/(?P<version>v\d+\.\d+)/(?P<path>.+)$", graph.graph, name="graph"),
    re_path(r"^graph/(?P<path>.*)$", graph.unknown_path, name="graph_unknown"),
    # JSON control API for tests and benchmarks
    path("control/faults", control.faults, name="control_faults"),
    path("control/faults/<int:pk>", control.fault_detail, name="control_fault"),
    path("control/settings", control.sandbox_settings, name="control_settings"),
    path("control/phone_numbers", control.phone_numbers, name="control_phone_numbers"),
    path("control/phone_numbers/<str:phone_number_id>", control.phone_number_detail, name="control_phone_number"),
    path("control/messages", control.messages, name="control_messages"),
    path("control/stats", control.stats, name="control_stats"),
    path("control/webhooks", control.webhooks, name="control_webhooks"),
    path("control/inbound", control.inbound, name="control_inbound"),
    path("control/flush", control.flush, name="control_flush"),
    path("control/reset", control.reset, name="control_reset"),
    # Pages
    path("", views.dashboard, name="dashboard"),
    path("faults/add/", views.fault_add, name="fault_add"),
    path("faults/<int:pk>/remove/", views.fault_remove, name="fault_remove"),
    path("settings/", views.settings_save, name="settings"),
    path("flush/", views.flush_now, name="flush"),
    path("phone/", views.phone_list, name="phone_list"),
    path("phone/media/<str:media_id>/", views.phone_media, name="phone_media"),
    path("phone/<str:wa_id>/", views.phone_thread, name="phone_thread"),
    path("phone/<str:wa_id>/button/", views.phone_button, name="phone_button"),
]
