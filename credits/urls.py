"""Settings → IM credits, mounted at ``settings/credits/`` (namespace ``credits``)."""

from django.urls import path

from credits.views import overview, purchases

app_name = "credits"

urlpatterns = [
    path("", overview.overview, name="overview"),
    path("threshold/", overview.threshold, name="threshold"),
    path("ledger/", overview.ledger, name="ledger"),
    path("buy/", purchases.buy, name="buy"),
    path("buy/calculate/", purchases.buy_calculate, name="buy_calculate"),
    path("purchases/<int:pk>/", purchases.purchase, name="purchase"),
    path("purchases/<int:pk>/cancel/", purchases.purchase_cancel_view, name="purchase_cancel"),
    path("purchases/<int:pk>/status/", purchases.purchase_status, name="purchase_status"),
    path("purchases/<int:pk>/receipt/", purchases.receipt, name="receipt"),
    path("purchases/<int:pk>/receipt.pdf", purchases.receipt_pdf_view, name="receipt_pdf"),
    path("sandbox-checkout/<int:pk>/", purchases.sandbox_checkout, name="sandbox_checkout"),
]
