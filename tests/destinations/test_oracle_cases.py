"""Our Segment → Braze destinations against ~300 generated cases run through Segment's own package:
fixtures/segment-braze-oracle-cases.json, written by scripts/gen_oracle_cases.py (seeded) with
/work/shared/tools/segment-destination-oracle (`@segment/action-destinations` 3.497.0). Same checks as
test_braze_fixtures.py, whose helpers feed a case to our code: same requests key for key and in order, or the same
refusal, event by event for a batch; a case with an `answer` (Braze answering something else than 201) also checks
each event's outcome once our read_response read that answer. Known gaps are strict xfails (XFAILS), each naming the
difference."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from emulator.segment.destinations import braze_cloud, braze_cohorts

from .test_braze_fixtures import ENDPOINT, _as_sent, _case_id, _plan

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "segment-braze-oracle-cases.json"
CASES = json.loads(FIXTURES.read_text())["cases"]

# description -> what differs (ours vs Segment's). Strict: a fixed gap turns the suite red until it is removed here.
# (The 20 gaps the first cases found are fixed: JavaScript number strings and integral floats, dayjs and V8 date
# parsing, toISOString years; emulator/segment/destinations/jsvalues.py. The "fuzz" cases pin what
# scripts/fuzz_oracle.py found next, fixed: doubles beyond 2**53, non-ASCII digit keys, V8's legacy date parser, ajv's
# "Infinity" integers, actions-core's audience-membership TypeError and batch-wide throws, "Invalid time value",
# __proto__ keys and prototypes, Object.prototype members as audience keys, errors[].index as JavaScript reads it.)
XFAILS: dict[str, str] = {}


def _param(case: dict):
    reason = XFAILS.get(case["description"])
    marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
    return pytest.param(case, id=_case_id(case), marks=marks)


def test_every_xfail_names_a_case() -> None:
    assert set(XFAILS) <= {c["description"] for c in CASES}


def _answered(case: dict, plan) -> tuple[list, dict[int, tuple]]:
    """The requests sent and every event's failure once Braze answered the case's `answer` to each request (refusals
    first; a cohort group stops at its first failed call, as the outbox does)."""
    reader = braze_cloud.read_response if case["destination"] == "braze" else braze_cohorts.read_response
    status, body = case["answer"]["status"], case["answer"]["body"]
    failed = {i: (r.status, r.code, r.message) for i, r in plan.refusals.items()}
    replaceable = {i for i, r in plan.refusals.items() if r.status != 429}  # the outbox defers these
    sent = []
    for request in plan.requests:
        sent.append(request)
        for outcome in reader(request, status, body):
            # an answer naming a refused event of the batch replaces its refusal (as the outbox settles it)
            if outcome.index in replaceable or (outcome.index not in failed and not outcome.ok):
                failed[outcome.index] = (outcome.status, outcome.code, outcome.message)
                replaceable.discard(outcome.index)
        if not 200 <= status < 300 and case["destination"] == "braze-cohorts":
            break
    return sent, failed


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_destination_sends_what_segment_sends(case: dict) -> None:
    events = case["events"] if "events" in case else [case["event"]]
    if case["destination"] == "braze":
        # _plan checks the routing in the set the preset's name implies; the case says which set it belongs to.
        for event in events:
            assert [p.name for p in braze_cloud.match_presets(event, case["preset_set"])] == [case["preset_or_action"]]
    plan = _plan(case, events)
    if "answer" in case:  # Braze answered something else than 201 success: per-event outcomes after reading it
        requests, failed = _answered(case, plan)
    else:
        requests, failed = plan.requests, {i: (r.status, r.code, r.message) for i, r in plan.refusals.items()}
    sent = [_as_sent(r) for r in requests]
    expected = [{k: r[k] for k in ("method", "path", "headers", "body")} for r in case["requests"]]
    assert sent == expected
    for ours, theirs in zip(requests, expected):
        # Key for key, in Segment's order (JSON.stringify's), not only equal as dicts.
        assert json.dumps(ours.body) == json.dumps(theirs["body"])
        assert ours.url == ENDPOINT + theirs["path"]
    if case["outcome"] == "error":
        # One event: perform() refused it. A batch: performBatch threw, which fails every event with the message.
        assert set(failed) == set(range(len(events)))
        for status, _, message in failed.values():
            assert (message, status) == (case["error"], case.get("error_status", 400))
    elif "event" in case:
        assert failed == {}
    for index, result in enumerate(case.get("per_event_results", [])):
        if result["status"] >= 400:
            status, code, message = failed[index]
            assert (status, message) == (result["status"], result.get("errormessage"))
            if "errortype" in result:
                assert code == result["errortype"]
        else:
            assert index not in failed
