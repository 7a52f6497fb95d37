"""The pieces of Segment's mapping kit and subscription language the Braze presets need.

Mirrors `@segment/actions-core` 3.170 (`get.ts`, `mapping-kit/index.ts`, `remove-undefined.ts`) and the FQL subset
of `@segment/destination-subscriptions` used by the presets: small on purpose, only what the presets use.

JavaScript's `undefined` matters here: a mapped field that resolves to `undefined` disappears from the JSON Segment
sends, while `null` survives (and means "remove" at Braze). `UNDEFINED` stands for it until `remove_undefined`.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Callable


class _Undefined:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNDEFINED"

    def __bool__(self) -> bool:
        return False


UNDEFINED: Any = _Undefined()


def truthy(value: Any) -> bool:
    """JavaScript truthiness (an empty dict or list is truthy, 0 / "" / null / undefined are not)."""
    if value is UNDEFINED or value is None or value is False:
        return False
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value != 0 and value == value  # NaN is falsy
    if isinstance(value, str):
        return value != ""
    return True


def get(obj: Any, path: str) -> Any:
    """`get(obj, "traits.address.city")` as actions-core's `get`: walks while the current value is truthy.

    The JS walk is `prev && prev[key]`, so a falsy step is returned as is: `traits.address = null` makes
    `$.traits.address.city` resolve to `null` (not undefined), which then survives into the body.
    """
    if path in ("", "."):
        return obj
    current = obj
    for key in _path_keys(path):
        if not truthy(current):
            return current
        if isinstance(current, dict):
            current = current.get(key, UNDEFINED)
        elif isinstance(current, list) and key.isdigit():
            index = int(key)
            current = current[index] if index < len(current) else UNDEFINED
        elif isinstance(current, str) and key == "length":
            current = len(current)
        else:
            current = UNDEFINED
    return current


@lru_cache(maxsize=1024)
def _path_keys(path: str) -> tuple[str, ...]:
    """get.ts splits on `.`, `[` before a quote or digit, and `]` after one; quotes are dropped."""
    parts = re.split(r"\[(?=[\"'\d])|\.|(?<=[\"'\d])\]+", path)
    return tuple(k.replace("'", "").replace('"', "") for k in parts if k)


def _is_directive(mapping: dict) -> bool:
    has_directive = False
    for key in mapping:
        if key[:1] == "@":
            has_directive = True
        elif key != "_metadata":
            return False
    return has_directive


def resolve(mapping: Any, payload: Any) -> Any:
    """Resolve a mapping (literals, objects, arrays and the directives `@path`, `@if`, `@arrayPath`)."""
    if isinstance(mapping, dict):
        if _is_directive(mapping):
            name = next(k for k in mapping if k.startswith("@"))
            return _DIRECTIVES[name](mapping[name], payload)
        return {key: resolve(value, payload) for key, value in mapping.items()}
    if isinstance(mapping, list):
        return [resolve(item, payload) for item in mapping]
    return mapping


def _path(value: Any, payload: Any) -> Any:
    path = resolve(value, payload)
    if not isinstance(path, str):
        raise ValueError(f"@path: expected string, got {type(path).__name__}")
    return get(payload, path.replace("$.", "", 1))


def _if(opts: dict, payload: Any) -> Any:
    if "exists" in opts:
        value = resolve(opts["exists"], payload)
        condition = value is not UNDEFINED and value is not None
    else:
        value = resolve(opts["blank"], payload)
        condition = value is not UNDEFINED and value is not None and value != ""
    if condition and "then" in opts:
        return resolve(opts["then"], payload)
    if not condition and opts.get("else"):
        return resolve(opts["else"], payload)
    return UNDEFINED


def _array_path(opts: list, payload: Any) -> Any:
    path, item_shape = opts
    root = get(payload, path.replace("$.", "", 1)) if isinstance(path, str) else resolve(path, payload)
    if isinstance(root, (dict, list)) and isinstance(item_shape, dict) and item_shape:
        items = root if isinstance(root, list) else [root]
        return [resolve(item_shape, item) for item in items]
    return root


_DIRECTIVES: dict[str, Callable[[Any, Any], Any]] = {"@path": _path, "@if": _if, "@arrayPath": _array_path}


def remove_undefined(value: Any) -> Any:
    """Drop `UNDEFINED` object members recursively (what JSON.stringify does); keep key order."""
    if isinstance(value, list):
        return [remove_undefined(item) for item in value]
    if isinstance(value, dict):
        return {k: remove_undefined(v) for k, v in value.items() if v is not UNDEFINED}
    return value


def transform(mapping: dict, event: dict) -> dict:
    """A mapping applied to one event: the action's payload before schema checks."""
    return remove_undefined(resolve(mapping, event))


