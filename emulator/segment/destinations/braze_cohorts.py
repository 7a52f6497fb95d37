"""Braze Cohorts: the pure mapping from Engage audience events to Braze's partner cohort requests.

Mirrors `@segment/action-destinations` 3.497.0 `destinations/braze-cohorts` (action `syncAudiences`): per batch
(batch keys `cohort_name`, `cohort_id`) an optional create call `POST /partners/segment/cohorts`, then one
`POST /partners/segment/cohorts/users` with an add block and/or a remove block.

Settings: `client_secret`, `endpoint`, `personas_audience_key` (the mapping's hard-coded audience key),
`partner_api_key` (optional: Segment reads it from an env var and omits it when unset), `subscription` (the trigger,
default `event = "Audience Entered" or event = "Audience Exited"`) and `mapping` (field overrides, e.g. `device_id`).
"""
from __future__ import annotations

import functools
from functools import cmp_to_key
from typing import Any, Callable

from emulator.segment.destinations.base import (
    PAYLOAD_VALIDATION_FAILED, USER_AGENT, DestinationRefusal, EventOutcome, Plan, PlannedRequest,
    batch_membership_error, check_payload, http_error_code, membership_error, reason_phrase, thrown_failure,
)
from emulator.segment.destinations.jsvalues import date_ms, js_index
from emulator.segment.destinations.mapping import UNDEFINED, Subscription, compile_mapping, default_mapping, truthy

CREATE_PATH = "/partners/segment/cohorts"
USERS_PATH = "/partners/segment/cohorts/users"
# Braze's cohort import spec: "The maximum combined length of the user IDs in a single request is 1,000."
MAX_IDS_PER_REQUEST = 1000
AUDIENCE_KEY_MISMATCH = "The value of `personas computation key` and `personas_audience_key` must match."
DEFAULT_SUBSCRIPTION = 'event = "Audience Entered" or event = "Audience Exited"'


@functools.lru_cache(maxsize=64)
def _subscription(text: str) -> Subscription:
    """Parsed once per text: a Subscription is immutable once built."""
    return Subscription(text)


SYNC_AUDIENCES_FIELDS: dict[str, dict] = {
    "external_id": {"label": "External User ID", "type": "string", "default": {"@path": "$.userId"}},
    "user_alias": {"label": "User Alias Object", "type": "object",
                   "properties": {"alias_name": {"label": "Alias Name", "type": "string", "required": True},
                                  "alias_label": {"label": "Alias Label", "type": "string", "required": True}}},
    "device_id": {"label": "Device ID", "type": "string"},
    "cohort_id": {"label": "Cohort ID", "type": "string", "required": True,
                  "default": {"@path": "$.context.personas.computation_id"}},
    "cohort_name": {"label": "Cohort Name", "type": "string", "required": True,
                    "default": {"@path": "$.context.personas.computation_key"}},
    "enable_batching": {"label": "Enable Batching", "type": "boolean", "default": True},
    "personas_audience_key": {"label": "Segment Engage Audience Key", "type": "string", "required": True},
    # `@if exists $.properties`: a track with `properties: {}` reads membership from it (so: remove), never traits.
    "event_properties": {"label": "Event Properties", "type": "object", "required": True,
                         "default": {"@if": {"exists": {"@path": "$.properties"}, "then": {"@path": "$.properties"},
                                             "else": {"@path": "$.traits"}}}},
    "time": {"label": "Time", "type": "string", "required": True, "default": {"@path": "$.timestamp"}},
    "batch_keys": {"label": "Batch Keys", "type": "string", "multiple": True,
                   "default": ["cohort_name", "cohort_id"]},
}
DEFAULT_MAPPING = default_mapping(SYNC_AUDIENCES_FIELDS)


def subscribed(event: dict, subscription: str | None = None) -> bool:
    """syncAudiences' trigger; default `event = "Audience Entered" or event = "Audience Exited"`. An identify-mode
    audience needs a trigger such as `type = "identify"` (membership is then read from the traits)."""
    return _subscription(subscription or DEFAULT_SUBSCRIPTION).matches(event)


def _mapper(settings: dict) -> Callable[[dict], Any]:
    """The syncAudiences mapping for these settings, compiled (`transform` without re-reading the mapping)."""
    mapping = {**DEFAULT_MAPPING, **(settings.get("mapping") or {})}
    if settings.get("personas_audience_key") is not None:
        mapping["personas_audience_key"] = settings["personas_audience_key"]
    return compile_mapping(mapping)


def _partner_key(settings: dict) -> dict:
    # api/index.ts reads BRAZE_COHORTS_PARTNER_API_KEY_EU/_US from the environment; unset -> the key is absent.
    key = settings.get("partner_api_key")
    return {"partner_api_key": key} if key is not None else {}


def _headers() -> dict[str, str]:
    # No auth header: both credentials travel in the JSON body.
    return {"content-type": "application/json", "user-agent": USER_AGENT}


def _by_time_desc(a: tuple[int, Any], b: tuple[int, Any]) -> int:
    ta, tb = a[1], b[1]  # parsed times
    if ta is None or tb is None:
        return 0  # `new Date(x).getTime()` is NaN: the comparator answers NaN, which sorts as "equal"
    return -1 if tb < ta else (1 if tb > ta else 0)


