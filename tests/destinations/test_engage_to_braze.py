"""The seed pages' wiring, end to end: Engage audiences reach Braze as attributes, events and cohorts."""
from emulator import Sandbox

DORMANT = "event('Product Viewed').count() >= 3 AND NOT event('Order Completed').within(30 days).count() >= 1"


def sandbox_for(destinations, braze_enabled=True):
    audience = {"key": "dormant_shopper", "query": DORMANT, "destinations": destinations}
    config = {"segment": {"audiences": [audience], "destinations": {"braze": {"enabled": braze_enabled}}},
              "braze": {"segments": [{"name": "Dormant cohort", "filters": [{"segment_cohort": "dormant_shopper"}]}]}}
    return Sandbox(config=config)


def become_dormant(sb, user="u1"):
    sb.segment.ingest([{"type": "identify", "userId": user, "traits": {"email": f"{user}@example.com"}}]
                      + [{"type": "track", "userId": user, "event": "Product Viewed"} for _ in range(3)])
    sb.flush()


def buy(sb, user="u1"):
    sb.segment.ingest([{"type": "track", "userId": user, "event": "Order Completed",
                        "properties": {"products": [{"product_id": "p1", "price": 10}]}}])
    sb.flush()


def test_identify_mode_sets_the_braze_attribute_true_then_false_on_exit():
    with sandbox_for({"braze": {"identify": True}}) as sb:
        become_dormant(sb)
        assert sb.braze.user(external_id="u1")["custom_attributes"]["dormant_shopper"] is True
        buy(sb)
        assert sb.braze.user(external_id="u1")["custom_attributes"]["dormant_shopper"] is False


def test_track_mode_becomes_an_audience_entered_custom_event():
    with sandbox_for({"braze": {"track": True}}) as sb:
        become_dormant(sb)
        events = {e["name"]: e for e in sb.braze.user(external_id="u1")["custom_events"]}
        assert events["Audience Entered"]["count"] == 1
        buy(sb)
        events = {e["name"]: e for e in sb.braze.user(external_id="u1")["custom_events"]}
        # "Segment sends all ID combinations for Audience Exit events": one call for the userId, one for the email.
        assert events["Audience Exited"]["count"] == 2


def test_cohort_mode_puts_the_user_in_the_cohort_and_the_segment_cohorts_segment_and_out_on_exit():
    with sandbox_for({"braze": {"identify": True}, "braze_cohorts": True}) as sb:
        become_dormant(sb)
        cohort_ids = [m["external_id"] for m in sb.braze.cohort_members("dormant_shopper")]
        assert cohort_ids == ["u1"]
        assert [u["external_id"] for u in sb.braze.segment_members("Dormant cohort")] == ["u1"]
        cohort_calls = sb.journal.search(app="braze", path="/partners/segment/cohorts*")
        assert [c["path"] for c in reversed(cohort_calls)] == ["/partners/segment/cohorts",
                                                               "/partners/segment/cohorts/users"]
        assert cohort_calls[0]["request_body"]["client_secret"] == "sandbox-data-import-key"
        [trace] = sb.segment.deliveries(destination="braze_cohorts")  # both calls are attempts of the message
        assert trace["attempt_count"] == 2
        assert [(a["attempt"], a["request"]["url"].rsplit("/", 1)[-1]) for a in trace["attempts"]] == [
            (1, "cohorts"), (2, "users")]
        buy(sb)
        assert sb.braze.cohort_members("dormant_shopper") == []
        assert sb.braze.segment_members("Dormant cohort") == []


def test_a_user_unknown_to_braze_is_not_added_to_the_cohort():
    # Braze: "A user can only be added to a cohort if the user already exists in Braze".
    with sandbox_for({"braze_cohorts": True}, braze_enabled=False) as sb:
        become_dormant(sb)
        assert sb.braze.cohort_members("dormant_shopper") == []
        assert sb.segment.deliveries(destination="braze_cohorts")[0]["outcome"] == "delivered"


def test_engage_messages_reach_braze_over_http_when_served():
    with sandbox_for({"braze": {"identify": True}}) as sb:
        sb.serve()
        become_dormant(sb)
        assert sb.braze.user(external_id="u1")["custom_attributes"]["dormant_shopper"] is True
        assert sb.journal.search(app="braze", path="/users/track")[0]["request_headers"]["Host"].startswith("127.0.0.1")


def test_a_cohort_batch_retried_after_its_create_call_failed_counts_only_the_calls_that_went_out():
    with sandbox_for({"braze_cohorts": True}) as sb:
        sb.segment.ingest([{"type": "identify", "userId": "u1", "traits": {"email": "u1@example.com"}}])
        sb.flush()
        sb.faults.add(app="braze", path="/partners/segment/cohorts", status=503, count=1)
        become_dormant(sb)  # the create call fails: the users call of the batch is not sent
        sb.clock.advance("2s")
        sb.flush()
        [trace] = sb.segment.deliveries(destination="braze_cohorts")
        assert trace["outcome"] == "delivered" and trace["attempt_count"] == 3
        assert [(a["attempt"], a["outcome"], a["status"], a["request"]["url"].rsplit("/", 1)[-1])
                for a in trace["attempts"]] == [(1, "retrying", 503, "cohorts"), (2, "delivered", 201, "cohorts"),
                                                (3, "delivered", 201, "users")]
