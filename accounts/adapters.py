from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings
from django.urls import reverse


class PortalAccountAdapter(DefaultAccountAdapter):
    def send_mail(self, template_prefix, email, context):
        context = {**context, "PORTAL_NAME": settings.PORTAL_NAME}
        return super().send_mail(template_prefix, email, context)

    def get_login_redirect_url(self, request):
        # An invitation link opened before signing in comes back to itself via ?next=.
        return super().get_login_redirect_url(request) or reverse("dashboard")
