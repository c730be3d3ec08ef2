from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path

from books.selectors import dashboard_summary


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    summary = dashboard_summary(organization=request.organization) if request.organization else None
    return render(request, "books/dashboard.html", {"summary": summary})


urlpatterns = [path("", dashboard, name="dashboard")]
