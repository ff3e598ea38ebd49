"""Settings for devstore's own commands (`manage.py devstore`, `manage.py demo`): the app's settings
plus the devstore app. Production settings (shopseg.settings) leave devstore out."""
from shopseg.settings import *  # noqa: F403 (devstore runs beside the app with the app's settings)
from shopseg.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "devstore"]
