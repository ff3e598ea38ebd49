"""Re-encrypt every stored token under the newest key in SHOPSEG_TOKEN_KEYS.

Rotation: prepend a new key to SHOPSEG_TOKEN_KEYS and deploy, run this, then drop the old key.
"""
from django.core.management.base import BaseCommand
from django.db import connection, transaction

from segments.shops import crypto
from segments.shops.models import Shop

COLUMNS = ("access_token", "refresh_token")


class Command(BaseCommand):
    help = "Re-encrypt shop tokens with the newest SHOPSEG_TOKEN_KEYS key."

    def handle(self, *args, **opts):
        table = Shop._meta.db_table
        rotated = 0
        with transaction.atomic(), connection.cursor() as cursor:
            # Raw SQL on purpose: the model field decrypts, and here we want the ciphertext itself.
            cursor.execute(f"SELECT id, {', '.join(COLUMNS)} FROM {table}")  # noqa: S608 - fixed names
            for row_id, *values in cursor.fetchall():
                fresh = [crypto.rotate(v) if v else v for v in values]
                cursor.execute(f"UPDATE {table} SET {', '.join(f'{c} = %s' for c in COLUMNS)} WHERE id = %s",
                               [*fresh, row_id])
                rotated += 1
        self.stdout.write(f"re-encrypted tokens of {rotated} shop(s)")
