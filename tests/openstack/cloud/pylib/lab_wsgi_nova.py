import sys

sys.argv = sys.argv[:1]  # the app hands sys.argv to oslo.config; gunicorn flags would break it
from nova.wsgi.osapi_compute import application  # noqa
