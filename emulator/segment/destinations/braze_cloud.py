"""Braze Cloud Mode (Actions): the pure mapping from Segment events to Braze `/users/track` requests.

Mirrors `@segment/action-destinations` 3.497.0 `destinations/braze` (what `fixtures/segment-braze-destinations.json`
was generated from) with the actions-core 3.170 pipeline around it: preset mapping -> payload check -> action.

Two preset sets (SPEC.md "Segment destinations"):
- `classic` (default): Identify Calls -> updateUserProfile, Order Completed Calls -> trackPurchase, Track Calls (every
  other track) -> trackEvent. The long-standing presets, what most existing destinations run.
- `current`: what 3.497.0 creates: Order Completed / Checkout Started / Order Refunded / Order Cancelled -> ecommerce,
  Product Viewed -> ecommerceSingleProduct, Identify Calls, and Track Calls for the rest.

A batch of one event goes through the action's `perform`, a larger one through `performBatch` (they differ in small,
visible ways: error codes, `X-Braze-Batch` on ecommerce batches, whether per-item errors in a 2xx answer count).

Settings: `api_key`, `endpoint`, `app_id` (optional), `preset_set` ("classic" | "current", default classic) and
`update_existing_only` (the V2 actions' "update" sync mode: every object carries `_update_existing_only: true`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Collection

from emulator.segment.destinations.base import (
    BAD_REQUEST, MISSING_REQUIRED_FIELDS, PAYLOAD_TOO_LARGE, BatchFailure, PAYLOAD_VALIDATION_FAILED, RETRYABLE_ERROR, USER_AGENT,
    DestinationRefusal, EventOutcome, Plan, PlannedRequest, batch_membership_error, check_payload, http_error_code,
    membership_error, reason_phrase, thrown_failure, to_date, to_iso,
)
from emulator.segment.destinations.jsvalues import is_array_index, js_index, js_string, json_number, json_text
from emulator.segment.destinations.mapping import (
    UNDEFINED, Subscription, compile_mapping, default_mapping, remove_undefined, transform, truthy,
)

MAX_BATCH_SIZE = 75  # braze/constants.ts
TRACK_PATH = "/users/track"
IDENTITY_REQUIRED = 'One of "external_id" or "user_alias" or "braze_id" or "email" is required.'
ECOMMERCE_IDENTITY_REQUIRED = 'One of "external_id" or "user_alias" or "braze_id" or "email" or "phone" is required.'
PRESET_SETS = ("classic", "current")

# -- field definitions (labels matter: ajv-human-errors names a field by its label) --------------------------------

_ALIAS = {"label": "User Alias Object", "type": "object",
          "properties": {"alias_name": {"label": "Alias Name", "type": "string"},
                         "alias_label": {"label": "Alias Label", "type": "string"}}}
_EXTERNAL_ID = {"label": "External User ID", "type": "string", "default": {"@path": "$.userId"}}
_BRAZE_ID = {"label": "Braze User Identifier", "type": "string", "allowNull": True,
             "default": {"@path": "$.properties.braze_id"}}
_UPDATE_ONLY = {"label": "Update Existing Only", "type": "boolean", "default": False}
_BATCHING = {"label": "Batch Data to Braze", "type": "boolean", "default": True}
_BATCH_SIZE = {"label": "Batch Size", "type": "number", "default": 75}


def _if_exists(first: str, second: str) -> dict:
    return {"@if": {"exists": {"@path": first}, "then": {"@path": first}, "else": {"@path": second}}}


TRACK_EVENT_FIELDS: dict[str, dict] = {
    "external_id": _EXTERNAL_ID,
    "user_alias": _ALIAS,
    "email": {"label": "Email", "type": "string",
              "default": _if_exists("$.context.traits.email", "$.properties.email")},
    "braze_id": _BRAZE_ID,
    "name": {"label": "Event Name", "type": "string", "required": True, "default": {"@path": "$.event"}},
    # receivedAt, not timestamp: Braze gets the time Segment received the event (trackEvent/index.ts).
    "time": {"label": "Time", "type": "datetime", "required": True, "default": {"@path": "$.receivedAt"}},
    "properties": {"label": "Event Properties", "type": "object", "default": {"@path": "$.properties"}},
    "_update_existing_only": _UPDATE_ONLY,
    "enable_batching": _BATCHING,
    "batch_size": _BATCH_SIZE,
}

TRACK_PURCHASE_FIELDS: dict[str, dict] = {
    "external_id": _EXTERNAL_ID,
    "user_alias": _ALIAS,
    "email": {"label": "Email", "type": "string", "default": {"@path": "$.traits.email"}},
    "braze_id": _BRAZE_ID,
    "time": {"label": "Time", "type": "datetime", "required": True, "default": {"@path": "$.receivedAt"}},
    "products": {"label": "Products", "type": "object", "multiple": True, "required": True,
                 "additionalProperties": True,
                 "properties": {"product_id": {"label": "Product ID", "type": "string", "required": True},
                                "currency": {"label": "Currency", "type": "string"},
                                "price": {"label": "Price", "type": "number", "required": True},
                                "quantity": {"label": "Quantity", "type": "integer"}},
                 "default": {"@path": "$.properties.products"}},
    "properties": {"label": "Event Properties", "type": "object", "default": {"@path": "$.properties"}},
    "_update_existing_only": _UPDATE_ONLY,
    "enable_batching": _BATCHING,
    "batch_size": _BATCH_SIZE,
}

_STR = {"type": "string"}
UPDATE_USER_PROFILE_FIELDS: dict[str, dict] = {
    "external_id": _EXTERNAL_ID,
    "user_alias": _ALIAS,
    "braze_id": _BRAZE_ID,
    "country": {"label": "Country", "type": "string", "allowNull": True,
                "default": {"@path": "$.context.location.country"}},
    "current_location": {"label": "Current Location", "type": "object", "allowNull": True,
                         "properties": {"latitude": {"label": "Latitude", "type": "number"},
                                        "longitude": {"label": "Longitude", "type": "number"}},
                         "default": {"latitude": {"@path": "$.context.location.latitude"},
                                     "longitude": {"@path": "$.context.location.longitude"}}},
    "date_of_first_session": {"label": "Date of First Session", "type": "datetime", "allowNull": True},
    "date_of_last_session": {"label": "Date of Last Session", "type": "datetime", "allowNull": True},
    "dob": {"label": "Date of Birth", "type": "datetime", "allowNull": True},
    "email": {"label": "Email", "type": "string", "allowNull": True, "default": {"@path": "$.traits.email"}},
    "email_subscribe": {"label": "Email Subscribe", **_STR},
    "email_open_tracking_disabled": {"label": "Email Open Tracking Disabled", "type": "boolean"},
    "email_click_tracking_disabled": {"label": "Email Click Tracking Disabled", "type": "boolean"},
    "facebook": {"label": "Facebook Attribution Data", "type": "object",
                 "properties": {"id": {"label": "Facebook ID", **_STR},
                                "likes": {"label": "Facebook Likes", "type": "string", "multiple": True},
                                "num_friends": {"label": "Facebook Number of Friends", "type": "integer"}}},
    "first_name": {"label": "First Name", "type": "string", "allowNull": True,
                   "default": {"@path": "$.traits.firstName"}},
    "gender": {"label": "Gender", "type": "string", "allowNull": True, "default": {"@path": "$.traits.gender"}},
    "home_city": {"label": "Home City", "type": "string", "allowNull": True,
                  "default": {"@path": "$.traits.address.city"}},
    "image_url": {"label": "Image URL", "type": "string", "format": "uri", "allowNull": True,
                  "default": {"@path": "$.traits.avatar"}},
    "language": {"label": "Language", "type": "string", "allowNull": True},
    # Not allowNull, unlike first_name: a null lastName trait is dropped rather than sent as null.
    "last_name": {"label": "Last Name", "type": "string", "default": {"@path": "$.traits.lastName"}},
    "marked_email_as_spam_at": {"label": "Marked Email as Spam At", "type": "datetime", "allowNull": True},
    "phone": {"label": "Phone Number", "type": "string", "allowNull": True, "default": {"@path": "$.traits.phone"}},
    "push_subscribe": {"label": "Push Subscribe", **_STR},
    "push_tokens": {"label": "Push Tokens", "type": "object", "multiple": True,
                    "properties": {"app_id": {"label": "App ID", "type": "string", "required": True},
                                   "token": {"label": "Token", "type": "string", "required": True},
                                   "device_id": {"label": "Device ID", **_STR}}},
    "time_zone": {"label": "Time zone", **_STR},
    "twitter": {"label": "Twitter Attribution Data", "type": "object",
                "properties": {"id": {"label": "Twitter ID", **_STR},
                               "screen_name": {"label": "Twitter Handle", **_STR},
                               "followers_count": {"label": "Number of Followers", "type": "integer"},
                               "friends_count": {"label": "Number of Friends", "type": "integer"},
                               "statuses_count": {"label": "Number of Statuses", "type": "integer"}}},
    "subscription_groups": {"label": "Subscription Groups", "type": "object", "multiple": True,
                            "properties": {
                                "subscription_group_id": {"label": "Subscription Group ID", "type": "string",
                                                          "required": True},
                                "subscription_state": {"label": "Subscription State", "type": "string",
                                                       "required": True,
                                                       "choices": ["subscribed", "unsubscribed"]}}},
    "custom_attributes": {"label": "Custom Attributes", "type": "object", "default": {"@path": "$.traits"}},
    "_update_existing_only": _UPDATE_ONLY,
    "enable_batching": _BATCHING,
    "batch_size": _BATCH_SIZE,
}

# utils.ts omits the *Track Purchase* action's field names from the traits (it imports ./trackPurchase), plus three.
RESERVED_TRAIT_KEYS = [*TRACK_PURCHASE_FIELDS, "firstName", "lastName", "avatar"]
PRODUCT_RESERVED_KEYS = list(TRACK_PURCHASE_FIELDS["products"]["properties"])
# The same as sets, for `_omit` (object keys are strings: membership is the same, without a scan per key).
_RESERVED_TRAITS = frozenset(RESERVED_TRAIT_KEYS)
_RESERVED_PRODUCT_KEYS = frozenset(PRODUCT_RESERVED_KEYS)

# -- ecommerce (beta) fields: ecommerce/fields.ts ------------------------------------------------------------------

ORDER_PLACED = "ecommerce.order_placed"
CHECKOUT_STARTED = "ecommerce.checkout_started"
ORDER_REFUNDED = "ecommerce.order_refunded"
ORDER_CANCELLED = "ecommerce.order_cancelled"
PRODUCT_VIEWED = "ecommerce.product_viewed"
_ORDER_NAMES = [ORDER_PLACED, ORDER_CANCELLED, ORDER_REFUNDED]

# ecommerce/functions.ts `currencies()`, deduplicated in its order.
CURRENCIES = tuple(dict.fromkeys("""
AFN EUR ALL DZD USD EUR AOA XCD XCD XAD ARS AMD AWG AUD EUR AZN BSD BHD BDT BBD BYN EUR BZD XOF BMD INR BTN BOB BOV USD
BAM BWP NOK BRL USD BND BGN XOF BIF CVE KHR XAF CAD KYD XAF XAF CLP CLF CNY AUD AUD COP COU KMF CDF XAF NZD CRC XOF EUR
CUP XCG EUR CZK DKK DJF XCD DOP USD EGP SVC USD XAF ERN EUR SZL ETB EUR FKP DKK FJD EUR EUR EUR XPF EUR XAF GMD GEL EUR
GHS GIP EUR DKK XCD EUR USD GTQ GBP GNF XOF GYD HTG USD AUD EUR HNL HKD HUF ISK INR IDR XDR IRR IQD EUR GBP ILS EUR JMD
JPY GBP JOD KZT KES AUD KPW KRW KWD KGS LAK EUR LBP LSL ZAR LRD LYD CHF EUR EUR MOP MGA MWK MYR MVR XOF EUR USD EUR MRU
MUR EUR XUA MXN MXV USD MDL EUR MNT EUR XCD MAD MZN MMK NAD ZAR AUD NPR EUR XPF NZD NIO XOF NGN NZD AUD MKD USD NOK OMR
PKR USD PAB USD PGK PYG PEN PHP NZD PLN EUR USD QAR EUR RON RUB RWF EUR SHP XCD XCD EUR EUR XCD WST EUR STN SAR XOF RSD
SCR SLE SGD XCG XSU EUR EUR SBD SOS ZAR SSP EUR LKR SDG SRD NOK SEK CHF CHE CHW SYP TWD TJS TZS THB USD XOF NZD TOP TTD
TND TRY TMT USD AUD UGX UAH AED GBP USD USD USN UYU UYI UYW UZS VUV VES VED VND USD USD XPF MAD YER ZMW ZWG""".split()))


def _when_name(*names: str) -> dict:
    return {"match": "any", "conditions": [{"fieldKey": "name", "operator": "is", "value": n} for n in names]}


_ECOMMERCE_COMMON: dict[str, dict] = {
    "name": {"label": "Ecommerce Event Name", "type": "string", "required": True,
             "choices": [PRODUCT_VIEWED, CHECKOUT_STARTED, ORDER_PLACED, ORDER_CANCELLED, ORDER_REFUNDED]},
    "external_id": _EXTERNAL_ID,
    "user_alias": {"label": "User Alias Object", "type": "object",
                   "properties": {"alias_name": {"label": "Alias Name", "type": "string", "required": True},
                                  "alias_label": {"label": "Alias Label", "type": "string", "required": True}}},
    "email": {"label": "Email", "type": "string", "format": "email",
              "default": _if_exists("$.context.traits.email", "$.properties.email")},
    "phone": {"label": "Phone Number", "type": "string", "allowNull": True,
              "default": _if_exists("$.context.traits.phone", "$.properties.phone")},
    "braze_id": {"label": "Braze User Identifier", "type": "string", "allowNull": True,
                 "default": _if_exists("$.context.traits.braze_id", "$.properties.braze_id")},
    "cancel_reason": {"label": "Cancel Reason", "type": "string", "default": {"@path": "$.properties.reason"},
                      "required": _when_name(ORDER_CANCELLED)},
    # timestamp here, unlike trackEvent's receivedAt (ecommerce/fields.ts).
    "time": {"label": "Time", "type": "string", "format": "date-time", "required": True,
             "default": {"@path": "$.timestamp"}},
    "checkout_id": {"label": "Checkout ID", "type": "string", "default": {"@path": "$.properties.checkout_id"},
                    "required": _when_name(CHECKOUT_STARTED)},
    "order_id": {"label": "Order ID", "type": "string", "default": {"@path": "$.properties.order_id"},
                 "required": _when_name(*_ORDER_NAMES)},
    "cart_id": {"label": "Cart ID", "type": "string", "default": {"@path": "$.properties.cart_id"}},
    "total_value": {"label": "Total Value", "type": "number", "default": {"@path": "$.properties.total"},
                    "required": _when_name(CHECKOUT_STARTED, *_ORDER_NAMES)},
    "total_discounts": {"label": "Total Discounts", "type": "number", "default": {"@path": "$.properties.discount"}},
    "discounts": {"label": "Discounts", "type": "object", "multiple": True,
                  "properties": {"code": {"label": "Discount Code", "type": "string", "required": True},
                                 "amount": {"label": "Discount Amount", "type": "number", "required": True}},
                  "default": {"@arrayPath": ["$.properties.discount_items",
                                             {"code": {"@path": "$.code"}, "amount": {"@path": "$.amount"}}]}},
    "currency": {"label": "Currency", "type": "string", "required": True, "default": {"@path": "$.properties.currency"},
                 "choices": CURRENCIES},
    "source": {"label": "Source", "type": "string", "required": True, "default": {"@path": "$.properties.source"}},
    "metadata": {"label": "Metadata", "type": "object", "additionalProperties": True},
    "enable_batching": {"label": "Batch Data to Braze", "type": "boolean", "required": True, "default": True},
    "batch_size": {"label": "Maximum Batch Size", "type": "number", "required": True, "default": 75},
}
_PRODUCT_PROPS = {
    "product_id": {"label": "Product ID", "type": "string", "required": True},
    "product_name": {"label": "Product Name", "type": "string", "required": True},
    "variant_id": {"label": "Variant ID", "type": "string", "required": True},
    "image_url": {"label": "Image URL", "type": "string", "format": "uri"},
    "product_url": {"label": "Product URL", "type": "string", "format": "uri"},
}
ECOMMERCE_FIELDS: dict[str, dict] = {
    **_ECOMMERCE_COMMON,
    "products": {"label": "Products", "type": "object", "multiple": True, "required": True,
                 "additionalProperties": True,
                 "properties": {**_PRODUCT_PROPS,
                                "quantity": {"label": "Quantity", "type": "number", "required": True},
                                "price": {"label": "Price", "type": "number", "required": True}},
                 "default": {"@arrayPath": ["$.properties.products", {
                     "product_id": {"@path": "$.product_id"}, "product_name": {"@path": "$.name"},
                     "variant_id": {"@path": "$.variant"}, "image_url": {"@path": "$.image_url"},
                     "product_url": {"@path": "$.url"}, "quantity": {"@path": "$.quantity"},
                     "price": {"@path": "$.price"}}]}},
}
ECOMMERCE_SINGLE_FIELDS: dict[str, dict] = {
    **_ECOMMERCE_COMMON,
    "product": {"label": "Product", "type": "object", "required": True,
                "properties": {**_PRODUCT_PROPS, "price": {"label": "Price", "type": "number", "required": True}},
                "default": {"product_id": {"@path": "$.properties.product_id"},
                            "product_name": {"@path": "$.properties.name"},
                            "variant_id": {"@path": "$.properties.variant"},
                            "image_url": {"@path": "$.properties.image_url"},
                            "product_url": {"@path": "$.properties.url"},
                            "price": {"@path": "$.properties.price"}}},
}

# -- presets ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preset:
    name: str
    subscription: Subscription
    action: str
    mapping: dict

    def matches(self, event: dict) -> bool:
        return self.subscription.matches(event)


def _preset(name: str, subscribe: str, action: str, mapping: dict) -> Preset:
    return Preset(name, Subscription(subscribe), action, mapping)


def _ecommerce_mapping(name: str, metadata: dict | None) -> dict:
    mapping = {**default_mapping(ECOMMERCE_FIELDS), "name": name}
    if metadata is not None:
        mapping["metadata"] = metadata
    return mapping


PRESETS: dict[str, list[Preset]] = {
    # The presets before action-destinations commit eabcf94074 (2026-01-15); still what most destinations run.
    "classic": [
        _preset("Track Calls", 'type = "track" and event != "Order Completed"', "trackEvent",
                default_mapping(TRACK_EVENT_FIELDS)),
        _preset("Order Completed Calls", 'event = "Order Completed"', "trackPurchase",
                default_mapping(TRACK_PURCHASE_FIELDS)),
        _preset("Identify Calls", 'type = "identify"', "updateUserProfile", default_mapping(UPDATE_USER_PROFILE_FIELDS)),
    ],
    # braze/index.ts in 3.497.0 (Product Added / Removed are not excluded from Track Calls in this version).
    "current": [
        _preset("Track Calls", 'type = "track" and event != "Order Completed" and event != "Checkout Started" and '
                'event != "Order Refunded" and event != "Order Cancelled" and event != "Product Viewed"',
                "trackEvent", default_mapping(TRACK_EVENT_FIELDS)),
        _preset("Order Placed (beta)", 'event = "Order Completed"', "ecommerce",
                _ecommerce_mapping(ORDER_PLACED, {"order_status_url": {"@path": "$.properties.order_status_url"}})),
        _preset("Checkout Started (beta)", 'event = "Checkout Started"', "ecommerce",
                _ecommerce_mapping(CHECKOUT_STARTED, {"checkout_url": {"@path": "$.properties.checkout_url"}})),
        _preset("Order Refunded (beta)", 'event = "Order Refunded"', "ecommerce",
                _ecommerce_mapping(ORDER_REFUNDED, {"order_status_url": {"@path": "$.properties.order_status_url"}})),
        _preset("Order Cancelled (beta)", 'event = "Order Cancelled"', "ecommerce",
                _ecommerce_mapping(ORDER_CANCELLED, {"order_status_url": {"@path": "$.properties.order_status_url"}})),
        _preset("Product Viewed (beta)", 'event = "Product Viewed"', "ecommerceSingleProduct",
                {**default_mapping(ECOMMERCE_SINGLE_FIELDS), "name": PRODUCT_VIEWED}),
        _preset("Identify Calls", 'type = "identify"', "updateUserProfile", default_mapping(UPDATE_USER_PROFILE_FIELDS)),
    ],
}


def preset_by_name(name: str, preset_set: str = "classic") -> Preset:
    for preset in PRESETS[_preset_set(preset_set)]:
        if preset.name == name:
            return preset
    raise KeyError(name)


def _preset_set(name: str | None) -> str:
    name = name or "classic"
    if name not in PRESETS:
        raise ValueError(f"unknown preset set {name!r}; expected one of {', '.join(PRESET_SETS)}")
    return name


def match_presets(event: dict, preset_set: str = "classic") -> list[Preset]:
    """The presets of `preset_set` whose subscription the event matches (each runs its action on it)."""
    name = _preset_set(preset_set)
    fields = _MATCH_FIELDS.get(name)
    if fields is None:
        fields = _MATCH_FIELDS[name] = _top_level_fields(PRESETS[name])
    if fields and event.__class__ is dict:
        # The subscriptions read only top-level fields (type, event): with string (or absent/null) values, the answer
        # depends on those values alone, and there are few of them.
        key = (name, *[event.get(f, UNDEFINED) for f in fields])
        if not all(v.__class__ is str or v is None or v is UNDEFINED for v in key):
            return [p for p in PRESETS[name] if p.matches(event)]  # only hashable, plain values are memoised
        matched = _MATCHES.get(key)
        if matched is None:
            if len(_MATCHES) >= 4096:
                _MATCHES.clear()
            matched = _MATCHES[key] = tuple(p for p in PRESETS[name] if p.matches(event))
        return list(matched)
    return [p for p in PRESETS[name] if p.matches(event)]


_MATCH_FIELDS: dict[str, tuple[str, ...]] = {}
_MATCHES: dict[tuple, tuple[Preset, ...]] = {}


def _top_level_fields(presets: list[Preset]) -> tuple[str, ...]:
    """The event fields the presets' subscriptions read, or () when one is a nested path (then nothing is memoised)."""
    fields = tuple(dict.fromkeys(f for p in presets for f in p.subscription.fields))
    return fields if all("." not in f for f in fields) else ()


