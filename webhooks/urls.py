from django.urls import path

from webhooks import views

app_name = "webhooks"
urlpatterns = [path("webhooks/shopify", views.receive, name="receive")]
