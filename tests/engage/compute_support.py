"""Helpers for the Engage evaluation tests: evaluate a definition and name the members by user id."""
from __future__ import annotations

from typing import Any

from emulator import Sandbox
from emulator.segment.engage.compute import Evaluator
from emulator.segment.engage.query import check_definition


def user_of(sandbox: Sandbox) -> dict[str, str]:
    """profile id -> its user_id (or anonymous_id when it has none)."""
    out: dict[str, str] = {}
    for row in sandbox.store.query("SELECT profile_id, type, value FROM engage_external_ids"
                                   " WHERE type IN ('user_id', 'anonymous_id', 'group_id')"
                                   " ORDER BY type = 'user_id' DESC, type = 'group_id' DESC"):
        out.setdefault(row["profile_id"], row["value"])
    return out


def evaluate(sandbox: Sandbox, text: str, kind: str = "audience", **kwargs: Any) -> dict[str, Any]:
    """The definition's value per user id, checked to be the same in batch and for each profile alone."""
    query = check_definition(text, kind)
    evaluator = Evaluator(sandbox.store)
    at = kwargs.pop("at", None) or sandbox.clock.now()
    batch = evaluator.evaluate(query, at=at, **kwargs)
    for profile_id, value in batch.items():
        alone = evaluator.evaluate(query, at=at, profile_ids=[profile_id], **kwargs)
        assert alone == {profile_id: value}, (text, profile_id)
    names = user_of(sandbox)
    return {names.get(pid, pid): value for pid, value in batch.items()}


def members(sandbox: Sandbox, text: str, **kwargs: Any) -> set[str]:
    return {user for user, value in evaluate(sandbox, text, **kwargs).items() if value}
