"""MQTT topic names of the v1 contract: every topic is built and parsed here.

    posproctor/v1/agents/{agent}/state                  retained birth / will
    posproctor/v1/agents/{agent}/stores/{store}/status  retained StoreStatus
    posproctor/v1/agents/{agent}/cycle                  CycleSummary

``{agent}`` and ``{store}`` are slugs (``[a-z0-9_-]+``). Building a topic
from a bad agent id is a programming error (``ValueError``); parsing a topic
that does not follow the contract is a ``DecodeError``, since topics arrive
from the network like payloads do.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from shared.errors import DecodeError
from shared.model import slugify

PREFIX = "posproctor/v1"
KINDS = ("state", "status", "cycle")

_SLUG = re.compile(r"[a-z0-9_-]+")


def is_slug(text: str) -> bool:
    """Return True when ``text`` may name one topic level (``[a-z0-9_-]+``)."""
    return _SLUG.fullmatch(text) is not None


def _agent_level(agent: str) -> str:
    if not is_slug(agent):
        raise ValueError(f"agent id {agent!r} is not a slug ([a-z0-9_-]+)")
    return agent


def state_topic(agent: str) -> str:
    """Return the retained birth/will topic of ``agent``."""
    return f"{PREFIX}/agents/{_agent_level(agent)}/state"


def status_topic(agent: str, store: str) -> str:
    """Return the retained status topic of the store named ``store``."""
    return f"{PREFIX}/agents/{_agent_level(agent)}/stores/{slugify(store)}/status"


def cycle_topic(agent: str) -> str:
    """Return the topic of ``agent``'s poll-cycle summaries."""
    return f"{PREFIX}/agents/{_agent_level(agent)}/cycle"


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed v1 topic: ``kind`` is "state", "status" or "cycle"."""

    kind: str
    agent: str
    store: str | None = None  # the store's slug, for "status" only


def parse_topic(topic: str) -> Topic:
    """Parse a v1 topic, raising ``DecodeError`` for anything else."""
    levels = topic.split("/")
    if levels[:3] != ["posproctor", "v1", "agents"] or len(levels) < 5:
        raise DecodeError(
            f"topic {topic[:200]!r} is not a posproctor/v1 agent topic", "topic"
        )
    agent, rest = levels[3], levels[4:]
    if not is_slug(agent):
        raise DecodeError(f"topic {topic[:200]!r}: agent is not a slug", "topic")
    if rest in (["state"], ["cycle"]):
        return Topic(kind=rest[0], agent=agent)
    if len(rest) == 3 and rest[0] == "stores" and rest[2] == "status":
        if not is_slug(rest[1]):
            raise DecodeError(f"topic {topic[:200]!r}: store is not a slug", "topic")
        return Topic(kind="status", agent=agent, store=rest[1])
    raise DecodeError(f"topic {topic[:200]!r} is not a known v1 topic", "topic")


def subscriptions(agents: Sequence[str] = ()) -> list[str]:
    """Return the topic filters that cover ``agents``, or every agent if empty."""
    if not agents:
        return [f"{PREFIX}/agents/+/#"]
    return [f"{PREFIX}/agents/{_agent_level(agent)}/#" for agent in agents]
