"""A local emulator of Twilio Segment (Tracking API + Engage) and Braze, wired together."""
from __future__ import annotations

__version__ = "0.1.0"

from .clock import Clock  # noqa: E402
from .sandbox import Sandbox  # noqa: E402

__all__ = ["Sandbox", "Clock", "__version__"]
