"""An invalid Engage query is refused with the line, the column and what was expected, in words a person reads."""
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.segment.engage.query import MAX_PRIMARY_EXPRESSIONS, QueryError, check_definition, parse

# (query, line, column, phrase in `expected`, text in the message)
MALFORMED = [
    ("event('x').count() foo", 1, 20, "a comparator (>=, >, =, ...)", "after count(), got 'foo'"),
    ("event('x').counts() >= 1", 1, 12, "a reducer (count, sum, avg, min, max, mode, first, last, unique)",
     "got 'counts'"),
    ("event('x').within(7 d).count() >= 1", 1, 21, "a time unit (hours or days)", "write the unit in full"),
    ("event('x').count() >=", 1, 22, "a value (a number, a 'quoted string', a date, true/false or trait('...'))",
     "got the end of the query"),
    ("event('x').count() >= 1 && trait('y') = 1", 1, 25, "AND/OR", "use AND to join conditions"),
    ("event('x').count() >= 1 || trait('y') = 1", 1, 25, "AND/OR", "use OR to join conditions"),
    ("", 1, 1, "a condition such as event('...').count() >= 1, trait('...') = 'x', NOT or '('",
     "at the start of the query"),
    ("event('x') >= 1", 1, 12, "'.'", "add a reducer such as .count() before comparing"),
    ("trait('x').count() > 1", 1, 12, "a comparator function (equals, differs, exists, absent, contains, one_of, ...)",
     "count() is a reducer"),
    ("event('x').count().within(7 days) > 1", 1, 20,
     "a comparator function (equals, differs, exists, absent, contains, one_of, ...)", "before the reducer"),
    ("audience('x') = true", 1, 1, "a condition such as event('...').count() >= 1, trait('...') = 'x', NOT or '('",
     "audience() does not exist"),
    ("event('x').unique(property('a')).contains('b')", 1, 34, "count()", "only .count() may follow it"),
    ("event('x'.count() >= 1", 1, 10, "')'", "after the string 'x', got '.'"),
    ("event(x).count() >= 1", 1, 7, "a quoted string such as 'Order Completed'", "got 'x'"),
    ("event('x').count( >= 1", 1, 19, "')'", "after 'count(', got '>='"),
    ("event('x').within(seven days).count() >= 1", 1, 19, "a whole number", "got 'seven'"),
    ("event('x').within(7 minutes).count() >= 1", 1, 21, "a time unit (hours or days)", "got 'minutes'"),
    ("event('x').within(30 seconds).count() >= 1", 1, 22, "a time unit (hours or days)",
     "seconds are only for expires_after()"),
    ("event('x').between(7 days).count() >= 1", 1, 26, "','", "got ')'"),
    ("event('x').sum().count()", 1, 16, "property('...') or context('...')", "after 'sum('"),
    ("event('x').first(trait('a'))", 1, 18, "property('...') or context('...')", "got 'trait'"),
    ("event('x').max(property('a') as text)", 1, 33, "a type (number or string)", "got 'text'"),
    ("event('x').count() >= 1 AND\n\ntrait('y') =", 3, 13, "a value (a number", "got the end of the query"),
    ("event('x').count() >= 1 OR OR trait('y') = 1", 1, 28, "a condition such as", "after 'OR', got 'OR'"),
    ("(event('x').count() >= 1", 1, 25, "')'", "got the end of the query"),
    ("event('x').count() >= 1)", 1, 24, "the end of the query", "got ')'"),
    ("event('x').sources({include: 'a'}).count() >= 1", 1, 21, "'exclude:'", "got 'include'"),
    ("trait('a').contains()", 1, 21, "'['", "after 'contains(', got ')'"),
    ("trait('a').exists(1)", 1, 19, "')'", "got '1'"),
    ("trait('a') => 1", 1, 13, "a value (a number", "got '>'"),
    ("event('x').where().count() >= 1", 1, 18, "a condition such as", "after 'where(', got ')'"),
    ("NOT", 1, 4, "a condition such as", "after 'NOT', got the end of the query"),
    ("trait('email') = 'unterminated", 1, 18, "a value (a number", "got a string that is never closed"),
    ("event('x').count() >= 1 ANDtrait('y') = 1", 1, 25, "AND/OR", "got 'ANDtrait'"),
    ("trait('a').within_last(7)", 1, 25, "a time unit (hours or days)", "got ')'"),
    ("event('x').mode(property('a'), two)", 1, 32, "a whole number", "got 'two'"),
    ("event('Shoes Bought').where( \nproperty('price') >= trait('avg_spend')\nAND \n"
     "event('Shoes Returned').within(parent 5 days).count() >= 1 \n).within(30 days).count() >= 1",
     4, 39, "':'", "after 'parent', got '5'"),
    ("trait('a') = 'x' 'y'", 1, 18, "AND/OR", "got the string 'y'"),
    ("event('x').where(property('a') = 1 AND).count() >= 1", 1, 39, "a condition such as", "got ')'"),
    ("trait('a') in ('x','y')", 1, 12, "a comparator (>=, >, =, ...)", "one_of"),
    ("literal() = 1", 1, 9, "a value (a number, a 'quoted string', a date, true/false)", "got ')'"),
    ("trait('a').contains(['x',])", 1, 26, "a value (a number", "got ']'"),
    ("event('x').count() >= 1 # comment", 1, 25, "the end of the query", "got '#'"),
]

