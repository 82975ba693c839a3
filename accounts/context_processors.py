from django.conf import settings


def current_account(request):
    return {
        "portal": getattr(request, "portal", None),
        "PORTAL_NAME": settings.PORTAL_NAME,
    }
