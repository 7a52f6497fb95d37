"""The sandbox's one seeded RNG: every id the emulator makes comes from here, so a run can be replayed."""
from __future__ import annotations

import random
import string
import uuid

_BASE62 = string.digits + string.ascii_letters


class Ids:
    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.rng = random.Random(seed)

    def reseed(self, seed: int | None = None) -> None:
        self.seed = self.seed if seed is None else seed
        self.rng.seed(self.seed)

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def hex(self, length: int) -> str:
        return f"{self.rng.getrandbits(length * 4):0{length}x}"

    def token(self, prefix: str = "", length: int = 27) -> str:
        """A KSUID-looking id such as Segment's `aud_2g5VilffxpBYqelWk4K0yBzAuFl`."""
        number = self.rng.getrandbits(6 * length)  # one draw for the whole token
        chars = []
        for _ in range(length):
            number, digit = divmod(number, 62)
            chars.append(_BASE62[digit])
        return prefix + "".join(chars)

    def random(self) -> float:
        return self.rng.random()

    def randint(self, low: int, high: int) -> int:
        return self.rng.randint(low, high)