# Object.prototype's members: `event_properties[key]` finds these functions (truthy) where no own field is named so.
_OBJECT_PROTOTYPE = frozenset(("constructor", "hasOwnProperty", "isPrototypeOf", "propertyIsEnumerable",
                               "toLocaleString", "toString", "valueOf", "__defineGetter__", "__defineSetter__",
                               "__lookupGetter__", "__lookupSetter__"))


def _member(properties: Any, key: Any) -> Any:
    """`event_properties[`${personas_audience_key}`]` as JavaScript reads it from the payload's copy: an own
    `__proto__` (JSON.parse's) became the prototype (Object.assign in removeUndefined), so a field it holds is
    inherited, as are Object.prototype's members; `__proto__` itself reads the prototype."""
    if not isinstance(properties, dict):
        return UNDEFINED
    name = str(key)
    # Python keeps the own "__proto__" key; in JavaScript its object value is the prototype (a primitive is ignored,
    # null leaves none)
    proto = properties.get("__proto__", UNDEFINED)
    if name != "__proto__" and name in properties:
        return properties[name]
    if proto is None:
        return UNDEFINED  # no prototype: nothing inherited, not even the __proto__ accessor
    if proto.__class__ is dict:
        if name in proto:
            return proto[name]  # its own fields, its own "__proto__" data field included
    elif proto.__class__ is list:  # an array prototype: its elements and length (its methods are not modelled)
        if name == "length":
            return len(proto)
        if (index := js_index(name, len(proto))) is not None:
            return proto[index]
    if name == "__proto__":
        return True  # Object.prototype's accessor: the prototype, an object
    return True if name in _OBJECT_PROTOTYPE else UNDEFINED


def extract_changes(payloads: list[tuple[int, dict]]) -> tuple[dict, dict]:
    """syncAudiences `extractUsers`: latest event (by `time`) wins per identifier; priority external_id > device_id >
    user_alias. Returns the add block and the remove block ({kind: {id: event index}}, aliases {key: (index, alias)})."""
    # Each time parsed once, not once per comparison; the comparator (and so the order) is unchanged.
    times = [date_ms(payload.get("time", UNDEFINED)) for _, payload in payloads]  # `new Date(b.time)`
    ordered = [payloads[i] for i, _ in sorted(enumerate(times), key=cmp_to_key(_by_time_desc))]
    add: dict[str, dict] = {"user_ids": {}, "device_ids": {}, "aliases": {}}
    remove: dict[str, dict] = {"user_ids": {}, "device_ids": {}, "aliases": {}}
    for index, payload in ordered:
        key = payload.get("personas_audience_key")
        block = add if truthy(_member(payload.get("event_properties"), key)) else remove
        external_id, device_id, alias = payload.get("external_id"), payload.get("device_id"), payload.get("user_alias")
        # The checks mirror index.ts exactly: a seen external_id falls through to device_id, then to the alias.
        if truthy(external_id) and external_id not in add["user_ids"] and external_id not in remove["user_ids"]:
            block["user_ids"][external_id] = index
        elif truthy(device_id) and device_id not in add["device_ids"] and device_id not in remove["device_ids"]:
            block["device_ids"][device_id] = index
        elif truthy(alias):
            alias_key = f"{alias.get('alias_name')}:{alias.get('alias_label')}"
            if alias_key not in add["aliases"] and alias_key not in remove["aliases"]:
                block["aliases"][alias_key] = (index, alias)
    return add, remove


def _id_count(block: dict) -> int:
    return len(block["user_ids"]) + len(block["device_ids"]) + len(block["aliases"])


def _change(block: dict, remove: bool) -> dict:
    change: dict[str, Any] = {
        "user_ids": list(block["user_ids"]),
        "device_ids": list(block["device_ids"]),
        "aliases": [{"alias_name": a.get("alias_name"), "alias_label": a.get("alias_label")}
                    for _, a in block["aliases"].values()],
    }
    if remove:
        change["should_remove"] = True
    return change


def _block_events(block: dict) -> list[int]:
    return [*block["user_ids"].values(), *block["device_ids"].values(), *(i for i, _ in block["aliases"].values())]


def _split(add: dict, remove: dict, limit: int) -> list[list[tuple[dict, bool]]]:
    """Cut the add and remove blocks into requests of at most `limit` ids: adds first, then removes, each request
    holding an add block and/or a remove block in that order."""
    items = [(is_remove, kind, key, value)
             for is_remove, block in ((False, add), (True, remove))
             for kind in ("user_ids", "device_ids", "aliases")
             for key, value in block[kind].items()]
    requests = []
    for start in range(0, len(items), limit):
        blocks: dict[bool, dict[str, dict]] = {}
        for is_remove, kind, key, value in items[start:start + limit]:
            blocks.setdefault(is_remove, {"user_ids": {}, "device_ids": {}, "aliases": {}})[kind][key] = value
        requests.append([(blocks[r], r) for r in (False, True) if r in blocks])
    return requests