# -- the actions: one Braze object (or several, for purchases) per checked payload ----------------------------------

ACTION_FIELDS = {
    "trackEvent": TRACK_EVENT_FIELDS,
    "trackPurchase": TRACK_PURCHASE_FIELDS,
    "updateUserProfile": UPDATE_USER_PROFILE_FIELDS,
    "ecommerce": ECOMMERCE_FIELDS,
    "ecommerceSingleProduct": ECOMMERCE_SINGLE_FIELDS,
}
ACTION_ARRAY = {"trackEvent": "events", "trackPurchase": "purchases", "updateUserProfile": "attributes",
                "ecommerce": "events", "ecommerceSingleProduct": "events"}


def _get(payload: dict, key: str) -> Any:
    return payload.get(key, UNDEFINED)


def _user_alias(alias: Any) -> Any:
    """userAlias.ts: sent only when both name and label are non-empty."""
    if isinstance(alias, dict) and truthy(alias.get("alias_label")) and truthy(alias.get("alias_name")):
        return {"alias_label": alias["alias_label"], "alias_name": alias["alias_name"]}
    return UNDEFINED


def _require_identity(payload: dict, single: bool) -> Any:
    alias = _user_alias(payload.get("user_alias"))
    if not any(truthy(payload.get(k)) for k in ("braze_id", "external_id", "email")) and alias is UNDEFINED:
        if single:
            raise DestinationRefusal(IDENTITY_REQUIRED, 400, MISSING_REQUIRED_FIELDS)
        raise DestinationRefusal(IDENTITY_REQUIRED, 400, PAYLOAD_VALIDATION_FAILED)
    return alias


