from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from credits.views.stripe_webhook import stripe_webhook
from whatsapp.views.webhook import whatsapp_webhook

urlpatterns = [
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/v1/whatsapp/", include("whatsapp.api.urls")),
    path("api/v1/", include("credits.api.urls")),  # /api/v1/credits…, before the books' catch-all
    path("api/v1/", include("whatsapp.api.send_urls")),
    path("api/v1/", include("books.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("webhooks/whatsapp/", whatsapp_webhook, name="whatsapp_webhook"),
    path("webhooks/stripe/", stripe_webhook, name="stripe_webhook"),
    path("sandbox/", include("whatsapp.sandbox.urls")),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("settings/integrations/whatsapp/", include("whatsapp.urls")),
    path("whatsapp/", include("whatsapp.urls_send")),
    path("settings/credits/", include("credits.urls")),
    path("", include("books.urls")),
]

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
