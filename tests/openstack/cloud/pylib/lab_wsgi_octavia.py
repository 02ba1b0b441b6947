import os
import sys

# octavia.wsgi.api hands sys.argv to oslo.config (via setup_app(argv=None)); under gunicorn that is
# gunicorn's flags. Give it only the config file.
sys.argv = [sys.argv[0], "--config-file", os.environ["OCTAVIA_CONF"]]
from octavia.wsgi.api import application  # noqa
