import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
application = get_wsgi_application()

# What start-up loaded (modules, models, URL patterns) lives as long as the process.
# Frozen, it is left out of every garbage collection: unfrozen, each full collection
# walks it again, which added ~170 ms to one request in fifteen (bench/billing_page.py).
gc.freeze()
