"""`/users/alias/new`, `/users/identify`, `/users/delete`, `/users/merge` (reference/braze-api.md §4).

Merging (identify with `merge_behavior: "merge"`, and `/users/merge`) copies onto the kept profile only what it
does not have: standard fields and custom attributes found exclusively on the merged profile; event and
purchase data are combined (count summed, first = earlier, last = later, revenue summed); aliases move unless
the kept profile already has one with that label; cohort memberships move. The merged profile is then removed.
With `merge_behavior: "none"` (the default) nothing but the alias moves. Braze does these asynchronously; the
emulator applies them before answering.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import errors
from .users import MAX_EXTERNAL_ID_BYTES, Profiles, parse_alias
from .values import is_email

if TYPE_CHECKING:
    from ..sandbox import Sandbox

MAX_IDS = 50
PRIORITIES = ("identified", "unidentified", "most_recently_updated", "least_recently_updated")


def _external_id(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value or len(value.encode()) > MAX_EXTERNAL_ID_BYTES:
        raise errors.bad_request(f"'{where}' must have an 'external_id' that is a string")
    return value


def _prioritization(value: Any, where: str, required: bool = True) -> list[str]:
    if value is None and not required:
        return ["most_recently_updated"]
    if (not isinstance(value, list) or not value or len(value) > 2 or not all(v in PRIORITIES for v in value)
            or {"identified", "unidentified"} <= set(value)
            or {"most_recently_updated", "least_recently_updated"} <= set(value)):
        raise errors.bad_request(f"'{where}' needs 'prioritization': an array of one or two of "
                                 "identified or unidentified, then most_recently_updated or least_recently_updated")
    return value


def _check_keys(body: Any, allowed: set) -> dict:
    if not isinstance(body, dict):
        raise errors.INVALID_JSON()
    for key in body:
        if key not in allowed | {"api_key"}:
            raise errors.bad_request(f"'{str(key)[:64]}' is not a valid field")
    return body


def _list(body: dict, key: str) -> list:
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise errors.bad_request(f"'{key}' must be an array of objects")
    return value


class Identity:
    def __init__(self, sandbox: "Sandbox", profiles: Profiles) -> None:
        self.sandbox = sandbox
        self.profiles = profiles

    # --- choosing among profiles sharing an email or phone -----------------------------------------
    def pick(self, column: str, value: str, prioritization: list[str], exclude: str | None = None) -> str | None:
        rows = [row for row in self.profiles.all_by(column, value) if row["braze_id"] != exclude]
        for rule in prioritization:
            if rule == "identified":
                rows = [row for row in rows if row["external_id"] is not None]
            elif rule == "unidentified":
                rows = [row for row in rows if row["external_id"] is None]
            elif rule == "most_recently_updated":
                rows = sorted(rows, key=lambda row: -row["updated_seq"])
            else:
                rows = sorted(rows, key=lambda row: row["updated_seq"])
        return rows[0]["braze_id"] if rows else None

    # --- merge ---------------------------------------------------------------------------------------
    def merge_into(self, source_id: str, target_id: str, with_data: bool = True) -> None:
        """Fold profile `source_id` into `target_id` and remove it (the rules of the module docstring)."""
        conn = self.sandbox.store.conn
        source, target = self.profiles.load(source_id), self.profiles.load(target_id)
        assert source is not None and target is not None
        if with_data:
            for key, value in source.fields.items():
                target.fields.setdefault(key, value)
            for key, value in source.custom.items():
                target.custom.setdefault(key, value)
            target.total_revenue += source.total_revenue
            for row in self.profiles.events(source_id):
                conn.execute(
                    "INSERT INTO braze_user_events (braze_id, name, count, first, last) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (braze_id, name) DO UPDATE SET count = count + excluded.count, "
                    "first = min(first, excluded.first), last = max(last, excluded.last)",
                    (target_id, row["name"], row["count"], row["first"], row["last"]))
            for row in conn.execute("SELECT product_id, count, first, last, revenue FROM braze_user_purchases "
                                    "WHERE braze_id = ?", (source_id,)).fetchall():
                conn.execute(
                    "INSERT INTO braze_user_purchases (braze_id, product_id, count, first, last, revenue) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (braze_id, product_id) DO UPDATE SET "
                    "count = count + excluded.count, first = min(first, excluded.first), "
                    "last = max(last, excluded.last), revenue = revenue + excluded.revenue", (target_id, *row))
            conn.execute("UPDATE braze_occurrences SET braze_id = ? WHERE braze_id = ?", (target_id, source_id))
            conn.execute("INSERT OR IGNORE INTO braze_cohort_members (cohort_id, braze_id, added_at) "
                         "SELECT cohort_id, ?, added_at FROM braze_cohort_members WHERE braze_id = ?",
                         (target_id, source_id))
        aliases = self.profiles.aliases(source_id)
        self.profiles.delete(source_id)
        self.profiles.save(target)
        for alias in aliases:
            self.profiles.add_alias(target_id, alias["alias_name"], alias["alias_label"])

    # --- /users/alias/new ------------------------------------------------------------------------------
    def alias_new(self, body: Any) -> dict:
        body = _check_keys(body, {"user_aliases"})
        items = _list(body, "user_aliases")
        if not items:
            raise errors.bad_request("'user_aliases' must be a non-empty array of objects")
        if len(items) > MAX_IDS:
            raise errors.bad_request(errors.TOO_MANY_IDS)
        plans = []
        for item in items:
            alias = parse_alias(item)
            if alias is None or set(item) - {"alias_name", "alias_label", "external_id"}:
                raise errors.bad_request("each of 'user_aliases' needs 'alias_name' and 'alias_label' strings "
                                         "and may have an 'external_id'")
            external_id = item.get("external_id")
            if external_id is not None:
                _external_id(external_id, "user_aliases")
            plans.append((alias, external_id))
        with self.sandbox.store.transaction():
            for alias, external_id in plans:
                if external_id is not None:
                    # "if no such user, the alias is not added anywhere"
                    braze_id = self.profiles.by_external_id(external_id)
                    if braze_id and self.profiles.add_alias(braze_id, *alias):
                        self.profiles.touch(braze_id)
                elif self.profiles.by_alias(*alias) is None:
                    self.profiles.create(alias=alias)
        return {"aliases_processed": len(plans), "message": errors.SUCCESS}

    # --- /users/identify -------------------------------------------------------------------------------
    def identify(self, body: Any) -> dict:
        body = _check_keys(body, {"aliases_to_identify", "emails_to_identify", "phone_numbers_to_identify",
                                  "merge_behavior"})
        aliases = _list(body, "aliases_to_identify")
        emails = _list(body, "emails_to_identify")
        phones = _list(body, "phone_numbers_to_identify")
        if not (aliases or emails or phones):
            raise errors.bad_request("Provide 'aliases_to_identify', 'emails_to_identify' or "
                                     "'phone_numbers_to_identify'")
        if len(aliases) + len(emails) + len(phones) > MAX_IDS:
            raise errors.bad_request(errors.TOO_MANY_IDS)
        behavior = body.get("merge_behavior", "none")
        if behavior not in ("none", "merge"):
            raise errors.bad_request("'merge_behavior' must be 'none' or 'merge'")
        alias_plans, email_plans, phone_plans = [], [], []
        for item in aliases:
            alias = parse_alias(item.get("user_alias"))
            if alias is None:
                raise errors.bad_request("each of 'aliases_to_identify' needs a 'user_alias' with 'alias_name' and "
                                         "'alias_label'")
            alias_plans.append((_external_id(item.get("external_id"), "aliases_to_identify"), alias))
        for item in emails:
            if not is_email(item.get("email")):
                raise errors.bad_request(errors.EMAIL_BAD_FORMAT)
            email_plans.append((_external_id(item.get("external_id"), "emails_to_identify"), item["email"],
                                _prioritization(item.get("prioritization"), "emails_to_identify")))
        for item in phones:
            if not isinstance(item.get("phone"), str) or not item["phone"]:
                raise errors.bad_request("each of 'phone_numbers_to_identify' needs a 'phone' string")
            phone_plans.append((_external_id(item.get("external_id"), "phone_numbers_to_identify"), item["phone"],
                                _prioritization(item.get("prioritization"), "phone_numbers_to_identify")))
        merge = behavior == "merge"
        with self.sandbox.store.transaction():
            for external_id, alias in alias_plans:
                self._identify_one(external_id, self.profiles.by_alias(*alias), merge, alias_label=alias[1])
            for external_id, email, priority in email_plans:
                target = self.profiles.by_external_id(external_id)
                self._identify_one(external_id, self.pick("email", email, priority, exclude=target), merge)
            for external_id, phone, priority in phone_plans:
                target = self.profiles.by_external_id(external_id)
                self._identify_one(external_id, self.pick("phone", phone, priority, exclude=target), merge)
        answer: dict = {"aliases_processed": len(alias_plans)}
        if emails:
            answer["emails_processed"] = len(email_plans)
        if phones:
            answer["phone_numbers_processed"] = len(phone_plans)
        answer["message"] = errors.SUCCESS
        return answer

    def _identify_one(self, external_id: str, anonymous: str | None, merge: bool,
                      alias_label: str | None = None) -> None:
        if anonymous is None:
            return
        anon = self.profiles.load(anonymous)
        assert anon is not None
        if anon.external_id is not None:
            return  # already identified: nothing to identify (use /users/merge)
        target = self.profiles.by_external_id(external_id)
        if target is None:
            # "if no user has that external_id, the external id is simply added to the aliased user"
            anon.external_id = external_id
            self.profiles.save(anon)
            return
        if alias_label is not None and any(a["alias_label"] == alias_label for a in self.profiles.aliases(target)):
            return  # "Users can have only one alias for a specific label": no merge
        self.merge_into(anonymous, target, with_data=merge)

    # --- /users/delete -------------------------------------------------------------------------------
    def delete(self, body: Any) -> dict:
        kinds = ("external_ids", "user_aliases", "braze_ids", "email_addresses", "phone_numbers")
        body = _check_keys(body, set(kinds))
        given = [kind for kind in kinds if body.get(kind) is not None]
        if len(given) != 1:
            raise errors.bad_request("Provide exactly one of 'external_ids', 'user_aliases', 'braze_ids', "
                                     "'email_addresses' or 'phone_numbers'")
        kind = given[0]
        items = body[kind]
        if not isinstance(items, list):
            raise errors.bad_request(f"'{kind}' must be an array")
        if len(items) > MAX_IDS:
            raise errors.bad_request(errors.TOO_MANY_IDS)
        plans: list = []
        for item in items:
            if kind in ("external_ids", "braze_ids", "phone_numbers"):
                if not isinstance(item, str) or not item:
                    raise errors.bad_request(f"'{kind}' must be an array of strings")
                plans.append(item)
            elif kind == "user_aliases":
                alias = parse_alias(item)
                if alias is None:
                    raise errors.bad_request("'user_aliases' must be an array of objects with 'alias_name' and "
                                             "'alias_label'")
                plans.append(alias)
            else:
                if not isinstance(item, dict) or not is_email(item.get("email")):
                    raise errors.bad_request("'email_addresses' must be an array of objects with an 'email' and "
                                             "a 'prioritization'")
                plans.append((item["email"], _prioritization(item.get("prioritization"), "email_addresses")))
        deleted = 0
        with self.sandbox.store.transaction():
            for plan in plans:
                if kind == "external_ids":
                    braze_id = self.profiles.by_external_id(plan)
                elif kind == "braze_ids":
                    braze_id = self.profiles.by_braze_id(plan)
                elif kind == "phone_numbers":
                    braze_id = self.pick("phone", plan, ["most_recently_updated"])
                elif kind == "user_aliases":
                    braze_id = self.profiles.by_alias(*plan)
                else:
                    braze_id = self.pick("email", plan[0], plan[1])
                if braze_id:
                    self.profiles.delete(braze_id)
                    deleted += 1
        return {"deleted": deleted, "message": errors.SUCCESS}

    # --- /users/merge ----------------------------------------------------------------------------------
    def _merge_identifier(self, value: Any) -> tuple:
        if not isinstance(value, dict) or len({"external_id", "user_alias", "email", "phone"} & set(value)) != 1:
            raise errors.bad_request(errors.MERGE_BAD_IDENTIFIER)
        if "external_id" in value:
            if not isinstance(value["external_id"], str) or set(value) != {"external_id"}:
                raise errors.bad_request(errors.MERGE_BAD_IDENTIFIER)
            return ("external_id", value["external_id"])
        if "user_alias" in value:
            alias = parse_alias(value["user_alias"])
            if alias is None or set(value) != {"user_alias"}:
                raise errors.bad_request(errors.MERGE_BAD_IDENTIFIER)
            return ("user_alias", alias)
        column = "email" if "email" in value else "phone"
        if not isinstance(value[column], str) or set(value) - {column, "prioritization"}:
            raise errors.bad_request(errors.MERGE_BAD_IDENTIFIER)
        return (column, value[column], _prioritization(value.get("prioritization"), "merge_updates", required=False))

    def _find(self, identifier: tuple) -> str | None:
        if identifier[0] == "external_id":
            return self.profiles.by_external_id(identifier[1])
        if identifier[0] == "user_alias":
            return self.profiles.by_alias(*identifier[1])
        return self.pick(identifier[0], identifier[1], identifier[2])

    def merge(self, body: Any) -> dict:
        body = _check_keys(body, {"merge_updates"})
        updates = body.get("merge_updates")
        if not isinstance(updates, list) or not updates or not all(isinstance(u, dict) for u in updates):
            raise errors.bad_request(errors.MERGE_UPDATES_NOT_ARRAY)
        if len(updates) > MAX_IDS:
            raise errors.bad_request(errors.MERGE_TOO_MANY)
        plans = []
        for update in updates:
            if set(update) != {"identifier_to_merge", "identifier_to_keep"}:
                raise errors.bad_request(errors.MERGE_BAD_KEYS)
            plans.append((self._merge_identifier(update["identifier_to_merge"]),
                          self._merge_identifier(update["identifier_to_keep"])))
        with self.sandbox.store.transaction():
            for to_merge, to_keep in plans:
                source, target = self._find(to_merge), self._find(to_keep)
                if source and target and source != target:
                    self.merge_into(source, target)
        return {"message": errors.SUCCESS}
