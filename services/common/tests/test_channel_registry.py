"""The channel registry and the contract agree: every channel kind a check may name has a provider that
declares its label, destination and secrets, and no provider exists for a kind the contract lacks."""

from __future__ import annotations

import typing

import pytest
from pydantic import BaseModel

from contracts.v1.checks import AlertChannel
from services.common.channels import CHANNELS, PROVIDERS


def contract_kinds() -> dict[str, type[BaseModel]]:
    """Each ``channel`` literal of the contract's AlertChannel union, with its model."""
    union = typing.get_args(AlertChannel)[0]
    kinds: dict[str, type[BaseModel]] = {}
    for model in typing.get_args(union):
        (kind,) = typing.get_args(model.model_fields["channel"].annotation)
        kinds[kind] = model
    return kinds


def test_every_contract_channel_kind_has_a_provider_and_every_provider_a_contract_kind() -> None:
    assert sorted(PROVIDERS) == sorted(contract_kinds())


@pytest.mark.parametrize("kind", sorted(contract_kinds()), ids=str)
def test_a_provider_declares_fields_its_contract_model_has(kind: str) -> None:
    info = CHANNELS[kind]
    model = contract_kinds()[kind]
    assert info.kind == kind
    assert info.model is model
    assert info.label
    declared = {info.destination, *info.secrets, *([info.form_secret] if info.form_secret else [])}
    if info.secret_url:
        declared.add("url")
    assert declared <= set(model.model_fields), f"{kind} declares fields its contract model lacks"
