"""Configuration: the embedded defaults (EMULATOR.md §2), YAML loading and validation.

A configuration is plain data (dicts and lists). What a user gives is merged over the defaults (mappings
merge key by key, lists replace), then checked against `SCHEMA`: an unknown key or a wrong type is refused
with the file, the path inside it and what was expected.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable

import yaml

DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "journal_limit": 10_000,
    "control_token": None,
    "segment": {
        "region": "US",
        "strict": False,
        "debugger_limit": 10_000,
        "sources": [
            {"name": "sandbox", "write_key": "sandbox-write-key"},
            {"name": "braze", "write_key": "sandbox-braze-source-key", "type": "braze"},
        ],
        "space": {
            "id": "spa_sandbox",
            "access_token": "sandbox-profile-token",
            "public_api_token": "sandbox-public-api-token",
            # Unify identity resolution settings; Segment's defaults (segment-query-language.md §4.2).
            "identity": {
                "identifiers": {"user_id": {"limit": 1, "priority": 1}, "email": {"limit": 5, "priority": 2}},
                "default_limit": 5,
                "blocked_values": [],
            },
        },
        "audiences": [],
        "computed_traits": [],
        "destinations": {
            "braze": {"api_key": "sandbox-rest-key", "endpoint": "braze", "app_id": "sandbox-app"},
            "braze_cohorts": {"client_secret": "sandbox-data-import-key", "endpoint": "braze"},
        },
    },
    "braze": {
        "rest_api_keys": ["sandbox-rest-key"],
        "data_import_keys": ["sandbox-data-import-key"],
        "partner_api_key": "sandbox-partner-key",
        "segments": [],
        "currents": [
            {"name": "to-segment", "type": "segment", "write_key": "sandbox-braze-source-key",
             "region": "US", "events": "all"},
        ],
        "rate_limits": {},  # bucket -> {limit, window_seconds}; defaults in emulator/braze/auth.py
    },
}


class ConfigError(ValueError):
    """A configuration refused at load: names the file, the path inside it and what was expected."""

    def __init__(self, path: str, expected: str, source: str | None = None) -> None:
        self.path, self.expected, self.source = path, expected, source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{path or '<root>'}: expected {expected}")


# --- a small declarative schema: dict = closed mapping, [spec] = list of, tuple = one of these values,
# --- a type = that type, ANY = not checked here (the owning module checks it), Optional(spec) allows null.
class _Any:
    def __repr__(self) -> str:
        return "anything"


ANY = _Any()


class Optional:
    def __init__(self, spec: Any) -> None:
        self.spec = spec


class Check:
    """A custom check: `fn(value)` returns an error text or None."""

    def __init__(self, fn: Callable[[Any], str | None]) -> None:
        self.fn = fn


class MapOf:
    """A mapping of free names to values of one spec (e.g. destinations by name)."""

    def __init__(self, spec: Any) -> None:
        self.spec = spec


REGION = ("US", "EU")
DESTINATION = {
    "type": ("braze", "braze_cohorts"), "enabled": bool, "sources": [str],
    # Braze Cloud Mode (Actions) settings
    "api_key": str, "endpoint": str, "app_id": Optional(str), "preset_set": ("classic", "current"),
    "update_existing_only": bool,
    # Braze Cohorts settings
    "client_secret": str, "partner_api_key": Optional(str), "personas_audience_key": str, "mapping": ANY,
}

SCHEMA: dict[str, Any] = {
    "seed": int,
    "journal_limit": int,
    "control_token": Optional(str),
    "segment": {
        "region": REGION,
        "strict": bool,
        "debugger_limit": int,
        "sources": [{"name": str, "write_key": str, "region": REGION, "type": str}],
        "space": {"id": str, "access_token": str, "public_api_token": str, "batch_interval_hours": (int, float),
                  "identity": {"identifiers": Check(lambda v: _check_identifiers(v)),
                               "default_limit": Check(lambda v: _check_identifiers({"*": {"limit": v}})),
                               "default_frequency": ("ever", "daily", "weekly", "monthly", "annually"),
                               "blocked_values": [str]}},
        "audiences": [ANY],
        "computed_traits": [ANY],
        "destinations": MapOf(DESTINATION),
        "delivery": {"retry_window": str, "backoff_base": str, "backoff_max": str},
    },
    "braze": {
        "rest_api_keys": [Check(lambda v: _braze_check("auth", "check_rest_key", v))],
        "data_import_keys": [str],
        "partner_api_key": Optional(str),
        "segments": Check(lambda v: _braze_check("segments", "check_segments", v)),
        "currents": [ANY],
        "rate_limits": Check(lambda v: _braze_check("auth", "check_rate_limits", v)),
    },
}


def _braze_check(module: str, name: str, value: Any) -> str | None:
    """Braze's own checks (emulator/braze/auth.py, segments.py), imported when a config is validated."""
    import importlib

    return getattr(importlib.import_module(f"emulator.braze.{module}"), name)(value)