def _update_only(payload: dict, update_only: bool) -> Any:
    # The V2 actions' syncMode "update" replaces the V1 `_update_existing_only` field (utils.ts).
    return True if update_only else _get(payload, "_update_existing_only")


def _omit(obj: Any, keys: Collection[str]) -> dict:
    return {k: v for k, v in (obj or {}).items() if k not in keys} if isinstance(obj, dict) else {}


def to_braze_gender(gender: Any) -> Any:
    """utils.ts `toBrazeGender`: known spellings to M/F/O/N/P, anything else passed through unchanged."""
    if not truthy(gender) or not isinstance(gender, str):
        return gender
    genders = {"M": ["man", "male", "m"], "F": ["woman", "female", "w", "f"], "O": ["other", "o"],
               "N": ["not applicable", "n"], "P": ["prefer not to say", "p"]}
    for code, names in genders.items():
        if gender.lower() in names:
            return code
    return gender


def track_event_object(payload: dict, settings: dict, single: bool = True, update_only: bool = False) -> dict:
    alias = _require_identity(payload, single)
    return {
        "braze_id": _get(payload, "braze_id"),
        "external_id": _get(payload, "external_id"),
        "email": _get(payload, "email"),
        "user_alias": alias,
        "app_id": settings.get("app_id", UNDEFINED),
        "name": _get(payload, "name"),
        "time": to_iso(_get(payload, "time")),
        "properties": _get(payload, "properties"),
        "_update_existing_only": _update_only(payload, update_only),
    }


