"""The debugger keeps the newest messages of each source, even when the bound falls inside a batch that mixes
accepted and dropped messages; ids run in batch order and page with before_id across both kinds."""
from emulator import Sandbox


def _batch(*items: dict) -> list[dict]:
    return [dict(item, type=item.get("type", "track"), event=item.get("event", "Viewed")) for item in items]


def test_a_bound_inside_a_mixed_batch_keeps_exactly_the_newest_messages_in_order():
    with Sandbox(config={"segment": {"debugger_limit": 5}}) as sb:
        sb.segment.ingest(_batch({"userId": "a", "messageId": "m1"}, {"messageId": "m2"},
                                 {"userId": "b", "messageId": "m3"}, {"userId": "c", "messageId": "m4"}))
        sb.segment.ingest(_batch({"userId": "d", "messageId": "m5"}, {"userId": "e", "messageId": "m1"},
                                 {"anonymousId": "f", "messageId": "m7"}))
        entries = sb.segment.debugger(limit=100)
        assert [e["messageId"] for e in entries] == ["m7", "m1", "m5", "m4", "m3"]
        assert [e["status"] for e in entries] == ["accepted", "dropped", "accepted", "accepted", "accepted"]
        assert entries[1]["reason_code"] == "duplicate_message_id"
        ids = [e["id"] for e in entries]
        assert ids == sorted(ids, reverse=True) and ids[0] - ids[-1] == 4
        assert entries[3]["raw"] == {"userId": "c", "messageId": "m4", "type": "track", "event": "Viewed"}
        assert entries[0]["message"]["anonymousId"] == "f" and entries[1]["message"] is None
        older = sb.segment.debugger(before_id=entries[1]["id"], limit=2)
        assert [e["messageId"] for e in older] == ["m5", "m4"]
        assert [e["messageId"] for e in sb.segment.debugger(status="accepted", user_id="b")] == ["m3"]
        # the event log is not bounded: every accepted message is still there
        assert [m["messageId"] for m in sb.segment.events()] == ["m1", "m3", "m4", "m5", "m7"]


def test_ids_continue_after_the_oldest_messages_are_trimmed():
    with Sandbox(config={"segment": {"debugger_limit": 3}}) as sb:
        for n in range(4):
            sb.segment.ingest(_batch({"userId": "u", "messageId": f"a{n}"}, {"messageId": f"no-ids-{n}"}))
        entries = sb.segment.debugger(limit=100)
        assert [e["messageId"] for e in entries] == ["no-ids-3", "a3", "no-ids-2"]
        assert [e["id"] for e in entries] == [8, 7, 6]
        assert sb.segment.debugger(before_id=6) == []
