"""The Engage query language: every documented function, sugar, junction and example parses to the right AST.

Facts: reference/segment-query-language.md §2 (docs src/api/public-api/query-language.md).
"""
from datetime import date, datetime, timedelta, timezone

import pytest

from emulator.segment.engage.durations import Duration, parse_duration
from emulator.segment.engage.query import (
    Aggregation, AllUsers, And, AnyUser, Between, Comparison, ContextRef, EventStream, ExpiresAfter, Literal, Not,
    Or, PropertyRef, Query, QueryError, TraitRef, Within, check_definition, iter_nodes, parse,
)


def num(n):
    return Literal(n, "number")


def s(text):
    return Literal(text, "string")


def ev(name, **kw):
    return EventStream("event", name, **kw)


def count_at_least(stream, n=1):
    return Comparison(Aggregation(stream, "count"), "at_least", num(n))


# --- §2.4 examples, verbatim ------------------------------------------------------------------------------------

AUDIENCE_EXAMPLES = [
    "event('Shoes Bought').where( property('price') >= 100 ).within(7 days).count() >= 1",
    "event('Shoes Bought').where( \nproperty('price') >= trait('avg_spend')\nAND \n"
    "event('Shoes Returned').within(parent: 5 days).count() >= 1 \n).within(30 days).count() >= 1",
    "NOT ( event('Shoes Bought').count() >= 1 AND trait('total_spend') > 200 )",
    "ALL ( event('Shoes Bought').count() >= 1 AND trait('total_spend') > 200 )",
    "ALL NOT event('Shoes Bought').count() >= 1",
    "ANY event('Shoes Bought').count() >= 1",
    "entity('orders').where(entity('order-products').count() >= 1).count() >= 1",
    "entity('orders').count() >= 1 OR trait('VIP') = 'true'",
    "entity('orders').where(property('total') > 500).count() >= 1",
    "event('Purchased').count() >= 1",
    "event('Purchased').count() >= 3",
]
TRAIT_EXAMPLES = [
    "event('Shoes Bought').within(30 days).avg(property('spend'))",
    "event('Shoes Bought').where( property('price') > 100 AND property('brand') = 'My Brand' ).min(property('spend'))",
    "event('Shoes Bought').within(30 days).first(property('spend'))",
    "event('Shoes Bought').within(30 days).mode(property('spend'), 2)",
    "event('Shoes Bought').count()",
]
# §2.4 fragments 14-22 are parts of a query; each is embedded in the smallest query that can hold it.
FRAGMENTS = [
    ("event('X').max(property('spend') as string)", "trait"),
    ("event('X').mode(property('spend') as array, 2)", "trait"),
    ("event('X').between(7 days, 10 days).count() >= 1", "audience"),
    ("event('X').expires_after(1 hour).count()", "trait"),
    ("trait('interests').contains('shoes','shirts')", "audience"),
    ("trait('interests').none_of('shoes','shirts')", "audience"),
    ("trait('signup').before_date(2023-12-07T18:50:00Z)", "audience"),
    ("trait('signup').before_date('2023-12-07T18:50:00Z')", "audience"),
    ("trait('signup').within_last(7 days)", "audience"),
    ("event('Page Viewed').where(context('page.url').contains('pricing')).count() >= 1", "audience"),
]
# Low-authority corpus quoted in reference §2.4: useful as parser fixtures (bare .20, NOT/ANY without parens).
CORPUS = [
    "trait('predictive_vip_665') <= .20 AND event('Page Viewed').within(90 days).count() = 0",
    "event('Page Viewed').where(context('timestamp').before_date('2023-08-25T02:00:00-07:00')).count() >= 1",
    "event('Product Added').where(NOT event('Order Completed').within(parent: 30 days).count() = 1)"
    ".between(14 days, 30 days).count() >= 1",
    "trait('email').contains('@') AND event('Motivation Submitted').count() >= 1",
    "trait('primaryEmail').exists()",
    "event('Quote Generated').where(property('quote_id') = trait('quote_id')).count() >= 1",
    "trait('j_o_1234_step_2') = true",
]


@pytest.mark.parametrize("text", AUDIENCE_EXAMPLES + CORPUS)
def test_every_documented_audience_example_parses_to_a_condition(text):
    query = parse(text, "audience")
    assert query.result_type == "boolean"
    assert isinstance(query, Query) and query.text == text


@pytest.mark.parametrize("text", TRAIT_EXAMPLES)
def test_every_documented_computed_trait_example_parses_to_a_scalar(text):
    query = check_definition(text, "trait")
    assert query.result_type in ("number", "string", "any")


@pytest.mark.parametrize("text,kind", FRAGMENTS)
def test_every_documented_fragment_parses_inside_a_query(text, kind):
    assert check_definition(text, kind).kind == kind


