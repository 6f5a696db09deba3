"""Served as ``djangoapp.asgi:application`` (async views in urls.py)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djangoapp.settings")

application = get_asgi_application()