# Terminal names of the grammar must never leak into a message meant for a person.
RAW_TERMINAL = re.compile(r"\$END|__ANON|\b(?:LPAR|RPAR|CMP_OP|NUMBER_T|STRING_T|EXPIRES_AFTER|DOT|COMMA|NAME|INT|"
                          r"STRING|TIMESTAMP|LSQB|RSQB|LBRACE|RBRACE|COLON)\b")


def test_at_least_thirty_malformed_queries_are_covered():
    assert len(MALFORMED) >= 30


@pytest.mark.parametrize("text,line,column,expected,snippet", MALFORMED)
def test_malformed_query_is_refused_with_position_and_what_was_expected(text, line, column, expected, snippet):
    with pytest.raises(QueryError) as info:
        parse(text)
    err = info.value
    assert (err.line, err.column) == (line, column)
    assert any(phrase.startswith(expected) for phrase in err.expected), err.expected
    message = str(err)
    assert message.startswith(f"line {line}, column {column}: expected ")
    assert snippet in message
    assert not RAW_TERMINAL.search(message), message


def test_query_error_is_a_value_error():
    with pytest.raises(ValueError):
        parse("event(")


# --- structural errors: grammatical, but not meaningful -----------------------------------------------------------

STRUCTURE = [
    ("property('x') = 1", 1, 1, "only valid inside where() or as a reducer's argument"),
    ("context('page.url') = 'x'", 1, 1, "only valid inside where()"),
    ("event('x').where(property(parent: 'a') = 1).count() >= 1", 1, 18,
     "only valid inside the where() of an event() that is itself inside another event's where()"),
    ("event('x').within(parent: 3 days).count() >= 1", 1, 12, "only valid on an event() inside another event's where()"),
    ("event('a').where(event('b').sum(property(parent: 'p')) > 1).count() >= 1", 1, 33,
     "property(parent: ...) is only valid inside where()"),
    ("event('x').where(ANY trait('a') = 1).count() >= 1", 1, 18, "not inside where()"),
    ("ANY ALL trait('a') = 1", 1, 5, "cannot be nested inside another ANY or ALL"),
    ("trait('a').before_date('yesterday')", 1, 24, "needs an ISO 8601 timestamp"),
    ("trait('a').after_date(5)", 1, 23, "needs an ISO 8601 timestamp"),
    ("event('x').between(10 days, 7 days).count() >= 1", 1, 12, "for example between(7 days, 10 days)"),
    ("event('x').within(7 days).within(3 days).count() >= 1", 1, 27, "use only one of within(), between()"),
    ("event('x').within(0 days).count() >= 1", 1, 19, "a duration must be at least 1"),
    ("event('x').mode(property('a'), 0)", 1, 32, "minimum frequency must be at least 1"),
    ("event('').count() >= 1", 1, 7, "event() needs a name"),
    ("event('x').count() >= 1 AND trait('y')", 1, 29, "AND needs a condition, but trait('y') is a value"),
    ("NOT event('x').count()", 1, 5, "NOT needs a condition, but event('x').count() is a number"),
    ("event('x').where(property('a')).count() >= 1", 1, 18, "where() needs a condition"),
    ("event('x').sources({exclude: 5}).count() >= 1", 1, 30, "takes quoted source ids"),
    ("trait('a') = 2023-02-30", 1, 14, "is not a valid date"),
]


@pytest.mark.parametrize("text,line,column,snippet", STRUCTURE)
def test_structurally_invalid_query_is_refused_where_the_problem_is(text, line, column, snippet):
    with pytest.raises(QueryError) as info:
        parse(text, "trait" if "mode(" in text else "audience")
    err = info.value
    assert (err.line, err.column) == (line, column), str(err)
    assert snippet in str(err)
    assert err.expected


def _conditions(n):
    return " AND ".join(f"trait('t{i}') = {i}" for i in range(n))