def test_first_docs_example_has_every_part_in_the_ast():
    query = parse(AUDIENCE_EXAMPLES[0])
    assert query.root == Comparison(
        Aggregation(ev("Shoes Bought", where=Comparison(PropertyRef("price", ("price",)), "at_least", num(100)),
                       window=Within(Duration(7, "day"))), "count"),
        "at_least", num(1))


def test_funnel_example_keeps_the_dynamic_reference_and_the_parent_window():
    query = parse(AUDIENCE_EXAMPLES[1])
    stream = query.root.subject.stream
    assert stream.window == Within(Duration(30, "day"))
    assert stream.where == And((
        Comparison(PropertyRef("price", ("price",)), "at_least", TraitRef("avg_spend", ("avg_spend",))),
        count_at_least(ev("Shoes Returned", window=Within(Duration(5, "day"), parent=True))),
    ))


def test_multiline_query_keeps_line_and_column_of_each_node():
    query = parse(AUDIENCE_EXAMPLES[1])
    inner = query.root.subject.stream.where.operands[1]
    assert (inner.pos.line, inner.pos.column) == (4, 1)
    assert query.source(inner) == "event('Shoes Returned').within(parent: 5 days).count() >= 1"


def test_account_examples_parse_to_any_and_all():
    assert isinstance(parse(AUDIENCE_EXAMPLES[3]).root, AllUsers)
    root = parse(AUDIENCE_EXAMPLES[4]).root
    assert isinstance(root, AllUsers) and isinstance(root.operand, Not)
    assert isinstance(parse(AUDIENCE_EXAMPLES[5]).root, AnyUser)


# --- extractors -------------------------------------------------------------------------------------------------

def test_event_extractor_keeps_the_event_name():
    assert parse("event('Order Completed').count() >= 1").root.subject.stream == ev("Order Completed")


def test_entity_extractor_is_a_stream_of_the_entity():
    assert parse("entity('accounts').count() >= 1").root.subject.stream == EventStream("entity", "accounts")


def test_trait_extractor_splits_nested_paths_and_reports_the_key():
    query = parse("trait('address.city') = 'Paris'")
    assert query.root.subject == TraitRef("address.city", ("address", "city"))
    assert query.references == ("address",)


def test_escaped_dot_is_part_of_the_name_not_a_traversal():
    assert parse(r"trait('v1\.2') = 1").root.subject.path == ("v1.2",)
    assert parse(r"trait('v1\\.2.x') = 1").root.subject.path == ("v1.2", "x")


def test_property_extractor_inside_where_and_with_parent():
    query = parse("event('A').where(event('B').where(property('sku') = property(parent: 'sku'))"
                  ".within(parent: 1 day).count() >= 1).count() >= 1")
    inner = query.root.subject.stream.where.subject.stream.where
    assert inner == Comparison(PropertyRef("sku", ("sku",)), "equals", PropertyRef("sku", ("sku",), parent=True))


def test_context_extractor_reads_a_nested_context_field():
    where = parse("event('Page Viewed').where(context('page.url') = 'x').count() >= 1").root.subject.stream.where
    assert where.subject == ContextRef("page.url", ("page", "url"))


@pytest.mark.parametrize("text,expected", [
    ("literal(100)", Literal(100, "number")),
    ("literal(1.5)", Literal(1.5, "number")),
    ("literal('value')", Literal("value", "string")),
    ("literal(2022-10-17)", Literal(date(2022, 10, 17), "date")),
    ("literal(2022-10-17T00:00:00)", Literal(datetime(2022, 10, 17, tzinfo=timezone.utc), "timestamp")),
    ("100", Literal(100, "number")),
    (".20", Literal(0.2, "number")),
    ("-3", Literal(-3, "number")),
    ("'it\\'s'", Literal("it's", "string")),
    ('"double"', Literal("double", "string")),
    ("true", Literal(True, "boolean")),
    ("FALSE", Literal(False, "boolean")),
    ("2023-08-25T02:00:00-07:00", Literal(datetime(2023, 8, 25, 9, tzinfo=timezone.utc), "timestamp")),
])
def test_literals_and_their_sugar_keep_type_and_value(text, expected):
    argument = parse(f"trait('t') = {text}").root.argument
    assert argument == expected
    assert type(argument.value) is type(expected.value)


# --- filters ----------------------------------------------------------------------------------------------------

def test_where_filters_combine_with_and():
    stream = parse("event('A').where(property('a') = 1).where(property('b') = 2).count() >= 1").root.subject.stream
    assert stream.where == And((Comparison(PropertyRef("a", ("a",)), "equals", num(1)),
                                Comparison(PropertyRef("b", ("b",)), "equals", num(2))))


