"""JavaScript value semantics the destinations inherit (jsvalues.py): what Node prints and parses, case by case.
Whole events are checked against Segment's package in test_oracle_cases.py; these pin the rules themselves."""
import math

import pytest
from hypothesis import given, strategies as st

from emulator.segment.destinations.jsvalues import (date_ms, dayjs_ms, iso_string, js_index, js_string, json_numbers,
                                                     json_text, number_string, to_number, ymd)


@pytest.mark.parametrize("value, text", [
    (1e21, "1e+21"), (1.5e21, "1.5e+21"), (1e20, "100000000000000000000"), (1e-7, "1e-7"), (-1.5e-7, "-1.5e-7"),
    (1e-6, "0.000001"), (0.000123, "0.000123"), (123e-20, "1.23e-18"), (-0.0, "0"), (100.0, "100"), (0.1 + 0.2,
    "0.30000000000000004"), (5e-324, "5e-324"), (1.7976931348623157e308, "1.7976931348623157e+308"),
    (2**53 + 1, "9007199254740992"), (42, "42"), (math.inf, "Infinity"), (math.nan, "NaN"),
])
def test_number_string_is_javascripts_string(value, text):
    assert number_string(value) == text


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_number_string_reads_back_as_the_same_number(value):
    assert float(number_string(value)) == value


def test_json_text_writes_numbers_as_json_stringify_does_and_leaves_strings_alone():
    body = {"ltv": 100.0, "tiny": [1e-7, 1e-6, 2.5, -0.0], "nan": math.nan, "note": "\x00js-number-0\x00", "é": True}
    assert json_text(body) == '{"ltv":100,"tiny":[1e-7,0.000001,2.5,0],"nan":null,"note":"\\u0000js-number-0\\u0000","é":true}'


@pytest.mark.parametrize("text, date, dayjs", [
    ("2026-11-20T10:00:00.000Z", "2026-11-20T10:00:00.000Z", "2026-11-20T10:00:00.000Z"),
    ("2026-11-20T10:00:00+02:00", "2026-11-20T08:00:00.000Z", "2026-11-20T08:00:00.000Z"),
    ("2026-11-20T10:00:00.1Z", "2026-11-20T10:00:00.100Z", "2026-11-20T10:00:00.100Z"),
    ("2026-02-30T10:00:00Z", "2026-03-02T10:00:00.000Z", "2026-03-02T10:00:00.000Z"),  # V8 rolls the day over
    ("2026-11-20T24:00:00Z", "2026-11-21T00:00:00.000Z", "2026-11-21T00:00:00.000Z"),
    ("2026-11-20T24:00:01Z", None, None),
    ("+010000-01-01T00:00:00Z", "+010000-01-01T00:00:00.000Z", "+010000-01-01T00:00:00.000Z"),
    ("-000001-06-01T00:00:00Z", "-000001-06-01T00:00:00.000Z", "-000001-06-01T00:00:00.000Z"),
    ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000Z", "0001-01-01T00:00:00.000Z"),
    ("2026-W47", None, None),
    ("20261120", None, "2026-11-20T00:00:00.000Z"),  # dayjs's own pattern reads it; Date does not
    ("1795000000000", None, "1794-11-30T00:00:00.000Z"),  # dayjs: year 1795, month 00, day 00
    ("2026-11-20 10:00:00.5", "2026-11-20T10:00:00.500Z", "2026-11-20T10:00:00.005Z"),  # dayjs: "5" ms
    ("0099-06-01", "0099-06-01T00:00:00.000Z", "1999-06-01T00:00:00.000Z"),  # Date.UTC: years 0-99 are 19xx
    (" 2026-11-20T10:00:00Z", None, None),
    ("Fri, 20 Nov 2026 10:00:00 GMT", "2026-11-20T10:00:00.000Z", "2026-11-20T10:00:00.000Z"),
    ("not a date", None, None),
    # V8's legacy parser (scripts/fuzz_oracle.py --values checks thousands more against Node)
    ("Nov 20, 2026 10:00 PM", "2026-11-20T22:00:00.000Z", "2026-11-20T22:00:00.000Z"),
    ("20 Nov 2026", "2026-11-20T00:00:00.000Z", "2026-11-20T00:00:00.000Z"),
    ("-1", "2001-01-01T00:00:00.000Z", "2001-01-01T00:00:00.000Z"),  # month 1, day 1, year 2001 (KJS default)
    ("Nov 20", "2001-11-20T00:00:00.000Z", "2001-11-20T00:00:00.000Z"),
    ("11/31/2026", "2026-12-01T00:00:00.000Z", "2026-12-01T00:00:00.000Z"),
    ("2026-11-20 10:00:00 GMT+0200", "2026-11-20T08:00:00.000Z", "2026-11-20T08:00:00.000Z"),
    ("Fri Nov 20 2026 10:00:00 GMT-0800 (Pacific Standard Time)", "2026-11-20T18:00:00.000Z",
     "2026-11-20T18:00:00.000Z"),
    ("12:00 2026-11-20", "2026-11-20T12:00:00.000Z", "2026-11-20T12:00:00.000Z"),
    (" 2026-11-20", "2026-11-20T00:00:00.000Z", "2026-11-20T00:00:00.000Z"),  # whitespace before, no T after
    ("\u00a02026-11-20", "2026-11-20T00:00:00.000Z", "2026-11-20T00:00:00.000Z"),
    ("2026-11-20\n", "2026-11-20T00:00:00.000Z", "2026-11-20T00:00:00.000Z"),
    ("2026-11-20T10:00:00+02", None, None),  # ajv's date-time accepts it: the ecommerce actions throw
    ("20.11.2026", None, None),
    ("Friday 10:00", None, None),
    ("١٢٣", None, None),  # JavaScript's digits are ASCII
])
def test_dates_parse_as_new_date_and_dayjs_do(text, date, dayjs):
    as_date, as_dayjs = date_ms(text), dayjs_ms(text)
    assert (as_date and iso_string(as_date)) == date
    assert (as_dayjs and iso_string(as_dayjs)) == dayjs


