"""Our Segment → Braze destinations against ~300 generated cases run through Segment's own package:
fixtures/segment-braze-oracle-cases.json, written by scripts/gen_oracle_cases.py (seeded) with
/work/shared/tools/segment-destination-oracle (`@segment/action-destinations` 3.497.0). Same checks as
test_braze_fixtures.py, whose helpers feed a case to our code: same requests key for key and in order, or the same
refusal, event by event for a batch. Known gaps are strict xfails (XFAILS), each naming the difference."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from emulator.segment.destinations import braze_cloud

from .test_braze_fixtures import ENDPOINT, _as_sent, _case_id, _plan

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "segment-braze-oracle-cases.json"
CASES = json.loads(FIXTURES.read_text())["cases"]

# description -> what differs (ours vs Segment's). Strict: a fixed gap turns the suite red until it is removed here.
XFAILS: dict[str, str] = {
    # ajv coerces a number to a string with JavaScript's String(): exponent notation from 1e21 and below 1e-6.
    "092 identify reserved-key mix #2": 'email 1e21 to string: ours "1000000000000000000000", Segment "1e+21"',
    "119 identify numeric phone/gender/name 1e+21":
        'phone, gender, first_name 1e21 to string: ours "1000000000000000000000", Segment "1e+21"',
    "120 identify numeric phone/gender/name 1.5e+21":
        'phone, gender, first_name 1.5e21 to string: ours "1500000000000000000000", Segment "1.5e+21"',
    "122 identify numeric phone/gender/name -1.5e-07":
        'phone, gender, first_name -1.5e-7 to string: ours "-1.5e-07", Segment "-1.5e-7"',
    "123 identify numeric phone/gender/name 1e-07":
        'phone, gender, first_name 1e-7 to string: ours "1e-07", Segment "1e-7"',
    "124 identify numeric phone/gender/name 1e-06":
        'phone, gender, first_name 0.000001 to string: ours "1e-06", Segment "0.000001"',
    # A float with an integral value (or -0.0) read from JSON: JavaScript writes it back as an integer.
    "126 identify numeric phone/gender/name -0.0": "custom attribute ltv -0.0: ours sends -0.0, Segment 0",
    "127 identify numeric phone/gender/name 100.0": "custom attribute ltv 100.0: ours sends 100.0, Segment 100",
    "217 classic Order Completed, price 10.0 written as a float":
        "purchase price 10.0, quantity 1.0: ours sends 10.0, 1.0, Segment 10, 1",
    "272 current Order Completed, integral floats (total 42.0, price 10.0)":
        "ecommerce products[0].quantity 2.0, price 10.0, total_value 42.0: ours sends floats, Segment 2, 10, 42",
    # Dates: Segment's datetime check and dayjs/Date parsing accept and reject other strings than ours.
    '185 track receivedAt "1795000000000"':
        'receivedAt "1795000000000": ours omits time, Segment sends "1794-11-30T00:00:00.000Z" (dayjs: 1795-00-00)',
    '186 track receivedAt "2026-02-30T10:00:00Z"':
        'receivedAt "2026-02-30T10:00:00Z": ours refuses (Time must be a valid date-like string), Segment sends '
        '"2026-03-02T10:00:00.000Z"',
    '187 track receivedAt "2026-02-29"':
        'receivedAt "2026-02-29": ours refuses (Time must be a valid date-like string), Segment sends '
        '"2026-03-01T00:00:00.000Z"',
    '189 track receivedAt "2026-11-20T24:00:00Z"':
        'receivedAt "2026-11-20T24:00:00Z": ours refuses (Time must be a valid date-like string), Segment sends '
        '"2026-11-21T00:00:00.000Z"',
    '195 track receivedAt "+010000-01-01T00:00:00Z"':
        'receivedAt "+010000-01-01T00:00:00Z": ours refuses (Time must be a valid date-like string), Segment sends '
        '"+010000-01-01T00:00:00.000Z"',
    '198 track receivedAt "2026-W47"':
        'receivedAt "2026-W47": Segment refuses (Time must be a valid date-like string), ours sends '
        '"2026-11-16T00:00:00.000Z"',
    '192 track receivedAt "0001-01-01T00:00:00Z"':
        'time, year 1: ours "1-01-01T00:00:00.000Z", Segment "0001-01-01T00:00:00.000Z"',
    '193 track receivedAt "0099-06-01T00:00:00Z"':
        'time, year 99: ours "99-06-01T00:00:00.000Z", Segment "0099-06-01T00:00:00.000Z"',
    '269 current Order Completed, timestamp "0001-01-01T00:00:00Z"':
        'ecommerce time, year 1: ours "1-01-01T00:00:00.000Z", Segment "0001-01-01T00:00:00.000Z"',
    "363 cohorts: batch, same users with odd timestamps":
        "latest event per user: JavaScript's Date reads 2026-02-30T10:00:00Z, 2026-02-29, 2026-11-20T24:00:00Z, "
        "+010000-01-01T00:00:00Z and rejects 20261120, 2026-W47, ours the reverse: Segment adds o0, o1, o2, ours adds "
        "o0, o2 and removes o1",
}


def _param(case: dict):
    reason = XFAILS.get(case["description"])
    marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
    return pytest.param(case, id=_case_id(case), marks=marks)


def test_every_xfail_names_a_case() -> None:
    assert set(XFAILS) <= {c["description"] for c in CASES}


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_destination_sends_what_segment_sends(case: dict) -> None:
    events = case["events"] if "events" in case else [case["event"]]
    if case["destination"] == "braze":
        # _plan checks the routing in the set the preset's name implies; the case says which set it belongs to.
        for event in events:
            assert [p.name for p in braze_cloud.match_presets(event, case["preset_set"])] == [case["preset_or_action"]]
    plan = _plan(case, events)
    sent = [_as_sent(r) for r in plan.requests]
    expected = [{k: r[k] for k in ("method", "path", "headers", "body")} for r in case["requests"]]
    assert sent == expected
    for ours, theirs in zip(plan.requests, expected):
        # Key for key, in Segment's order (JSON.stringify's), not only equal as dicts.
        assert json.dumps(ours.body) == json.dumps(theirs["body"])
        assert ours.url == ENDPOINT + theirs["path"]
    if case["outcome"] == "error":
        # One event: perform() refused it. A batch: performBatch threw, which fails every event with the message.
        assert set(plan.refusals) == set(range(len(events)))
        for refusal in plan.refusals.values():
            assert (refusal.message, refusal.status) == (case["error"], case.get("error_status", 400))
    elif "event" in case:
        assert plan.refusals == {}
    for index, result in enumerate(case.get("per_event_results", [])):
        if result["status"] >= 400:
            refusal = plan.refusals[index]
            assert (refusal.status, refusal.message) == (result["status"], result["errormessage"])
            if "errortype" in result:
                assert refusal.code == result["errortype"]
        else:
            assert index not in plan.refusals