@pytest.mark.parametrize("sources", ["{exclude: 'src1', 'src2'}", "{exclude: ['src1', 'src2']}",
                                     "{ EXCLUDE : [ 'src1' , 'src2' ] }"])
def test_sources_exclude_accepts_both_list_syntaxes(sources):
    stream = parse(f"event('A').sources({sources}).count() >= 1").root.subject.stream
    assert stream.exclude_sources == ("src1", "src2")


@pytest.mark.parametrize("text,window", [
    ("within(7 days)", Within(Duration(7, "day"))),
    ("within(1 day)", Within(Duration(1, "day"))),
    ("within(12 hours)", Within(Duration(12, "hour"))),
    ("between(7 days, 10 days)", Between(Duration(7, "day"), Duration(10, "day"))),
    ("expires_after(1 hour)", ExpiresAfter(Duration(1, "hour"))),
    ("expires_after(30 seconds)", ExpiresAfter(Duration(30, "second"))),
])
def test_time_window_filters(text, window):
    assert parse(f"event('A').{text}.count()", "trait").root.stream.window == window


# --- reducers ---------------------------------------------------------------------------------------------------

PRICE = PropertyRef("price", ("price",))


@pytest.mark.parametrize("text,function,as_type,min_frequency,result", [
    ("count()", "count", None, None, "number"),
    ("sum(property('price'))", "sum", None, None, "number"),
    ("avg(property('price'))", "avg", None, None, "number"),
    ("max(property('price'))", "max", "number", None, "number"),
    ("max(property('price') as string)", "max", "string", None, "string"),
    ("min(property('price') as number)", "min", "number", None, "number"),
    ("mode(property('price'), 2)", "mode", "string", 2, "string"),
    ("mode(property('price') as number, 3)", "mode", "number", 3, "number"),
    ("mode(property('price') as array, 2)", "mode", "array", 2, "any"),
    ("mode(property('price'))", "mode", "string", 1, "string"),
    ("first(property('price'))", "first", None, None, "any"),
    ("last(property('price'))", "last", None, None, "any"),
    ("unique(property('price'))", "unique", None, None, "list"),
    ("unique(property('price')).count()", "unique_count", None, None, "number"),
])
def test_reducers_keep_function_argument_and_type(text, function, as_type, min_frequency, result):
    query = check_definition(f"event('A').{text}", "trait")
    agg = query.root
    assert (agg.function, agg.as_type, agg.min_frequency) == (function, as_type, min_frequency)
    assert agg.argument == (None if function == "count" else PRICE)
    assert query.result_type == result


def test_reducer_can_read_a_context_field():
    assert parse("event('A').last(context('page.url'))", "trait").root.argument == ContextRef("page.url",
                                                                                                ("page", "url"))


# --- comparators ------------------------------------------------------------------------------------------------

ONE = [("equals", "equals"), ("differs", "differs"), ("greater_than", "greater_than"), ("at_least", "at_least"),
       ("less_than", "less_than"), ("at_most", "at_most"), ("starts_with", "starts_with"),
       ("ends_with", "ends_with"),
       # deprecated names (renamed 2024-04-11)
       ("eq", "equals"), ("neq", "differs"), ("gt", "greater_than"), ("gte", "at_least"), ("lt", "less_than"),
       ("lte", "at_most")]


@pytest.mark.parametrize("spelled,operator", ONE)
def test_one_argument_comparators(spelled, operator):
    query = parse(f"trait('t').{spelled}(5)")
    assert query.root == Comparison(TraitRef("t", ("t",)), operator, num(5))
    assert bool(query.warnings) == (spelled != operator)


@pytest.mark.parametrize("sugar,operator", [("=", "equals"), ("==", "equals"), ("!=", "differs"),
                                            (">", "greater_than"), (">=", "at_least"), ("<", "less_than"),
                                            ("<=", "at_most")])
def test_comparator_sugar_means_the_named_comparator(sugar, operator):
    assert parse(f"trait('t') {sugar} 5").root == parse(f"trait('t').{operator}(5)").root


@pytest.mark.parametrize("spelled,operator", [("exists", "exists"), ("absent", "absent"), ("is_set", "exists"),
                                              ("is_null", "absent")])
def test_no_argument_comparators(spelled, operator):
    assert parse(f"trait('t').{spelled}()").root == Comparison(TraitRef("t", ("t",)), operator, None)


@pytest.mark.parametrize("spelled,operator", [("contains", "contains"), ("omits", "omits"), ("one_of", "one_of"),
                                              ("none_of", "none_of"), ("contains_one", "contains")])
@pytest.mark.parametrize("args", ["'shoes','shirts'", "['shoes', 'shirts']"])
def test_list_comparators_accept_both_list_syntaxes(spelled, operator, args):
    query = parse(f"trait('t').{spelled}({args})")
    assert query.root == Comparison(TraitRef("t", ("t",)), operator, (s("shoes"), s("shirts")))


