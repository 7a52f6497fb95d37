"""`sandbox.braze`: the Braze workspace as a plain Python object (no HTTP needed)."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..sandbox import Sandbox


class BrazeWorkspace:
    def __init__(self, sandbox: "Sandbox") -> None:
        self.sandbox = sandbox