def test_date_of_numbers_null_and_the_limits_of_time():
    assert date_ms(None) == 0 and dayjs_ms(None) is None  # new Date(null) is the epoch; dayjs(null) is invalid
    assert iso_string(date_ms(8.64e15)) == "+275760-09-13T00:00:00.000Z"
    assert date_ms(8.64e15 + 1) is None
    assert iso_string(date_ms(-1)) == "1969-12-31T23:59:59.999Z"


def test_ymd_pads_the_year_like_dayjs():
    assert ymd(dayjs_ms("0005-03-04T00:00:00Z")) == "0005-03-04"
    assert ymd(dayjs_ms("+010000-01-01T00:00:00Z")) == "10000-01-01"


def test_json_numbers_are_the_doubles_json_parse_made():
    big = [2**60 + 3, 1e17 + 8, -(2**63), 10**22 + 1, 2**53 - 1, 10**400]
    assert json_text(big) == "[1152921504606847000,100000000000000000,-9223372036854776000,1e+22,9007199254740991,null]"
    assert json_numbers({"a": 1, "b": [2**53]})["b"] == [9007199254740992]


def test_to_number_reads_javascript_whitespace_and_ascii_digits_only():
    assert to_number("\u00a012\u3000") == 12 and to_number("\ufeff-1e3\n") == -1000
    assert math.isnan(to_number("١٢٣")) and math.isnan(to_number("\u200b12")) and math.isnan(to_number("1_000"))


def test_json_text_escapes_a_lone_surrogate_as_well_formed_json_stringify_does():
    assert json_text({"a": "x\ud800y", "\udc00": "😀é"}) == '{"a":"x\\ud800y","\\udc00":"😀é"}'
    # V8 reads a word from any character from "A" on, surrogates included (Node: both are 2026-11-20)
    assert date_ms("Nov\ud800 20 2026") == date_ms("\ud800 Nov 20 2026") == date_ms("Nov 20 2026")


@pytest.mark.parametrize("key, index", [
    (1, 1), ("1", 1), (1.0, 1), ([1], 1), ("01", None), (-1, None), ("-0", None), (-0.0, 0), (3, None), (None, None),
    (True, None), ("1.0", None), (1.5, None), ({}, None), ([], None), ("١", None),
])
def test_js_index_is_what_an_array_lookup_reads(key, index):
    assert js_index(key, 3) == index


def test_js_string():
    assert [js_string(v) for v in (None, True, 5, 1e21, -0.0, "x", [1, None, [2, "a"]], {"a": 1})] == [
        "null", "true", "5", "1e+21", "0", "x", "1,,2,a", "[object Object]"]


def test_a_path_reads_an_array_element_only_by_a_canonical_index():
    from emulator.segment.destinations.mapping import UNDEFINED, get

    event = {"a": [10, 20]}
    assert get(event, "a.1") == 20 and get(event, "a[1]") == 20
    assert get(event, "a.01") is UNDEFINED  # arr["01"] is undefined in JavaScript
    assert get(event, "a.2") is UNDEFINED


def test_choices_given_as_label_and_value_are_checked_by_value():
    from emulator.segment.destinations.base import DestinationRefusal, check_payload

    fields = {"kind": {"label": "Kind", "type": "string", "choices": [{"label": "A", "value": "a"},
                                                                       {"label": "B", "value": "b"}]}}
    assert check_payload({"kind": "b"}, fields, single=True) == {"kind": "b"}
    try:
        check_payload({"kind": "c"}, fields, single=True)
    except DestinationRefusal as refusal:
        assert str(refusal.message).endswith('must be one of: "a" or "b".')
    else:
        raise AssertionError("refused value accepted")