def track_purchase_objects(payload: dict, settings: dict, single: bool = True, update_only: bool = False) -> list[dict]:
    """One purchase object per product; product extras and event properties (minus products) as properties."""
    alias = _require_identity(payload, single)
    products = payload.get("products") or []
    if not products and not single:
        raise DestinationRefusal("This event was not sent to Braze because it did not contain any products.",
                                 400, PAYLOAD_VALIDATION_FAILED)
    identity = {"email": _get(payload, "email"), "user_alias": alias}
    if not single:
        identity = {"user_alias": alias, "email": _get(payload, "email")}  # sendBatchedTrackPurchase's order
    base = {
        "braze_id": _get(payload, "braze_id"),
        "external_id": _get(payload, "external_id"),
        **identity,
        "app_id": settings.get("app_id", UNDEFINED),
        "time": to_iso(_get(payload, "time")),
        "_update_existing_only": _update_only(payload, update_only),
    }
    event_properties = _omit(payload.get("properties"), ["products"])
    return [{
        **base,
        "product_id": _get(product, "product_id"),
        "currency": product.get("currency") if product.get("currency") is not None else "USD",
        "price": _get(product, "price"),
        "quantity": _get(product, "quantity"),
        "properties": {**_omit(product, _RESERVED_PRODUCT_KEYS), **event_properties},
    } for product in products]


