"""Braze's answers, in one catalogue (SPEC.md §2 "Braze", reference/braze-api.md §1.3, §2.5, §3-5).

Fatal answers are `{"message": "<fatal error>"}` with an optional `errors` list of minor messages
(braze-docs `_docs/_api/errors.md`). Per-object problems of `/users/track` are not fatal: they come back in a
2xx as `errors: [{type, input_array, index}]` and are built by `object_error`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..apierror import CatalogueError


@dataclass(eq=False)
class BrazeError(CatalogueError):
    status: int
    message: str
    errors: tuple = field(default=())

    def body(self) -> dict:
        body: dict = {"message": self.message}
        if self.errors:
            body["errors"] = list(self.errors)
        return body

    def with_errors(self, *errors: object) -> "BrazeError":
        return BrazeError(self.status, self.message, tuple(errors))


SUCCESS = "success"

# --- REST conventions (exact bodies UNCONFIRMED by Braze; SPEC.md §2 fixes them) ---------------------
INVALID_API_KEY = BrazeError(401, "Invalid API Key")
ACCESS_DENIED = BrazeError(403, "Access Denied")
NOT_FOUND = BrazeError(404, "Not Found")
METHOD_NOT_ALLOWED = BrazeError(405, "Method Not Allowed")
RATE_LIMITED = BrazeError(429, "Rate Limited")


def bad_request(message: str, *errors: object) -> BrazeError:
    return BrazeError(400, message, tuple(errors))


INVALID_JSON = bad_request("Invalid JSON: the request body must be a JSON object")

# --- /users/track ---------------------------------------------------------------------------------
NO_VALID_DATA = "Valid data must be provided in the 'attributes', 'events', or 'purchases' fields."
MAX_INPUT_LENGTH = "Max Input Length Exceeded"


def no_valid_data(errors: list[dict]) -> BrazeError:
    return BrazeError(400, NO_VALID_DATA, tuple(errors))


def too_many_objects(array: str, count: int, limit: int = 75) -> BrazeError:
    return bad_request(MAX_INPUT_LENGTH, f"'{array}' has {count} objects; the limit is {limit} per array")


def object_error(kind: str, input_array: str, index: int) -> dict:
    return {"type": kind, "input_array": input_array, "index": index}


# `errors[].type` strings: the human forms seen from the live API where known (rudder-transformer mocks),
# otherwise Braze's documented enum codes (post_user_track ja rev. "Endpoint-specific errors").
IDENTIFIER_REQUIRED = "'external_id', 'braze_id', 'user_alias', 'email' or 'phone' is required"
ONE_PRIMARY_IDENTIFIER = "only one of 'external_id', 'braze_id' or 'user_alias' may be provided"
EXTERNAL_ID_TOO_LARGE = "'external_id' must be fewer than 988 bytes"
EMAIL_BAD_FORMAT = "The value provided for the 'email' field is not a valid email."
BAD_EMAIL_SUBSCRIPTION_STATE = "BAD_EMAIL_SUBSCRIPTION_STATE"
BAD_PUSH_SUBSCRIPTION_STATE = "BAD_PUSH_SUBSCRIPTION_STATE"
BAD_LOCATION_UPDATE = "BAD_LOCATION_UPDATE"
BAD_SUBSCRIPTION_GROUP_ARRAY = "BAD_SUBSCRIPTION_GROUP_ARRAY"
BAD_SUBSCRIPTION_GROUP_HASH = "BAD_SUBSCRIPTION_GROUP_HASH"
BAD_SUBSCRIPTION_GROUP_ID = "BAD_SUBSCRIPTION_GROUP_ID"
BAD_SUBSCRIPTION_GROUP_STATE = "BAD_SUBSCRIPTION_GROUP_STATE"
BAD_PUSH_TOKEN_APP_ID = "BAD_PUSH_TOKEN_APP_ID"
BAD_PUSH_TOKEN_STRING = "BAD_PUSH_TOKEN_STRING"


def not_valid(field_name: str) -> str:
    return f"'{field_name}' is not valid"


# --- identity family (post_user_alias, post_user_identify, post_user_delete, post_users_export_ids) ----
TOO_MANY_IDS = "The max number of external_ids and aliases per request was exceeded"

# --- /users/merge (post_users_merge.md, quoted) ----------------------------------------------------------
MERGE_UPDATES_NOT_ARRAY = "'merge_updates' must be an array of objects"
MERGE_TOO_MANY = "a single request may not contain more than 50 merge updates"
MERGE_BAD_IDENTIFIER = ("identifiers must be objects with an 'external_id' property that is a string, 'user_alias' "
                        "property that is an object, 'email' property that is a string, or 'phone' property that is "
                        "a string")
MERGE_BAD_KEYS = "'merge_updates' must only have 'identifier_to_merge' and 'identifier_to_keep'"

# --- partner cohorts (cohort_import.md error table, quoted) ------------------------------------------------
INVALID_PARTNER_API_KEY = BrazeError(401, "Invalid Partner API key")
INVALID_CLIENT_SECRET = BrazeError(401, "Invalid client secret")
COHORT_ID_INVALID = bad_request("cohort_id must be a valid string")
COHORT_CHANGES_INVALID = bad_request(
    "cohort_changes must be an array of objects each with key user_ids and/or device_ids mapping to an array of "
    "strings, or an aliases object")
COHORT_TOO_MANY_IDS = bad_request("Only 1,000 user_ids, device_ids, and aliases are allowed per request")
COHORT_NAME_INVALID = bad_request("name must be a non-empty string")
COHORT_CREATED_AT_INVALID = bad_request("created_at must be a valid time as an ISO-8601 string")


def unknown_cohort(cohort_id: str) -> BrazeError:
    # Braze does not document this case; Segment always creates the cohort first. Loud rather than silent.
    return bad_request(f"cohort_id must be a valid string: no cohort '{cohort_id}' was created with "
                       "POST /partners/segment/cohorts")
