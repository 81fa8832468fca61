"""The bus documents itself: ``/schema/asyncapi.json`` is an AsyncAPI 3.0 document generated from the
contracts and the topology, so every queue, every message kind and its payload schema is in it."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.topology import EXCHANGE_OF, ROUTING_KEYS, QueueSpec
from contracts.v1 import MESSAGE_TYPES
from services.common.bus.asyncapi import QUEUES

from .conftest import Api


@pytest.fixture
async def document(api: Api) -> dict[str, Any]:
    anonymous = await api.client.get("/schema/asyncapi.json", headers={"Authorization": ""})
    assert anonymous.status_code == 401, "a token is needed, as for the OpenAPI schema"
    response = await api.client.get("/schema/asyncapi.json")
    assert response.status_code == 200
    return dict(response.json())


async def test_the_document_is_asyncapi_3_with_every_message_payload(document: dict[str, Any]) -> None:
    assert document["asyncapi"] == "3.0.0"
    assert {model.__name__ for model in MESSAGE_TYPES} <= set(document["components"]["schemas"])


@pytest.mark.parametrize(("queue", "purpose"), QUEUES, ids=[queue.name for queue, _ in QUEUES])
async def test_every_consumed_queue_is_a_channel_bound_to_its_exchange(
    document: dict[str, Any],
    queue: QueueSpec,
    purpose: str,
) -> None:
    names = {
        channel["bindings"]["amqp"]["queue"]["name"]
        for channel in document["channels"].values()
        if channel["bindings"]["amqp"]["is"] == "queue"
    }
    assert queue.name in names
    described = [c for c in document["channels"].values() if c.get("description") == purpose]
    assert described, f"{queue.name} says who consumes it"


async def test_every_message_kind_is_published_to_its_exchange_and_key(document: dict[str, Any]) -> None:
    published = {
        (channel["bindings"]["amqp"]["exchange"]["name"], channel["address"])
        for channel in document["channels"].values()
        if channel["bindings"]["amqp"]["is"] == "routingKey"
    }
    expected = {(EXCHANGE_OF[kind], ROUTING_KEYS.get(kind, "{region}")) for kind in EXCHANGE_OF}
    assert published == expected