def test_fifty_primary_expressions_are_allowed():
    assert parse(_conditions(MAX_PRIMARY_EXPRESSIONS)).primary_expressions == 50


def test_the_fifty_first_primary_expression_is_refused_where_it_starts():
    text = _conditions(MAX_PRIMARY_EXPRESSIONS + 1)
    with pytest.raises(QueryError) as info:
        parse(text)
    assert info.value.column == text.index("trait('t50')") + 1
    assert "at most 50 primary expressions" in str(info.value)


# --- result type and unsupported features (check_definition) ------------------------------------------------------

def test_computed_trait_that_yields_a_boolean_is_refused():
    with pytest.raises(QueryError) as info:
        check_definition("event('Shoes Bought').count() >= 1", "trait")
    assert (info.value.line, info.value.column) == (1, 1)
    assert "a computed trait definition must compute a value" in str(info.value)
    assert "true or false" in str(info.value)


def test_audience_that_yields_a_number_is_refused_with_a_suggestion():
    with pytest.raises(QueryError) as info:
        check_definition("event('Shoes Bought').count()", "audience")
    message = str(info.value)
    assert "an audience definition must be a condition that is true or false" in message
    assert "computes a number" in message
    assert "event('Shoes Bought').count() >= 1" in message


def test_audience_that_yields_a_list_is_refused():
    with pytest.raises(QueryError, match="computes a list"):
        check_definition("event('x').unique(property('sku'))", "audience")


def test_audience_that_is_a_bare_trait_is_refused():
    with pytest.raises(QueryError, match=r"trait\('vip'\)\.exists\(\)"):
        check_definition("trait('vip')", "audience")


@pytest.mark.parametrize("text", ["event('x').count()", "event('x').unique(property('a'))",
                                  "event('x').last(property('a'))", "trait('a')"])
def test_computed_trait_may_yield_any_scalar_or_a_list(text):
    assert check_definition(text, "trait").result_type != "boolean"


def test_parse_alone_does_not_check_the_result_type():
    assert parse("event('x').count()", "audience").result_type == "number"


@pytest.mark.parametrize("text", [
    "entity('orders').where(entity('order-products').count() >= 1).count() >= 1",
    "entity('orders').count() >= 1 OR trait('VIP') = 'true'",
    "trait('VIP') = 'true' OR entity('orders').where(property('total') > 500).count() >= 1",
])
def test_linked_audience_entity_is_answered_not_supported(text):
    assert parse(text).unsupported  # it parses ...
    with pytest.raises(QueryError) as info:  # ... but a definition using it is refused by name
        check_definition(text, "audience")
    assert "entity('orders')" in str(info.value)
    assert "Linked Audiences, which this emulator does not support" in str(info.value)
    assert info.value.column == text.index("entity(") + 1


def test_unknown_kind_is_a_programming_error():
    with pytest.raises(ValueError, match="kind must be 'audience' or 'trait'"):
        parse("trait('a') = 1", "segment")


# --- robustness -------------------------------------------------------------------------------------------------

FRAGMENTS = ["event('x')", "trait('t')", "property('p')", ".", "count()", "within(7 days)", "where(", ")", "(",
             ">=", "=", "1", "'s'", "AND", "OR", "NOT", "ANY", ",", "[", "]", "sum(property('p'))", "contains(",
             "parent:", "2023-01-01", "  ", "\n", "&&", "@", "exists()", "unique(property('p'))", "between(1 day, 2 days)"]


@settings(max_examples=200)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=14))
def test_any_input_either_parses_or_is_refused_with_a_position(parts):
    text = "".join(parts)
    try:
        query = parse(text)
    except QueryError as err:
        lines = text.split("\n")
        assert 1 <= err.line <= len(lines)
        assert 1 <= err.column <= len(lines[err.line - 1]) + 1
        assert err.expected
    else:
        assert query.result_type


@settings(max_examples=100)
@given(name=st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30).filter(str.strip),
       n=st.integers(min_value=0, max_value=10**9))
def test_any_event_name_and_count_round_trip(name, n):
    quoted = name.replace("\\", "\\\\").replace("'", "\\'")
    query = parse(f"event('{quoted}').count() >= {n}")
    assert query.root.subject.stream.name == name
    assert query.root.argument.value == n


def test_missing_dot_between_functions_is_pointed_out():
    with pytest.raises(QueryError) as info:
        parse("event('x')where(property('a') = 1).count() >= 1")
    assert (info.value.line, info.value.column) == (1, 11)
    assert "functions are chained with '.', as in .where(...)" in str(info.value)
