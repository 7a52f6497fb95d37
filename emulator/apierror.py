"""What the three error catalogues (Segment, Profile API, Braze) share."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TypeVar

E = TypeVar("E", bound="CatalogueError")


# Not frozen: contextlib sets __traceback__ on an exception leaving a `with` block (a frozen one turned into
# FrozenInstanceError, a 500). Compared by identity, as exceptions are.
@dataclass(eq=False)
class CatalogueError(Exception):
    """An API's error answer, kept as a shared instance in its catalogue and raised as `CATALOGUE_ENTRY()`."""

    def __call__(self: E) -> E:
        """A fresh copy to raise: a raised exception keeps its traceback (raising one instance again and again
        would pile them up)."""
        return replace(self)
