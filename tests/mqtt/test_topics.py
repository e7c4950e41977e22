"""Topic names of the v1 contract, built and parsed."""

from __future__ import annotations

import pytest

from shared.errors import DecodeError
from shared.topics import (
    Topic,
    cycle_topic,
    parse_topic,
    state_topic,
    status_topic,
    subscriptions,
)


def test_topics_follow_the_contract():
    assert state_topic("edge-1") == "posproctor/v1/agents/edge-1/state"
    assert cycle_topic("edge_2") == "posproctor/v1/agents/edge_2/cycle"
    assert (
        status_topic("edge-1", "Main St. #12")
        == "posproctor/v1/agents/edge-1/stores/main-st-12/status"
    )


def test_built_topics_parse_back():
    assert parse_topic(state_topic("a1")) == Topic("state", "a1")
    assert parse_topic(cycle_topic("a1")) == Topic("cycle", "a1")
    assert parse_topic(status_topic("a1", "Store 7")) == Topic(
        "status", "a1", "store-7"
    )


@pytest.mark.parametrize("agent", ["Edge-1", "edge 1", "", "edge/1", "edge+", "#", "é"])
def test_bad_agent_ids_are_refused_when_building(agent):
    with pytest.raises(ValueError, match="slug"):
        state_topic(agent)
    with pytest.raises(ValueError):
        subscriptions([agent])


def test_store_without_letters_or_digits_is_refused():
    with pytest.raises(ValueError):
        status_topic("edge-1", "!!!")


@pytest.mark.parametrize(
    "topic",
    [
        "",
        "posproctor/v1",
        "posproctor/v2/agents/a/state",
        "other/v1/agents/a/state",
        "posproctor/v1/agents/a",
        "posproctor/v1/agents/A/state",
        "posproctor/v1/agents/a b/state",
        "posproctor/v1/agents//state",
        "posproctor/v1/agents/a/state/extra",
        "posproctor/v1/agents/a/stores/s/status/x",
        "posproctor/v1/agents/a/stores/S 1/status",
        "posproctor/v1/agents/a/stores//status",
        "posproctor/v1/agents/a/stores/s",
        "posproctor/v1/agents/a/store/s/status",
        "posproctor/v1/agents/a/logs",
        "posproctor/v1/agents/+/state",
    ],
)
def test_foreign_topics_are_decode_errors(topic):
    with pytest.raises(DecodeError):
        parse_topic(topic)


def test_subscriptions_cover_every_agent_or_the_chosen_ones():
    assert subscriptions() == ["posproctor/v1/agents/+/#"]
    assert subscriptions(["east", "west"]) == [
        "posproctor/v1/agents/east/#",
        "posproctor/v1/agents/west/#",
    ]