def _remove_empty_object(obj: Any) -> Any:
    if not truthy(obj):
        return obj
    cleaned = remove_undefined(obj)
    return cleaned if isinstance(cleaned, dict) and cleaned else UNDEFINED


def user_profile_object(payload: dict, settings: dict, single: bool = True, update_only: bool = False) -> dict:
    """Traits spread as custom attributes (minus the reserved keys), then the profile fields, which win."""
    alias = _require_identity(payload, single)
    attributes = _omit(payload.get("custom_attributes"), _RESERVED_TRAITS)
    get = payload.get
    groups = payload.get("subscription_groups")
    profile = {
        "braze_id": get("braze_id", UNDEFINED),
        "external_id": get("external_id", UNDEFINED),
        "user_alias": alias,
        "country": get("country", UNDEFINED),
        "current_location": _remove_empty_object(get("current_location", UNDEFINED)),
        "date_of_first_session": to_iso(get("date_of_first_session", UNDEFINED)),
        "date_of_last_session": to_iso(get("date_of_last_session", UNDEFINED)),
        "dob": to_date(get("dob", UNDEFINED)),
        "email": get("email", UNDEFINED),
        "email_subscribe": get("email_subscribe", UNDEFINED),
        "email_open_tracking_disabled": get("email_open_tracking_disabled", UNDEFINED),
        "email_click_tracking_disabled": get("email_click_tracking_disabled", UNDEFINED),
        "facebook": get("facebook", UNDEFINED),
        "first_name": get("first_name", UNDEFINED),
        "gender": to_braze_gender(get("gender", UNDEFINED)),
        "home_city": get("home_city", UNDEFINED),
        "image_url": get("image_url", UNDEFINED),
        "language": get("language", UNDEFINED),
        "last_name": get("last_name", UNDEFINED),
        "marked_email_as_spam_at": to_iso(get("marked_email_as_spam_at", UNDEFINED)),
        "phone": get("phone", UNDEFINED),
        "push_subscribe": get("push_subscribe", UNDEFINED),
        "push_tokens": get("push_tokens", UNDEFINED),
        "time_zone": get("time_zone", UNDEFINED),
        "twitter": get("twitter", UNDEFINED),
        **({"subscription_groups": groups} if isinstance(groups, list) and groups else {}),
        "_update_existing_only": _update_only(payload, update_only),
    }
    attributes.update(profile)  # like a JS spread: an existing key keeps its place, takes the new value
    return attributes


