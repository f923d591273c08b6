"""Credentials at rest: Fernet with rotation (TOLLGATE_ENCRYPTION_KEYS, newest first)."""

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


@cache
def _fernet() -> MultiFernet:
    # Explicit process cache: keys come from settings, which do not change at run time.
    return MultiFernet([Fernet(k.encode()) for k in settings.TOLLGATE_ENCRYPTION_KEYS])


def encrypt(plain: str) -> str:
    return _fernet().encrypt(plain.encode()).decode() if plain else ""


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise ValueError("credential cannot be decrypted with TOLLGATE_ENCRYPTION_KEYS") from None


def rotate(token: str) -> str:
    """Re-encrypt with the newest key (after adding a key at the front of the list)."""
    return _fernet().rotate(token.encode()).decode() if token else ""