def _check_identifiers(value: Any) -> str | None:
    from .segment.engage.identity import check_identifier_settings

    return check_identifier_settings(value)


REQUIRED_IN_LISTS = {"segment.sources": ("name", "write_key")}


def _type_name(spec: Any) -> str:
    if isinstance(spec, dict):
        return "a mapping"
    if isinstance(spec, list):
        return "a list"
    if isinstance(spec, tuple) and all(isinstance(s, type) for s in spec):
        return " or ".join(_type_name(s) for s in spec)
    if isinstance(spec, tuple):
        return "one of " + ", ".join(repr(v) for v in spec)
    if isinstance(spec, Optional):
        return f"{_type_name(spec.spec)} or null"
    return {str: "a string", int: "an integer", bool: "true or false", float: "a number"}.get(spec, repr(spec))


def validate(value: Any, spec: Any = SCHEMA, path: str = "", source: str | None = None) -> None:
    if spec is ANY or isinstance(spec, _Any):
        return
    if isinstance(spec, Optional):
        if value is not None:
            validate(value, spec.spec, path, source)
        return
    if isinstance(spec, Check):
        problem = spec.fn(value)
        if problem:
            raise ConfigError(path, problem, source)
        return
    if isinstance(spec, MapOf):
        if not isinstance(value, dict):
            raise ConfigError(path, "a mapping", source)
        for key, item in value.items():
            validate(item, spec.spec, f"{path}.{key}" if path else str(key), source)
        return
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            raise ConfigError(path, "a mapping", source)
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if key not in spec:
                raise ConfigError(child, f"no such key (known keys: {', '.join(sorted(spec))})", source)
            validate(item, spec[key], child, source)
        return
    if isinstance(spec, list):
        if not isinstance(value, list):
            raise ConfigError(path, "a list", source)
        for index, item in enumerate(value):
            validate(item, spec[0], f"{path}[{index}]", source)
            for key in REQUIRED_IN_LISTS.get(path, ()):
                if key not in item:
                    raise ConfigError(f"{path}[{index}].{key}", "a value (it is required)", source)
        return
    if isinstance(spec, tuple):
        if all(isinstance(s, type) for s in spec):
            if isinstance(value, bool) or not isinstance(value, spec):
                raise ConfigError(path, _type_name(spec), source)
        elif value not in spec:
            raise ConfigError(path, _type_name(spec), source)
        return
    if spec is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(path, "an integer", source)
    if not isinstance(value, spec):
        raise ConfigError(path, _type_name(spec), source)


def merge(base: Any, override: Any) -> Any:
    """Mappings merge key by key; anything else (lists included) replaces."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    return copy.deepcopy(override)


def load_config(config: dict | str | Path | None = None) -> dict:
    """The defaults, with `config` (a dict, or a YAML file path) merged over them, validated."""
    return load_config_with_keys(config)[0]


def load_config_with_keys(config: dict | str | Path | None = None) -> tuple[dict, set[str]]:
    """`load_config`, and the top-level keys `config` itself sets (the rest are defaults)."""
    source = None
    if config is None:
        return copy.deepcopy(DEFAULTS), set()  # the defaults are valid as they stand
    elif isinstance(config, (str, Path)):
        source = str(config)
        try:
            text = Path(config).read_text()
        except OSError as exc:
            raise ConfigError("", f"a readable YAML file ({exc.strerror})", source) from None
        try:
            user = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError("", f"valid YAML ({exc})", source) from None
    elif isinstance(config, dict):
        user = config
    else:
        raise ConfigError("", "a mapping or a YAML file path", None)
    validate(user, SCHEMA, "", source)
    merged = merge(DEFAULTS, user)
    validate(merged, SCHEMA, "", source)
    _check_unique_write_keys(merged, source)
    if merged["segment"]["audiences"] or merged["segment"]["computed_traits"]:
        from .segment.engage.definitions import check_config

        check_config(merged, source)
    for name, settings in merged["segment"]["destinations"].items():
        if settings.get("type", name) not in ("braze", "braze_cohorts"):
            raise ConfigError(f"segment.destinations.{name}.type", "braze or braze_cohorts (the destination's kind;"
                              " it defaults to the destination's name)", source)
    return merged, set(user)


def _check_unique_write_keys(config: dict, source: str | None) -> None:
    seen: dict[str, int] = {}
    for index, src in enumerate(config["segment"]["sources"]):
        if src["write_key"] in seen:
            raise ConfigError(f"segment.sources[{index}].write_key",
                              f"a write key no other source uses (sources[{seen[src['write_key']]}] has it)", source)
        seen[src["write_key"]] = index