def _ecommerce_identity(payload: dict, single: bool) -> None:
    if not any(truthy(payload.get(k)) for k in ("braze_id", "user_alias", "external_id", "email", "phone")):
        if single:
            raise DestinationRefusal(ECOMMERCE_IDENTITY_REQUIRED, 400, PAYLOAD_VALIDATION_FAILED)
        # A batch item error without errortype: actions-core derives it from the status.
        raise DestinationRefusal(ECOMMERCE_IDENTITY_REQUIRED, 400, BAD_REQUEST)


def ecommerce_event_object(payload: dict, settings: dict, single: bool = True, update_only: bool = False) -> dict:
    """ecommerce/functions.ts `getJSONItem` for both ecommerce actions."""
    _ecommerce_identity(payload, single)
    alias = payload.get("user_alias")
    update = True if (isinstance(alias, dict) and alias.get("alias_label") and alias.get("alias_name")) or update_only \
        else UNDEFINED
    event: dict = {}
    for key in ("external_id", "braze_id", "email", "phone", "user_alias"):
        if truthy(payload.get(key)):
            event[key] = payload[key]
    if truthy(settings.get("app_id")):
        event["app_id"] = settings["app_id"]
    name = payload["name"]
    event["name"] = name
    # functions.ts: `dayjs(time).toISOString()`, which throws a RangeError for an invalid date (a "date-time" such as
    # 2026-11-20T10:00:00+02 passes the payload check but not dayjs): the event, or the batch, fails.
    time = to_iso(payload.get("time"))
    if time is UNDEFINED:
        raise BatchFailure("Invalid time value", 400, BAD_REQUEST)
    event["time"] = time
    properties: dict = {"currency": _get(payload, "currency"), "source": _get(payload, "source")}
    if truthy(payload.get("metadata")):
        properties["metadata"] = payload["metadata"]
    event["properties"] = properties
    if update is True:
        event["_update_existing_only"] = True
    if name == PRODUCT_VIEWED:
        properties.update(payload.get("product") or {})
        return event
    properties["products"] = [_ecommerce_product(p) for p in payload.get("products") or []]
    properties["total_value"] = _get(payload, "total_value")
    if name == CHECKOUT_STARTED:
        properties["checkout_id"] = _get(payload, "checkout_id")
        if truthy(payload.get("cart_id")):
            properties["cart_id"] = payload["cart_id"]
        return event
    properties["order_id"] = _get(payload, "order_id")
    if name == ORDER_CANCELLED:
        properties["cancel_reason"] = _get(payload, "cancel_reason")
    if isinstance(payload.get("total_discounts"), (int, float)) and not isinstance(payload.get("total_discounts"), bool):
        properties["total_discounts"] = payload["total_discounts"]
    if truthy(payload.get("discounts")):
        properties["discounts"] = payload["discounts"]
    if name == ORDER_PLACED and truthy(payload.get("cart_id")):
        properties["cart_id"] = payload["cart_id"]
    return event


def _ecommerce_product(product: dict) -> dict:
    known = ("quantity", "product_id", "product_name", "variant_id", "price", "image_url", "product_url")
    out = {key: _get(product, key) for key in known}
    metadata = {k: v for k, v in product.items() if k not in known}
    if metadata:
        out["metadata"] = metadata
    return out


def _objects(action: str, payload: dict, settings: dict, single: bool, update_only: bool) -> list[dict]:
    if action == "trackEvent":
        return [track_event_object(payload, settings, single, update_only)]
    if action == "trackPurchase":
        return track_purchase_objects(payload, settings, single, update_only)
    if action == "updateUserProfile":
        return [user_profile_object(payload, settings, single, update_only)]
    return [ecommerce_event_object(payload, settings, single, update_only)]


def _inherited_products(payload: dict) -> dict:
    """trackPurchase's products as Segment's code reads them. actions-core's removeUndefined copies each product
    with Object.assign, which makes an own `__proto__` object (JSON.parse's) the copy's prototype: ajv's checks and
    utils.ts' `product.product_id` / `currency` / `price` / `quantity` then read that object's fields where the
    product has none of its own (omit and the spreads see own fields only). Returns the payload unchanged when no
    product has one (the usual case: one membership test per product)."""
    products = payload.get("products")
    if not isinstance(products, list) or not any(
            p.__class__ is dict and "__proto__" in p and p["__proto__"].__class__ is dict for p in products):
        return payload
    merged = []
    for product in products:
        proto = product.get("__proto__") if product.__class__ is dict else None
        if proto.__class__ is dict:
            inherited = {k: v for k, v in proto.items() if k in _RESERVED_PRODUCT_KEYS and k not in product}
            product = {**product, **inherited}
        merged.append(product)
    return {**payload, "products": merged}


def _mapped(preset: Preset, mapped: dict) -> dict:
    return _inherited_products(mapped) if preset.action == "trackPurchase" else mapped


def map_event(event: dict, preset: Preset, settings: dict, single: bool = True) -> list[dict]:
    """The Braze object(s) one event becomes through one preset, or `DestinationRefusal`."""
    payload = check_payload(_mapped(preset, transform(preset.mapping, event)), ACTION_FIELDS[preset.action], single)
    objects = _objects(preset.action, payload, settings, single, bool(settings.get("update_existing_only")))
    return [_sendable(obj) for obj in objects]


def update_user_profile(event: dict, settings: dict) -> dict:
    """The `attributes[]` object of an identify (Identify Calls preset), or `DestinationRefusal`."""
    return map_event(event, preset_by_name("Identify Calls"), settings)[0]


