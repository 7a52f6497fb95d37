"""Braze's value formats: every documented time form, countries, and a durable store."""
import pytest

from emulator import Sandbox
from emulator.braze.values import country_code, parse_time, time_text


@pytest.mark.parametrize("text, expected", [
    ("2013-07-16T19:20:45+01:00", "2013-07-16T18:20:45.000Z"),
    ("2013-07-16T19:20:45.123Z", "2013-07-16T19:20:45.123Z"),
    ("2013-07-16T19:20:45:123Z", "2013-07-16T19:20:45.123Z"),     # yyyy-MM-ddTHH:mm:ss:SSSZ
    ("2013-07-16T19:20:45", "2013-07-16T19:20:45.000Z"),          # no zone: UTC
    ("2013-07-16 19:20:45", "2013-07-16T19:20:45.000Z"),
    ("2013-07-16", "2013-07-16T00:00:00.000Z"),                   # midnight UTC
    ("07/16/2013", "2013-07-16T00:00:00.000Z"),                   # MM/dd/yyyy
    ("12-1-2021", "2021-12-01T00:00:00.000Z"),                    # "treated as time" (custom_attributes.md)
    ("Tue Jul 16 19:20:45 +0100 2013", "2013-07-16T18:20:45.000Z"),
])
def test_documented_time_forms_parse(text, expected):
    assert time_text(parse_time(text)) == expected


@pytest.mark.parametrize("text", ["3001-01-01", "soon", "2013-13-40", "", "2013"])
def test_non_times_stay_strings(text):
    assert parse_time(text) is None


@pytest.mark.parametrize("name, code", [("Australia", "AU"), ("united kingdom", "GB"), ("UK", "GB"), ("USA", "US"),
                                        ("DEU", "DE"), ("br", "BR"), ("Narnia", None)])
def test_countries_map_best_effort(name, code):
    assert country_code(name) == code


def test_profiles_survive_a_restart_of_a_file_store(tmp_path):
    path = tmp_path / "store.db"
    with Sandbox(path=path) as sb:
        sb.braze.track(attributes=[{"external_id": "u1", "plan": "pro"}])
        before = sb.braze.user("u1")
    with Sandbox(path=path) as sb:
        assert sb.braze.user("u1") == before
