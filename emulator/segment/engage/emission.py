"""The messages Engage sends to a destination when a profile enters or exits an audience or a trait changes.

Exactly the payloads of segment-api.md §2.2 (segment-docs `src/engage/using-engage-data.md`): identify with
`traits.<key>` and/or track `Audience Entered` / `Audience Exited` / `Trait Computed`, `context.personas`
{computation_class, computation_id, computation_key, namespace, space_id}, `messageId` `personas_…`, and
`integrations: {"All": false, "<destination>": true}`. Besides the key, a payload carries only `userId`,
`anonymousId` and `email` ("Email as an identifier is set in `traits.email` for Identify calls, and
`context.traits.email` for Track calls").
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .definitions import Connection, Definition

# Segment's names for our destination kinds, as `integrations` keys (action-destinations `name`).
INTEGRATION_NAME = {"braze": "Braze Cloud Mode (Actions)", "braze_cohorts": "Braze Cohorts"}


@dataclass(frozen=True)
class Identity:
    """Who a message is about: the ids Engage puts on its payloads."""

    user_id: str | None
    anonymous_id: str | None
    emails: tuple[str, ...]

    def variants(self, fan_out: bool) -> list[str | None]:
        """The email each call carries. Normally one call (with the first email). On a first sync and on an exit,
        one call per identifier: the user_id's (no email) and one per email (using-engage-data.md)."""
        if not fan_out:
            return [self.emails[0] if self.emails else None]
        calls: list[str | None] = [None] if self.user_id is not None else []
        calls.extend(self.emails)
        return calls or [None]


def personas_context(definition: Definition, space_id: str) -> dict:
    return {"computation_class": definition.computation_class, "computation_id": definition.id,
            "computation_key": definition.key, "namespace": space_id, "space_id": space_id}


def build_messages(definition: Definition, connection: Connection, identity: Identity, value: Any, *,
                   entered: bool | None, fan_out: bool, space_id: str, now: str,
                   new_message_id: Callable[[], str]) -> list[dict]:
    """The calls for one profile's change on one destination connection (identify and/or track, per identifier)."""
    messages = []
    for email in identity.variants(fan_out):
        for mode in ("identify", "track"):
            if not getattr(connection, mode):
                continue
            message: dict[str, Any] = {"type": mode}
            if identity.user_id is not None:
                message["userId"] = identity.user_id
            if identity.anonymous_id is not None:
                message["anonymousId"] = identity.anonymous_id
            message["messageId"] = new_message_id()
            context: dict[str, Any] = {"personas": personas_context(definition, space_id)}
            if mode == "identify":
                traits = {definition.key: value}
                if email is not None:
                    traits["email"] = email
                message["traits"] = traits
            else:
                if definition.kind == "audience":
                    message["event"] = connection.enter_event if entered else connection.exit_event
                    message["properties"] = {"audience_key": definition.key, definition.key: value}
                else:
                    message["event"] = connection.compute_event
                    message["properties"] = {"trait_key": definition.key, definition.key: value}
                if email is not None:
                    context["traits"] = {"email": email}
            message["context"] = context
            message["integrations"] = {"All": False, INTEGRATION_NAME.get(connection.destination,
                                                                           connection.destination): True}
            message["timestamp"] = now
            message["receivedAt"] = now
            messages.append(message)
    return messages
