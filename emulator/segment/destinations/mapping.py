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

from .jsvalues import js_index


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
    return _walk(obj, _path_keys(path))


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
    return compile_mapping(mapping)(event)


# -- compiled mappings ----------------------------------------------------------------------------------------------
# `resolve` interprets the mapping anew for every event (directive detection, path splitting, recursion); a preset's
# mapping is static, so it is turned once into a tree of closures computing `remove_undefined(resolve(mapping, e))`.
# Objects the mapping builds drop their UNDEFINED members as they are built; values read from the event are returned
# as they are (an event is JSON: it holds no UNDEFINED, and the destinations copy what they send). Anything unusual
# (an unknown directive, a malformed @if / @arrayPath, non-string keys) keeps the interpreter for that subtree.

_COMPILED: dict[str, Callable[[Any], Any]] = {}
_COMPILED_MAX = 256


def compile_mapping(mapping: Any) -> Callable[[Any], Any]:
    """`lambda event: remove_undefined(resolve(mapping, event))`, compiled once per distinct mapping.

    Cached by the mapping's repr (its content, key order included), so a mapping edited in place or rebuilt per call
    is never confused with another; callers planning a batch compile once per batch.
    """
    key = repr(mapping)
    compiled = _COMPILED.get(key)
    if compiled is None:
        if len(_COMPILED) >= _COMPILED_MAX:
            _COMPILED.clear()
        compiled = _COMPILED[key] = _compile(mapping)
    return compiled


def _interpreted(mapping: Any) -> Callable[[Any], Any]:
    return lambda payload: remove_undefined(resolve(mapping, payload))


def _compile(mapping: Any) -> Callable[[Any], Any]:
    try:
        if isinstance(mapping, dict):
            if _is_directive(mapping):
                name = next(k for k in mapping if k.startswith("@"))
                compiler = _DIRECTIVE_COMPILERS.get(name)
                return compiler(mapping[name]) if compiler else _interpreted(mapping)
            return _compile_object(mapping)
        if isinstance(mapping, list):
            items = [_compile(item) for item in mapping]
            return lambda payload: [item(payload) for item in items]
    except Exception:  # odd shapes: let the interpreter raise (or not) exactly where it did
        return _interpreted(mapping)
    return lambda payload: mapping  # a literal


def _compile_object(mapping: dict) -> Callable[[Any], dict]:
    members = [(key, _compile(value)) for key, value in mapping.items()]

    def build(payload: Any) -> dict:
        out = {}
        for key, member in members:
            value = member(payload)
            if value is not UNDEFINED:
                out[key] = value
        return out

    return build


def _walk(current: Any, keys: tuple[str, ...]) -> Any:
    """`get`'s walk from `current` on, for any value (the compiled getters handle plain dicts themselves)."""
    for key in keys:
        if not truthy(current):
            return current
        if isinstance(current, dict):
            current = current.get(key, UNDEFINED)
        elif isinstance(current, list):
            index = js_index(key, len(current))  # arr["1"] is arr[1]; arr["01"] is undefined
            current = current[index] if index is not None else UNDEFINED
        elif isinstance(current, str) and key == "length":
            current = len(current)
        else:
            current = UNDEFINED
    return current


def compile_get(path: str) -> Callable[[Any], Any]:
    """`lambda obj: get(obj, path)`: the path split once; plain dicts (always truthy) walked inline."""
    if path in ("", "."):
        return lambda obj: obj
    keys = _path_keys(path)
    if len(keys) == 1:
        (k1,) = keys

        def get1(obj: Any) -> Any:
            if obj.__class__ is dict:
                return obj.get(k1, UNDEFINED)
            return _walk(obj, keys)
        return get1
    if len(keys) == 2:
        k1, k2 = keys
        rest = keys[1:]

        def get2(obj: Any) -> Any:
            if obj.__class__ is dict:
                current = obj.get(k1, UNDEFINED)
                if current.__class__ is dict:
                    return current.get(k2, UNDEFINED)
                return _walk(current, rest)
            return _walk(obj, keys)
        return get2
    tails = [keys[i:] for i in range(len(keys))]

    def get_n(obj: Any) -> Any:
        current = obj
        for i, key in enumerate(keys):
            if current.__class__ is not dict:
                return _walk(current, tails[i])
            current = current.get(key, UNDEFINED)
        return current
    return get_n


def _compile_path(value: Any) -> Callable[[Any], Any]:
    if isinstance(value, str):
        return compile_get(value.replace("$.", "", 1))
    inner = _compile(value)

    def path(payload: Any) -> Any:
        text = inner(payload)
        if not isinstance(text, str):
            raise ValueError(f"@path: expected string, got {type(text).__name__}")
        return get(payload, text.replace("$.", "", 1))
    return path


def _compile_if(opts: dict) -> Callable[[Any], Any]:
    blank = "exists" not in opts
    probe = _compile(opts["blank"] if blank else opts["exists"])
    then = _compile(opts["then"]) if "then" in opts else None
    otherwise = _compile(opts["else"]) if opts.get("else") else None

    def if_(payload: Any) -> Any:
        value = probe(payload)
        condition = value is not UNDEFINED and value is not None and not (blank and value == "")
        if condition:
            return then(payload) if then is not None else UNDEFINED
        return otherwise(payload) if otherwise is not None else UNDEFINED
    return if_


def _compile_array_path(opts: list) -> Callable[[Any], Any]:
    if not isinstance(opts, list) or len(opts) != 2:
        raise ValueError("@arrayPath: unusual options")  # -> interpreted
    path, item_shape = opts
    root_of = compile_get(path.replace("$.", "", 1)) if isinstance(path, str) else _compile(path)
    if not (isinstance(item_shape, dict) and item_shape):
        return root_of
    item = _compile(item_shape)

    def array_path(payload: Any) -> Any:
        root = root_of(payload)
        if isinstance(root, list):
            return [item(element) for element in root]
        if isinstance(root, dict):
            return [item(root)]
        return root
    return array_path


_DIRECTIVE_COMPILERS: dict[str, Callable[[Any], Callable[[Any], Any]]] = {
    "@path": _compile_path, "@if": _compile_if, "@arrayPath": _compile_array_path}


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
        # Top-level fields only (`type`, `event`): the answer for an event is memoised on their values.
        self._memo_fields = self.fields if all("." not in f for f in self.fields) else None
        self._memo: dict[tuple, bool] = {}

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
        fields = self._memo_fields
        if fields is None or event.__class__ is not dict:
            return self._eval(self._tree, event)
        key = tuple([event.get(f, UNDEFINED) for f in fields])  # what `get(event, f)` reads from a dict
        if not all(v.__class__ is str or v is None or v is UNDEFINED for v in key):
            return self._eval(self._tree, event)  # only string / null / absent values are memoised (hashable)
        answer = self._memo.get(key)
        if answer is None:
            if len(self._memo) >= 4096:
                self._memo.clear()
            answer = self._memo[key] = self._eval(self._tree, event)
        return answer

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
