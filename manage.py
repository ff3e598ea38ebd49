#!/usr/bin/env python
"""Django's command-line utility for shopseg."""
import os
import sys


def main() -> None:
    # devstore (the local Shopify) is not part of the product: its commands bring their own settings.
    if sys.argv[1:2] in (["devstore"], ["demo"], ["history_replay"]):
        os.environ["DJANGO_SETTINGS_MODULE"] = "devstore.settings"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shopseg.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