def track_event(event: dict, settings: dict) -> dict:
    """The `events[]` object of a track (Track Calls preset), or `DestinationRefusal`."""
    return map_event(event, preset_by_name("Track Calls"), settings)[0]


def track_purchase(event: dict, settings: dict) -> list[dict]:
    """The `purchases[]` objects of an Order Completed, one per product (classic preset), or `DestinationRefusal`."""
    return map_event(event, preset_by_name("Order Completed Calls"), settings)


def ecommerce_event(event: dict, settings: dict, preset_name: str = "Order Placed (beta)") -> dict:
    """The `events[]` object of a `current` ecommerce preset (e.g. "Product Viewed (beta)"), or `DestinationRefusal`."""
    return map_event(event, preset_by_name(preset_name, "current"), settings)[0]


def _sendable(value: Any) -> Any:
    """`remove_undefined(value)` as JSON.stringify sends it, in one pass: fresh containers, UNDEFINED members
    dropped, numbers as JavaScript's (`json_number`), and the keys reordered only in an object that has an
    integer-like one (rare: most objects are copied in order)."""
    if isinstance(value, dict):
        out = {}
        digits = False
        for key, item in value.items():
            if item is UNDEFINED or key == "__proto__":
                # actions-core's removeUndefined copies objects with Object.assign, whose [[Set]] of "__proto__"
                # (an own key JSON.parse made) sets the prototype instead: the key is gone from what is sent.
                continue
            cls = item.__class__
            if cls is float or cls is int:
                item = json_number(item)
            elif isinstance(item, (dict, list)):
                item = _sendable(item)
            out[key] = item
            if key.isdigit():
                digits = True
        if digits:
            indexed = sorted((k for k in out if is_array_index(k)), key=int)
            out = {k: out[k] for k in [*indexed, *(k for k in out if not is_array_index(k))]}
        return out
    if isinstance(value, list):
        return [_sendable(item) for item in value]
    if value.__class__ is float or value.__class__ is int:
        return json_number(value)
    return value


# -- planning requests -----------------------------------------------------------------------------------------------


def _headers(settings: dict, batch_header: bool) -> dict[str, str]:
    headers = {"authorization": f"Bearer {settings.get('api_key', '')}", "content-type": "application/json",
               "user-agent": USER_AGENT}
    if batch_header:
        headers["x-braze-batch"] = "true"
    return headers