def test_single_value_list_comparator_still_gives_a_tuple():
    assert parse("trait('email').contains('@')").root.argument == (s("@"),)


@pytest.mark.parametrize("operator", ["before_date", "after_date"])
@pytest.mark.parametrize("arg", ["2023-12-07T18:50:00Z", "'2023-12-07T18:50:00Z'", "'2023-12-07T18:50:00.000Z'"])
def test_date_comparators_accept_quoted_and_bare_timestamps(operator, arg):
    root = parse(f"trait('t').{operator}({arg})").root
    assert root.operator == operator
    assert root.argument == Literal(datetime(2023, 12, 7, 18, 50, tzinfo=timezone.utc), "timestamp")


def test_date_comparator_accepts_a_plain_date():
    assert parse("trait('t').after_date(2023-12-07)").root.argument == Literal(date(2023, 12, 7), "date")


@pytest.mark.parametrize("operator", ["within_last", "within_next", "before_last", "after_next"])
def test_relative_date_comparators_take_a_duration(operator):
    query = parse(f"trait('birthday').{operator}(7 days)")
    assert query.root == Comparison(TraitRef("birthday", ("birthday",)), operator, Duration(7, "day"))
    assert query.windows == (Duration(7, "day"),)


def test_comparison_value_may_be_another_scalar():
    root = parse("event('A').count() > event('B').count()").root
    assert root.argument == Aggregation(ev("B"), "count")


# --- junctions and keywords -------------------------------------------------------------------------------------

A, B, C = ("trait('a') = 1", "trait('b') = 1", "trait('c') = 1")


def _t(name):
    return Comparison(TraitRef(name, (name,)), "equals", num(1))


def test_and_binds_tighter_than_or():
    assert parse(f"{A} OR {B} AND {C}").root == Or((_t("a"), And((_t("b"), _t("c")))))


def test_parentheses_override_precedence():
    assert parse(f"({A} OR {B}) AND {C}").root == And((Or((_t("a"), _t("b"))), _t("c")))


def test_chains_of_the_same_junction_are_flattened():
    assert parse(f"{A} AND {B} AND {C}").root == And((_t("a"), _t("b"), _t("c")))


def test_not_binds_to_the_next_condition():
    assert parse(f"NOT {A} AND {B}").root == And((Not(_t("a")), _t("b")))


def test_keywords_and_function_names_are_case_insensitive():
    lower = parse("any event('x').where(property('p') >= 1).within(7 DAYS).count() >= 1 and not trait('y').exists()"
                  " or all trait('z').IS_SET()")
    upper = parse("ANY EVENT('x').WHERE(PROPERTY('p') >= 1).Within(7 days).COUNT() >= 1 AND NOT Trait('y').exists()"
                  " OR ALL trait('z').exists()")
    assert lower.root == upper.root


def test_names_inside_quotes_keep_their_case():
    assert parse("event('Order Completed').count() >= 1").root.subject.stream.name == "Order Completed"


def test_node_positions_do_not_affect_equality_and_every_node_has_one():
    a = parse("trait('a') = 1 AND event('x').count() >= 1")
    b = parse("trait('a')   =   1   AND   event('x').count()   >=   1")
    assert a.root == b.root
    assert all(node.pos is not None for node in iter_nodes(a.root))


# --- results, references, windows -------------------------------------------------------------------------------

def test_references_lists_each_trait_and_audience_key_once_in_order():
    query = parse("trait('vip') = true AND event('x').where(property('a') = trait('b')).count() >= 1 "
                  "OR trait('vip').exists()")
    assert query.references == ("vip", "b")


def test_windows_lists_every_duration_the_query_measures_time_with():
    query = parse("event('a').within(7 days).count() >= 1 AND event('b').between(1 day, 3 days).count() >= 1 "
                  "AND trait('t').within_next(2 hours)")
    assert query.windows == (Duration(7, "day"), Duration(1, "day"), Duration(3, "day"), Duration(2, "hour"))


def test_query_without_time_has_no_windows():
    assert parse("event('a').count() >= 1").windows == ()


def test_primary_expressions_counts_every_comparison():
    assert parse(AUDIENCE_EXAMPLES[1]).primary_expressions == 3


# --- durations --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,duration,seconds", [("7 days", Duration(7, "day"), 7 * 86400),
                                                   ("1 Hour", Duration(1, "hour"), 3600),
                                                   ("30 seconds", Duration(30, "second"), 30)])
def test_durations_parse_to_amount_unit_and_timedelta(text, duration, seconds):
    assert parse_duration(text) == duration
    assert duration.timedelta == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["7d", "7 weeks", "days", ""])
def test_undocumented_duration_spellings_are_refused(text):
    with pytest.raises(ValueError):
        parse_duration(text)