def build_requests(events: list[dict], settings: dict, known_cohorts: set[str] | None = None) -> Plan:
    """Plan the cohort requests for `events` (Audience Entered/Exited tracks or audience identifies).

    Events are grouped by (cohort_name, cohort_id) — syncAudiences' batch keys. Per group: the audience-key check
    (on the group's first event, refusing the whole group), a create call unless the cohort name is in
    `known_cohorts` (the names created are returned in `Plan.created_cohorts`, to persist), then the users call(s).

    Segment sends one users call per batch; Braze allows 1,000 ids per request, so a bigger change is split into
    several calls, the add blocks before the remove blocks. Send the requests in order and stop a group at its first
    failure: each request lists the events it carries, and an event's outcome is its last request's.
    """
    known = set(known_cohorts or ())
    plan = Plan(requests=[], refusals={})
    endpoint = settings.get("endpoint", "")
    single = len(events) == 1
    # Segment batches by the mapped batch keys (before the payload check): an event the check refuses still belongs
    # to its batch, and fails with it when something throws before or in performBatch.
    groups: dict[tuple, list[tuple[int, dict]]] = {}
    members: dict[tuple, list[int]] = {}
    trigger = _subscription(settings.get("subscription") or DEFAULT_SUBSCRIPTION)
    mapped = None
    for index, event in enumerate(events):
        if not trigger.matches(event):
            plan.filtered.append(index)
            continue
        if mapped is None:
            mapped = _mapper(settings)  # once per call, on the first subscribed event
        raw = mapped(event)
        key = (raw.get("cohort_name"), raw.get("cohort_id"))
        try:
            members.setdefault(key, []).append(index)
        except TypeError:  # an object or array as a key's value: keyed by its repr
            key = (repr(key[0]), repr(key[1]))
            members.setdefault(key, []).append(index)
        try:
            payload = check_payload(raw, SYNC_AUDIENCES_FIELDS, single)
            if single and (error := membership_error(event)) is not None:
                raise error
        except DestinationRefusal as refusal:
            plan.refusals[index] = refusal
            continue
        groups.setdefault(key, []).append((index, payload))
    for key, payloads in groups.items():
        batch = members[key]
        first = payloads[0][1]
        error = None if single else batch_membership_error(events, batch)
        if error is None and first.get("cohort_name") != first.get("personas_audience_key"):
            error = DestinationRefusal(AUDIENCE_KEY_MISMATCH, 400, PAYLOAD_VALIDATION_FAILED)
        if error is not None:
            for i in batch:  # performBatch (or what runs before it) threw: the whole batch fails
                plan.refusals[i] = error
            continue
        indexes = [i for i, _ in payloads]
        cohort_name, cohort_id = first.get("cohort_name"), first.get("cohort_id")
        base = {**_partner_key(settings), "client_secret": settings.get("client_secret")}
        create = cohort_name not in known
        if create:
            plan.requests.append(PlannedRequest(
                method="POST", path=CREATE_PATH, headers=_headers(),
                body={**base, "name": cohort_name, "cohort_id": cohort_id, "created_at": first.get("time")},
                events=indexes, action="createCohort", endpoint=endpoint, batch=not single, batch_events=indexes,
                batch_members=list(batch)))
            known.add(cohort_name)
            plan.created_cohorts.add(cohort_name)
        add, remove = extract_changes(payloads)
        if not _id_count(add) and not _id_count(remove):
            if not create:
                plan.skipped.extend(indexes)  # nothing to send: Segment reports these delivered (200)
            continue
        for blocks in _split(add, remove, MAX_IDS_PER_REQUEST):
            plan.requests.append(_users_request(base, cohort_id, blocks, endpoint, indexes, single, batch))
    return plan


def _users_request(base: dict, cohort_id: Any, blocks: list[tuple[dict, bool]], endpoint: str,
                   group: list[int], single: bool, members: list[int]) -> PlannedRequest:
    # The whole batch shares the call's fate (the event whose id lost to a later event of the same user included):
    # `events` is the group; `sources` lists the events whose ids the body carries.
    carried = [i for block, _ in blocks for i in _block_events(block)]
    return PlannedRequest(
        method="POST", path=USERS_PATH, headers=_headers(),
        body={**base, "cohort_id": cohort_id, "cohort_changes": [_change(b, r) for b, r in blocks]},
        events=list(group), sources=carried, action="syncAudiences", endpoint=endpoint, batch=not single,
        batch_events=list(group), batch_members=list(members))


def read_response(planned: PlannedRequest, status: int, body: Any) -> list[EventOutcome]:
    """Per-event outcomes: Segment gives every event of the batch the status of the call (201 from Braze), or the
    failure of the first call that failed. When only the create call is sent (no ids to change), Segment reports
    200 for the batch; `read_response` on the create call gives the call's own status."""
    if 200 <= status < 300:
        return [EventOutcome(i, status, None, None, body) for i in planned.events]
    # The request client throws an HTTPError; Segment fails the whole batch with its status and status text.
    return thrown_failure(planned, status, http_error_code(status), reason_phrase(status), body)
