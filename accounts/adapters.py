from allauth.account.adapter import DefaultAccountAdapter
from django.urls import reverse


class PortalAccountAdapter(DefaultAccountAdapter):
    def get_login_redirect_url(self, request):
        # An invitation link opened before signing in comes back to itself via ?next=.
        return super().get_login_redirect_url(request) or reverse("dashboard")
