"""Secrets at rest: sealed under the deployment key, opened only with it."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from services.common.secretbox import SealError, deployment_box, is_sealed
from services.common.settings import Settings


def test_sealed_values_open_only_with_the_same_key(tmp_path: Path) -> None:
    box = deployment_box(Settings(secret_key="one key"))
    sealed = box.seal("hunter2")
    assert is_sealed(sealed)
    assert "hunter2" not in sealed
    assert box.seal("hunter2") != sealed, "a fresh nonce each time"
    assert deployment_box(Settings(secret_key="one key")).open(sealed) == "hunter2"
    with pytest.raises(SealError):
        deployment_box(Settings(secret_key="another key")).open(sealed)
    with pytest.raises(SealError):
        box.open(sealed[:-4] + "AAAA")


def test_without_a_configured_key_one_is_made_private_and_kept(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secret_key=None)
    sealed = deployment_box(settings).seal("s3cret")
    key = tmp_path / "secret.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert len(key.read_bytes()) == 32
    assert deployment_box(settings).open(sealed) == "s3cret"
