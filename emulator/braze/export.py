"""`POST /users/export/ids` (reference/braze-api.md §3): the doc's sample user shape, `fields_to_export`,
`invalid_user_ids` for ids that matched nobody, at most 50 external ids and aliases per request.

Fields the emulator has no data for (devices, apps, attribution, cards) are left out, as Braze leaves out what a
profile does not have ("we will include the least data possible"). Other modules may add fields (campaigns
received, ...) with `Exporter.add_fields(name, fn)`.
"""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable

from . import errors
from .users import Profiles, parse_alias
from .values import is_email

if TYPE_CHECKING:
    from ..sandbox import Sandbox

MAX_IDS = 50
EXPORT_FIELDS = (
    "apps", "attributed_campaign", "attributed_source", "attributed_adgroup", "attributed_ad", "braze_id",
    "campaigns_received", "canvases_received", "cards_clicked", "country", "created_at", "custom_attributes",
    "custom_events", "devices", "dob", "email", "email_subscribe", "external_id", "first_name", "gender",
    "home_city", "language", "last_coordinates", "last_name", "phone", "purchases", "push_subscribe", "push_tokens",
    "random_bucket", "time_zone", "total_revenue", "uninstalled_at", "user_aliases",
)
REQUEST_KEYS = {"external_ids", "user_aliases", "device_id", "braze_id", "email_address", "phone",
                "fields_to_export", "api_key"}
# The order of Braze's "Sample output".
_STANDARD_ORDER = ("first_name", "last_name", "email", "dob", "country", "home_city", "language", "gender", "phone",
                   "time_zone", "push_subscribe", "email_subscribe", "push_tokens")

FieldSource = Callable[[str], Any]


def created_at_text(iso_text: str) -> str:
    # Braze's sample shows created_at as "2020-07-10 15:00:00.000 UTC" (ISO elsewhere).
    dt = datetime.fromisoformat(iso_text.replace("Z", "+00:00"))
    return dt.strftime("%Y-%m-%d %H:%M:%S.") + f"{dt.microsecond // 1000:03d} UTC"


class Exporter:
    def __init__(self, sandbox: "Sandbox", profiles: Profiles) -> None:
        self.sandbox = sandbox
        self.profiles = profiles
        self._extra: dict[str, FieldSource] = {}

    def add_fields(self, name: str, source: FieldSource) -> None:
        """`source(braze_id)` gives the value of export field `name` (None leaves it out)."""
        self._extra[name] = source

    def user(self, braze_id: str, fields: set[str] | None = None) -> dict | None:
        """One profile as `/users/export/ids` shows it; `fields` restricts it like `fields_to_export`."""
        profile = self.profiles.load(braze_id)
        if profile is None:
            return None

        def wanted(name: str) -> bool:
            return fields is None or name in fields

        out: dict[str, Any] = {}
        if wanted("created_at"):
            out["created_at"] = created_at_text(profile.created_at)
        if profile.external_id is not None and wanted("external_id"):
            out["external_id"] = profile.external_id
        if wanted("user_aliases"):
            aliases = self.profiles.aliases(braze_id)
            if aliases:
                out["user_aliases"] = aliases
        if wanted("braze_id"):
            out["braze_id"] = profile.braze_id
        if wanted("random_bucket"):
            out["random_bucket"] = profile.random_bucket
        for name in _STANDARD_ORDER:
            if name in profile.fields and wanted(name):
                out[name] = profile.fields[name]
        if "current_location" in profile.fields and wanted("last_coordinates"):
            location = profile.fields["current_location"]
            out["last_coordinates"] = [location["longitude"], location["latitude"]]
        if profile.custom and wanted("custom_attributes"):
            out["custom_attributes"] = profile.custom
        if wanted("custom_events"):
            events = self.profiles.events(braze_id)
            if events:
                out["custom_events"] = events
        if wanted("purchases"):
            purchases = self.profiles.purchases(braze_id)
            if purchases:
                out["purchases"] = purchases
        if wanted("total_revenue") and (profile.total_revenue or "purchases" in out):
            revenue = profile.total_revenue
            out["total_revenue"] = int(revenue) if float(revenue).is_integer() else round(revenue, 2)
        for name, source in self._extra.items():
            if wanted(name):
                value = source(braze_id)
                if value is not None:
                    out[name] = value
        return out

    def export_ids(self, body: Any) -> dict:
        if not isinstance(body, dict):
            raise errors.INVALID_JSON()
        for key in body:
            if key not in REQUEST_KEYS:
                raise errors.bad_request(f"'{str(key)[:64]}' is not a valid field")
        external_ids = body.get("external_ids") or []
        aliases = body.get("user_aliases") or []
        if not isinstance(external_ids, list) or not all(isinstance(i, str) for i in external_ids):
            raise errors.bad_request("'external_ids' must be an array of strings")
        if not isinstance(aliases, list) or any(parse_alias(a) is None for a in aliases):
            raise errors.bad_request("'user_aliases' must be an array of objects with 'alias_name' and 'alias_label'")
        if len(external_ids) + len(aliases) > MAX_IDS:
            raise errors.bad_request(errors.TOO_MANY_IDS)
        singles = [key for key in ("device_id", "email_address", "phone") if body.get(key) is not None]
        if len(singles) > 1:
            raise errors.bad_request("Only one of 'device_id', 'email_address' or 'phone' may be provided per request")
        for key in ("device_id", "email_address", "phone", "braze_id"):
            if body.get(key) is not None and (not isinstance(body[key], str) or not body[key]):
                raise errors.bad_request(f"'{key}' must be a string")
        if body.get("email_address") is not None and not is_email(body["email_address"]):
            raise errors.bad_request(errors.EMAIL_BAD_FORMAT)
        fields = body.get("fields_to_export")
        if fields is not None:
            if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
                raise errors.bad_request("'fields_to_export' must be an array of strings")
            unknown = [f for f in fields if f not in EXPORT_FIELDS]
            if unknown:
                raise errors.bad_request(f"Invalid fields_to_export: {', '.join(unknown)}")
            fields = set(fields)
        if not (external_ids or aliases or singles or body.get("braze_id")):
            raise errors.bad_request("Provide 'external_ids', 'user_aliases', 'braze_id', 'device_id', "
                                     "'email_address' or 'phone'")
        found: list[str] = []
        invalid: list[str] = []
        with self.sandbox.store.lock:
            known = self.profiles.by_external_ids(list(external_ids)) if external_ids else {}
            for external_id in external_ids:
                braze_id = known.get(external_id)
                (found.append(braze_id) if braze_id else invalid.append(external_id))
            for alias in aliases:
                braze_id = self.profiles.by_alias(alias["alias_name"], alias["alias_label"])
                (found.append(braze_id) if braze_id else invalid.append(alias["alias_name"]))
            if body.get("braze_id"):
                braze_id = self.profiles.by_braze_id(body["braze_id"])
                (found.append(braze_id) if braze_id else invalid.append(body["braze_id"]))
            if body.get("email_address"):
                found += [row["braze_id"] for row in self.profiles.all_by("email", body["email_address"])]
            if body.get("phone"):
                found += [row["braze_id"] for row in self.profiles.all_by("phone", body["phone"])]
            # device_id: the emulator records no devices, so a device id matches nobody.
            users = [self.user(braze_id, fields) for braze_id in dict.fromkeys(found)]
        answer: dict = {"users": [u for u in users if u is not None]}
        if invalid:
            answer["invalid_user_ids"] = invalid
        answer["message"] = errors.SUCCESS
        return answer
