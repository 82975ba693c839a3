from django.urls import path

from . import views

app_name = "inbox"

urlpatterns = [
    path("mail/confirm/<str:token>/", views.mail_confirm, name="confirm"),
]
