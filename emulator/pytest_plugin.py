"""pytest fixtures, registered through the `pytest11` entry point (EMULATOR.md §7).

- `sandbox`: a fresh in-process Sandbox per test (in-memory store, manual clock).
- `segment`, `braze`: httpx clients bound to it through the WSGI transport (no socket).
- `sandbox_server`: a Sandbox served on real sockets (port 0), started once per session (per xdist worker)
  and reset before each test; its `segment_url` and `braze_url` are for clients that need a URL.
- With either, an emulator-side 500 during the test fails that test, with the server's traceback.
"""
from __future__ import annotations

from typing import Iterator

import pytest

from .sandbox import Sandbox


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as sb:
        yield sb
        _raise_internal_errors(sb)


@pytest.fixture
def segment(sandbox: Sandbox) -> Iterator:
    with sandbox.segment_client() as client:
        yield client


@pytest.fixture
def braze(sandbox: Sandbox) -> Iterator:
    with sandbox.braze_client() as client:
        yield client


@pytest.fixture(scope="session")
def _emulator_session_server() -> Iterator[Sandbox]:
    sb = Sandbox()
    sb.serve(segment_port=0, braze_port=0)
    try:
        yield sb
    finally:
        sb.close()


@pytest.fixture
def sandbox_server(_emulator_session_server: Sandbox) -> Iterator[Sandbox]:
    sb = _emulator_session_server
    if sb.config != sb.initial_config:  # a test that reconfigured must not leak into the next one
        sb.configure(sb.initial_config)
    sb.reset()
    yield sb
    _raise_internal_errors(sb)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """An emulator 500 during a test that otherwise passed fails that test itself (not only its teardown)."""
    result = yield
    funcargs = getattr(item, "funcargs", {})
    for name in ("sandbox", "_emulator_session_server"):
        sb = funcargs.get(name)
        if isinstance(sb, Sandbox):
            _raise_internal_errors(sb)
    return result


def _raise_internal_errors(sb: Sandbox) -> None:
    if sb.internal_errors:
        errors, sb.internal_errors[:] = list(sb.internal_errors), []
        pytest.fail("the emulator answered 500 during this test:\n" + "\n".join(errors), pytrace=False)
