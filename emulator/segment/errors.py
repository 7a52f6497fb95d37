"""Segment's answers and drop reasons, in one catalogue.

The Tracking API answers 200 to everything but oversize and malformed requests (400); messages it then drops
are visible only in the debugger (segment-docs http-api/index.md). The JSON error body `{code, message}` is
what segment-analytics-python parses into `APIError(status, code, message)`.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..apierror import CatalogueError

SUCCESS_BODY = {"success": True}


@dataclass(eq=False)
class SegmentError(CatalogueError):
    status: int
    code: str
    message: str

    def body(self) -> dict:
        return {"code": self.code, "message": self.message}


def invalid_json(detail: str) -> SegmentError:
    return SegmentError(400, "invalid_request", f"Invalid JSON: {detail}")


def invalid_request(message: str) -> SegmentError:
    return SegmentError(400, "invalid_request", message)


def payload_too_large(size: int, limit: int, what: str = "request") -> SegmentError:
    return SegmentError(400, "invalid_request",
                        f"Exceed payload limit: the {what} is {size:,} bytes, the limit is {limit // 1024} KB")


UNAUTHORIZED = SegmentError(401, "unauthorized", "Invalid write key (strict mode)")
NOT_FOUND = SegmentError(404, "not_found", "No such endpoint")
METHOD_NOT_ALLOWED = SegmentError(405, "method_not_allowed", "Tracking API endpoints accept POST only")


@dataclass(frozen=True)
class Drop:
    """Why a message answered 200 was not kept; shown in the debugger."""

    code: str
    reason: str


# status 'rejected': the source is unknown or wrong; 'dropped': the message itself is refused.
UNKNOWN_WRITE_KEY = Drop("unknown_write_key", "unknown write key")
MISSING_WRITE_KEY = Drop("unknown_write_key", "unknown write key (none was sent)")
WRONG_REGION = Drop("wrong_region", "write key belongs to the other region")
NO_USER_ANON_ID = Drop("no_user_anon_id", "userId or anonymousId is required")
MISSING_EVENT = Drop("missing_event", "track requires an event name")
MISSING_GROUP_ID = Drop("missing_group_id", "group requires a groupId")
MISSING_PREVIOUS_ID = Drop("missing_previous_id", "alias requires a previousId")
DUPLICATE_MESSAGE_ID = Drop("duplicate_message_id", "duplicate messageId (seen in the last 24 hours)")
MESSAGE_ID_TOO_LONG = Drop("message_id_too_long", "messageId is longer than 100 characters")
BATCH_LIMIT = Drop("batch_limit", "more than 2,500 events in one batch")
NOT_AN_OBJECT = Drop("not_an_object", "a batch item must be a JSON object")
INVALID_TYPE = Drop("invalid_type", "type must be one of identify, track, page, screen, group, alias")


def invalid_field(field: str, expected: str) -> Drop:
    return Drop("invalid_field", f"{field} must be {expected}")