def default_mapping(fields: dict[str, dict]) -> dict:
    """`defaultValues(fields)`: what a preset saves as its mapping."""
    return {key: field["default"] for key, field in fields.items() if "default" in field}


# -- subscriptions ------------------------------------------------------------------------------------------------

_TOKEN = re.compile(r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<op>!=|=|\(|\))|(?P<word>[A-Za-z_][A-Za-z0-9_.]*))')


class Subscription:
    """A parsed subscription such as `type = "track" and event != "Order Completed"`.

    Supports what the Braze presets use: `field = "value"`, `field != "value"`, `and`, `or`, parentheses
    (`and` binds tighter than `or`). `field` is a top-level event key (`type`, `event`) or a dotted path.
    """

    def __init__(self, text: str):
        self.text = text
        self._tokens = self._tokenize(text)
        self._pos = 0
        self._tree = self._parse_or()
        if self._pos != len(self._tokens):
            raise ValueError(f"cannot parse subscription {text!r}")

    @staticmethod
    def _tokenize(text: str) -> list[tuple[str, str]]:
        tokens, pos = [], 0
        text = text.strip()
        while pos < len(text):
            match = _TOKEN.match(text, pos)
            if not match or match.end() == pos:
                raise ValueError(f"cannot parse subscription {text!r} at {pos}")
            kind = match.lastgroup
            tokens.append((kind, match.group(kind)))
            pos = match.end()
        return tokens

    def _peek(self) -> tuple[str, str] | None:
        return self._tokens[self._pos] if self._pos < len(self._tokens) else None

    def _take(self) -> tuple[str, str]:
        token = self._peek()
        if token is None:
            raise ValueError(f"unexpected end of subscription {self.text!r}")
        self._pos += 1
        return token

    def _parse_or(self) -> tuple:
        node = self._parse_and()
        while self._peek() == ("word", "or"):
            self._take()
            node = ("or", node, self._parse_and())
        return node

    def _parse_and(self) -> tuple:
        node = self._parse_term()
        while self._peek() == ("word", "and"):
            self._take()
            node = ("and", node, self._parse_term())
        return node

    def _parse_term(self) -> tuple:
        kind, value = self._take()
        if (kind, value) == ("op", "("):
            node = self._parse_or()
            if self._take() != ("op", ")"):
                raise ValueError(f"missing ')' in subscription {self.text!r}")
            return node
        if kind != "word":
            raise ValueError(f"expected a field in subscription {self.text!r}")
        op_kind, op = self._take()
        str_kind, literal = self._take()
        if op_kind != "op" or op not in ("=", "!=") or str_kind != "str":
            raise ValueError(f"expected field = \"value\" in subscription {self.text!r}")
        return (op, value, literal[1:-1].replace('\\"', '"'))

    def matches(self, event: dict) -> bool:
        return self._eval(self._tree, event)

    @property
    def fields(self) -> tuple[str, ...]:
        """The event fields the subscription reads (a caller may memoise matches on their values)."""
        found: list[str] = []

        def walk(node: tuple) -> None:
            if node[0] in ("and", "or"):
                walk(node[1])
                walk(node[2])
            elif node[1] not in found:
                found.append(node[1])

        walk(self._tree)
        return tuple(found)

    def _eval(self, node: tuple, event: dict) -> bool:
        op = node[0]
        if op == "and":
            return self._eval(node[1], event) and self._eval(node[2], event)
        if op == "or":
            return self._eval(node[1], event) or self._eval(node[2], event)
        value = get(event, node[1])
        equal = value == node[2] and isinstance(value, str)
        return equal if op == "=" else not equal

    def __repr__(self) -> str:
        return f"Subscription({self.text!r})"
