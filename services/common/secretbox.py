"""Secrets at rest: AES-256-GCM under the deployment key, as ``sealed:v1:<base64(nonce + ciphertext)>``.

The deployment key is ``SEYMOUR_SECRET_KEY`` (any string; hashed to 32 bytes) or, when that is unset, a
random key kept in ``<data_dir>/secret.key`` (created 0600 on first use) — every home process of one
deployment must see the same key. A sealed value is opened only where it is used: the router opens a
run's secrets into that run's message, nothing else holds them in clear.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets
import time
from pathlib import Path
from typing import Final, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from contracts.v1.checks import SEALED_PREFIX
from services.common.settings import Settings

log = logging.getLogger(__name__)

PREFIX: Final = SEALED_PREFIX
_AAD: Final = b"seymour-secret-v1"
_NONCE: Final = 12


class SealError(ValueError):
    """A sealed value that this deployment's key cannot open (another key, or tampered with)."""


def is_sealed(value: object) -> bool:
    """Whether ``value`` is a sealed token (not a secret in clear)."""
    return isinstance(value, str) and value.startswith(PREFIX)


class Sealer(Protocol):
    """What sealing code needs: :class:`SecretBox` or :class:`LazyBox`."""

    def seal(self, value: str) -> str:
        """``value`` sealed."""
        ...

    def open(self, token: str) -> str:
        """The clear value of ``token``; raises :class:`SealError`."""
        ...


class SecretBox:
    """Seals and opens secret values with one key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the deployment key must be 32 bytes")
        self._aead = AESGCM(key)

    def seal(self, value: str) -> str:
        """``value`` encrypted (a fresh nonce each time, so equal secrets do not look equal)."""
        nonce = secrets.token_bytes(_NONCE)
        sealed = self._aead.encrypt(nonce, value.encode(), _AAD)
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, token: str) -> str:
        """The clear value of a sealed ``token``. Raises :class:`SealError`."""
        if not is_sealed(token):
            raise SealError("not a sealed value")
        try:
            raw = base64.urlsafe_b64decode(token[len(PREFIX) :])
            return self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], _AAD).decode()
        except (InvalidTag, ValueError) as exc:
            raise SealError("the deployment key cannot open this value") from exc


class LazyBox:
    """The deployment's box, made on first use (so a process that never seals makes no key file)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._box: SecretBox | None = None

    def _get(self) -> SecretBox:
        if self._box is None:
            self._box = deployment_box(self._settings)
        return self._box

    def seal(self, value: str) -> str:
        """See :meth:`SecretBox.seal`."""
        return self._get().seal(value)

    def open(self, token: str) -> str:
        """See :meth:`SecretBox.open`."""
        return self._get().open(token)


def _await_written(path: Path) -> None:
    """Another process is creating the key file: wait (bounded) until its key is there."""
    deadline = time.monotonic() + 2.0
    while path.stat().st_size < 32 and time.monotonic() < deadline:
        time.sleep(0.01)


def deployment_box(settings: Settings) -> SecretBox:
    """The box of this deployment's key (see the module docstring)."""
    if settings.secret_key:
        return SecretBox(hashlib.sha256(settings.secret_key.encode()).digest())
    path = Path(settings.data_dir) / "secret.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            _await_written(path)
        else:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(secrets.token_bytes(32))
            log.info("created a deployment key path=%s", path)
    key = path.read_bytes()
    return SecretBox(key if len(key) == 32 else hashlib.sha256(key).digest())
