"""Encryption at rest for shop tokens: Fernet with a rotatable key list (newest first)."""
from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured("SHOPSEG_TOKEN_KEYS must be urlsafe-base64 32-byte Fernet keys") from exc


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.SHOPSEG_TOKEN_KEYS))


def encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    try:
        return fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        raise ImproperlyConfigured("A stored token cannot be decrypted with SHOPSEG_TOKEN_KEYS") from None


def rotate(ciphertext: str) -> str:
    """Re-encrypt under the newest key (after a new key was prepended to SHOPSEG_TOKEN_KEYS)."""
    return fernet().rotate(ciphertext.encode()).decode()


class EncryptedTextField(models.TextField):
    """A text column that only ever holds ciphertext; the model attribute is the plaintext."""

    def from_db_value(self, value, expression, connection):
        return None if value in (None, "") else decrypt(value)

    def get_prep_value(self, value):
        return None if value in (None, "") else encrypt(str(value))