def _chunks(items: list[int], size: int) -> list[list[int]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def build_requests(events: list[dict], settings: dict, preset_set: str | None = None) -> Plan:
    """Plan the `/users/track` requests Segment would send for `events` (already-normalized Segment messages).

    Events are routed by preset subscription, grouped per preset in batches of ≤ 75 events (the actions'
    `batch_size`); each batch becomes at most one request. Returns a `Plan`: `requests` (iterable like a list of
    `PlannedRequest`), `refusals` {event index: DestinationRefusal} for events refused before sending (a 429
    `RETRYABLE_ERROR` refusal means "retry in a later batch"), and `filtered` (indexes no preset subscribes to).
    """
    preset_set = _preset_set(preset_set or settings.get("preset_set"))
    plan = Plan(requests=[], refusals={})
    routed: dict[str, list[int]] = {}
    presets = {p.name: p for p in PRESETS[preset_set]}
    for index, event in enumerate(events):
        matched = match_presets(event, preset_set)
        if not matched:
            plan.filtered.append(index)
        for preset in matched:
            routed.setdefault(preset.name, []).append(index)
    for name, indexes in routed.items():
        preset = presets[name]
        for batch in _chunks(indexes, MAX_BATCH_SIZE):
            request = _plan_batch(events, batch, preset, settings, plan.refusals)
            if request is not None:
                plan.requests.append(request)
            carried = set(request.events) if request else set()
            # perform() with an empty products list returns without a request: delivered, nothing sent.
            plan.skipped.extend(i for i in batch if i not in carried and i not in plan.refusals)
    return plan


def _plan_batch(events: list[dict], batch: list[int], preset: Preset, settings: dict,
                refusals: dict[int, DestinationRefusal]) -> PlannedRequest | None:
    single = len(batch) == 1
    objects: list[dict] = []
    sources: list[int] = []
    object_count = 0
    checked = 0
    thrown: BatchFailure | None = None
    valid: list[int] = []  # the payloads performBatch gets (its positions), refused later or not
    mapped = compile_mapping(preset.mapping)  # once per batch, not per event
    fields = ACTION_FIELDS[preset.action]
    update_only = bool(settings.get("update_existing_only"))
    for index in batch:
        try:
            payload = check_payload(_mapped(preset, mapped(events[index])), fields, single)
            checked += 1
            valid.append(index)
            if single and (error := membership_error(events[index])) is not None:
                raise error
            if preset.action == "trackPurchase" and not single:
                # utils.ts sendBatchedTrackPurchase counts products before the identity check.
                products = payload.get("products") or []
                if len(products) > MAX_BATCH_SIZE:
                    raise DestinationRefusal(
                        f"Max batch size exceeded. This payload contains {len(products)} products, which is more "
                        f"than Braze's maximum batch size of {MAX_BATCH_SIZE} objects per batch.",
                        413, PAYLOAD_TOO_LARGE)
                object_count += len(products)
                if object_count > MAX_BATCH_SIZE:
                    raise DestinationRefusal(
                        "Max batch size exceeded. This event was included in a batch which then exceeded Braze's "
                        f"maximum batch size of {MAX_BATCH_SIZE} objects per batch. This payload will be retried in "
                        "another batch.", 429, RETRYABLE_ERROR)
            made = _objects(preset.action, payload, settings, single, update_only)
        except BatchFailure as failure:
            if single:
                refusals[index] = failure
                continue
            thrown = thrown or failure  # performBatch threw: the batch fails with the first one
            continue
        except DestinationRefusal as refusal:
            refusals[index] = refusal
            continue
        for obj in made:
            objects.append(_sendable(obj))
            sources.append(index)
    if checked and not single:
        # thrown before performBatch (the membership check), or in it: the whole batch fails
        error = batch_membership_error(events, batch) or thrown
        if error is not None:
            for index in batch:
                refusals[index] = error
            return None
    # performBatch runs once any payload passes the schema check; only trackPurchase returns early when every one
    # then fails its own checks. The others send the empty array to Braze (utils.ts, ecommerce/functions.ts).
    if not objects and (single or not checked or preset.action == "trackPurchase"):
        return None
    array = ACTION_ARRAY[preset.action]
    if preset.action in ("ecommerce", "ecommerceSingleProduct"):
        batch_header = not single  # functions.ts: every performBatch request carries it, even for one object
    else:
        batch_header = len(objects) > 1
    return PlannedRequest(
        method="POST", path=TRACK_PATH, headers=_headers(settings, batch_header), body={array: objects},
        events=list(dict.fromkeys(sources)), sources=sources, action=preset.action,
        endpoint=settings.get("endpoint", ""), batch=not single, batch_events=valid, batch_members=list(batch),
    )


# -- reading Braze's answer ------------------------------------------------------------------------------------------


def _thrown(planned: PlannedRequest, message: str, body: Any) -> list[EventOutcome]:
    """A TypeError thrown while reading Braze's answer escapes performBatch: every event of the batch fails with it
    (status as for the other JavaScript errors, BatchFailure)."""
    return thrown_failure(planned, 400, BAD_REQUEST, message, body)


def _set_key(value: Any) -> Any:
    """A key that is equal where JavaScript's Set (SameValueZero) finds two values equal."""
    if value.__class__ in (dict, list):
        return ("object", id(value))
    if value.__class__ in (int, float):
        return ("number", float(value))
    return (value.__class__.__name__, value)


def read_response(planned: PlannedRequest, status: int, body: Any) -> list[EventOutcome]:
    """Per-event outcomes for one sent request, as Segment's Braze destination reads Braze's answer.

    - 2xx, batch: each `errors[].index` (position in the sent array) fails the event that object came from with
      400 `BAD_REQUEST` and `errors[].type` as message; the others succeed (status 200, as Segment reports them).
    - 2xx, single event (`perform`): Segment does not look at `errors[]`; the event succeeded with Braze's status.
    - non-2xx: every event fails with that status and the status's code (`UNAUTHORIZED`...); the message is Braze's
      `message` for a batch of the classic actions, the HTTP status text otherwise (the package's HTTPError).
    """
    body = body if isinstance(body, dict) else {}
    errors = body.get("errors") if isinstance(body.get("errors"), list) else []
    ecommerce = planned.action in ("ecommerce", "ecommerceSingleProduct")
    if not 200 <= status < 300:
        code = http_error_code(status)
        if ecommerce or not planned.batch:
            # perform() and the ecommerce actions let the request client's HTTPError escape: Segment records its
            # message, the status text ("Bad Request"), not Braze's `message`; Braze's answer stays in `body`.
            if planned.batch:
                return thrown_failure(planned, status, code, reason_phrase(status), body)
            return [EventOutcome(i, status, code, reason_phrase(status), body) for i in planned.events]
        message = body.get("message") if body.get("message") is not None else reason_phrase(status)
        # utils.ts fills one shared Set for every event (`new Array(n).fill(new Set())`): each failed event's body
        # lists the error types of the whole request. An error whose index names no sent object makes
        # `parsedErrors[undefined].add` throw: the batch fails with that TypeError instead.
        types: dict[Any, Any] = {}
        for error in errors:
            if error is None:
                return _thrown(planned, "Cannot read properties of null (reading 'index')", body)
            index = js_index(error["index"], len(planned.sources)) if isinstance(error, dict) and "index" in error \
                else None
            if index is None:
                return _thrown(planned, "Cannot read properties of undefined (reading 'add')", body)
            kind = error.get("type")
            types.setdefault(_set_key(kind), kind)  # a Set: SameValueZero, objects by identity
        detail = ", ".join(js_string(t) for t in types.values()) or None
        return [EventOutcome(i, status, code, message, detail) for i in planned.events]
    if not planned.batch:
        return [EventOutcome(i, status, None, None, body) for i in planned.events]
    outcomes = {i: EventOutcome(i, 200, None, None, "success") for i in planned.events}
    array = next(iter(planned.body))
    if ecommerce:
        # functions.ts: for each payload given to performBatch (position p), `errors.find(e => e.index === p)`,
        # which throws on a null error it reaches; the sent event at that position is reported as the body.
        for position, event in enumerate(planned.batch_events):
            for error in errors:
                if error is None:
                    return _thrown(planned, "Cannot read properties of null (reading 'index')", body)
                index = error.get("index") if isinstance(error, dict) else None
                if index.__class__ in (int, float) and index == position:
                    sent = planned.body[array][position] if position < len(planned.body[array]) else None
                    detail = json_text(sent) if sent is not None else None  # JSON.stringify(json.events[index])
                    # a payload refused after the check (identity) is at its position too: it is read onto it
                    outcomes[event] = EventOutcome(event, 400, BAD_REQUEST, error.get("type"), detail)
                    break
        return list(outcomes.values())
    for error in errors:
        if error is None:  # `error.index` of null: the TypeError escapes handleBrazeAPIResponse
            return _thrown(planned, "Cannot read properties of null (reading 'index')", body)
        index = js_index(error["index"], len(planned.sources)) if isinstance(error, dict) and "index" in error \
            else None
        event = planned.sources[index] if index is not None else None
        if event in outcomes and outcomes[event].ok:
            outcomes[event] = EventOutcome(event, 400, BAD_REQUEST, error.get("type"), error.get("type"))
    return list(outcomes.values())
