"""`sandbox.engage`: the Engage space (identity, profiles, audiences, computed traits) as a plain object."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ...sandbox import Sandbox


class EngageSpace:
    def __init__(self, sandbox: "Sandbox") -> None:
        self.sandbox = sandbox
