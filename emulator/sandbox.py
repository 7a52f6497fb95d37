"""`emulator.Sandbox`: the one object that owns a store, a clock, the RNG, the configuration and both apps."""
from __future__ import annotations

import copy
import threading
import time
import traceback
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from . import __version__
from .clock import Clock, iso, parse_instant
from .config import ConfigError, load_config, load_config_with_keys
from .ids import Ids
from .faults import Faults
from .journal import Journal
from .braze.service import BrazeWorkspace
from .segment.destinations.outbox import Outbox
from .segment.engage.service import EngageSpace
from .segment.service import SegmentWorkspace
from .store import Store

if TYPE_CHECKING:
    import httpx

Flusher = Callable[[], dict]
_FLUSH_ROUNDS = 1000
SEGMENT_BASE_URL = "http://segment.emulator"
BRAZE_BASE_URL = "http://braze.emulator"


class Sandbox:
    """Both services in one object. Two sandboxes in one process share nothing.

    `path=None` keeps the store in memory; a file path gives a durable store (WAL) a restart finds again.
    `config` is a dict or a YAML path merged over the defaults. `clock` is a `Clock`, `"manual"` (the default,
    standing still at 2026-01-01T00:00:00Z until moved) or `"realtime"`.
    """

    def __init__(self, path: str | Path | None = None, config: dict | str | Path | None = None,
                 clock: Clock | str | None = None, seed: int | None = None) -> None:
        self.config = load_config(config)
        self._seed_given = seed
        if seed is not None:
            self.config["seed"] = seed
        self.initial_config = copy.deepcopy(self.config)
        if isinstance(clock, Clock):
            self.clock = clock
        elif clock in (None, "manual", "realtime"):
            self.clock = Clock(realtime=clock == "realtime")
        else:
            raise ValueError(f"clock must be a Clock, 'manual' or 'realtime', not {clock!r}")
        self.store = Store(path)
        # A restarted file store must not hand out the ids of its previous life again.
        boots = int(self.store.get_meta("boots", "0") or 0)
        if self.store.path:
            self.store.set_meta("boots", str(boots + 1))
        self._id_seed = self.config["seed"] + boots * 1_000_003
        if self.store.path:
            self._resume_time()
            self.clock.on_move(self._remember_time)
        self.ids = Ids(self._id_seed)
        self.internal_errors: list[str] = []
        self.journal = Journal(self)
        self.faults = Faults(self)
        self._flushers: list[tuple[str, Flusher]] = []
        self._reset_hooks: list[Callable[[], None]] = []
        self._configure_hooks: list[Callable[[dict], None]] = []
        self._apps: dict[str, Any] = {}
        self._servers: Any = None
        self._worker: threading.Thread | None = None
        self._worker_stop = threading.Event()
        self.urls: dict[str, str] = {}
        self.segment = SegmentWorkspace(self)
        self.braze = BrazeWorkspace(self)
        self.outbox = Outbox(self)
        self.engage = EngageSpace(self)
        self._reset_hooks.append(self.segment.reset)
        self._reset_hooks.append(self.journal.reset)

    def _resume_time(self) -> None:
        """A restarted file store resumes its time: data stamped later than the new clock would otherwise be in its
        future (and the 24-hour messageId window would look back from before it). A real-time clock keeps the
        distance its moves put it ahead of the wall clock; a manual one, the instant it was moved to."""
        mode = "realtime" if self.clock.realtime else "manual"
        ahead = float(self.store.get_meta("clock_ahead") or 0)
        if mode == "realtime" and self.store.get_meta("clock_mode") == "realtime" and ahead > 0:
            self.clock.advance(timedelta(seconds=ahead))
        saved = self.store.get_meta("clock_now")
        if saved and parse_instant(saved) > self.clock.now():
            self.clock.set(saved)

    def _remember_time(self, _old: datetime | None, new: datetime) -> None:
        with self.store.transaction() as conn:
            conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [
                ("clock_now", iso(new)), ("clock_ahead", str(self.clock.moved.total_seconds())),
                ("clock_mode", "realtime" if self.clock.realtime else "manual")])

    # --- extension points used by the workspaces ------------------------------------------------
    def add_flusher(self, name: str, flusher: Flusher) -> None:
        """`flusher()` does the work that is due and returns counts, with `progressed: True` when it did
        something that may make more work due; `flush()` calls every flusher until none progresses."""
        self._flushers.append((name, flusher))

    def on_reset(self, hook: Callable[[], None]) -> None:
        self._reset_hooks.append(hook)

    def on_configure(self, hook: Callable[[dict], None]) -> None:
        self._configure_hooks.append(hook)

    # --- the apps ----------------------------------------------------------------------------------
    @property
    def segment_app(self) -> Any:
        if "segment" not in self._apps:
            from .segment.app import create_segment_app
            self._apps["segment"] = create_segment_app(self)
        return self._apps["segment"]

    @property
    def braze_app(self) -> Any:
        if "braze" not in self._apps:
            from .braze.app import create_braze_app
            self._apps["braze"] = create_braze_app(self)
        return self._apps["braze"]

    def segment_client(self, write_key: str | None = None) -> "httpx.Client":
        """An httpx client bound to the Segment app with no socket; `write_key` presets Basic auth."""
        import httpx

        auth = (write_key, "") if write_key else None
        return httpx.Client(transport=httpx.WSGITransport(app=self.segment_app), base_url=SEGMENT_BASE_URL, auth=auth)

    def braze_client(self, api_key: str | None = None) -> "httpx.Client":
        """An httpx client bound to the Braze app with the REST key header preset."""
        import httpx

        key = api_key or self.config["braze"]["rest_api_keys"][0]
        key = key["key"] if isinstance(key, dict) else key
        return httpx.Client(transport=httpx.WSGITransport(app=self.braze_app), base_url=BRAZE_BASE_URL,
                            headers={"Authorization": f"Bearer {key}"})

    # --- time, queues, data ------------------------------------------------------------------------
    def advance(self, duration: str | int | float | timedelta | None = None, **parts: float) -> datetime:
        return self.clock.advance(duration, **parts)

    def set_time(self, instant: str | datetime) -> datetime:
        return self.clock.set(instant)

    def flush(self) -> dict:
        """Deliver everything that is due (outbox, Currents, ...) until nothing is left; returns the counts.

        Each flusher drains its own queue; another round runs only when one made progress that may have given
        another flusher new work."""
        totals: dict[str, int] = {"delivered": 0, "retried": 0, "discarded": 0, "dropped": 0}
        for _ in range(_FLUSH_ROUNDS):
            progressed = False
            for _name, flusher in self._flushers:
                counts = dict(flusher() or {})
                progressed = bool(counts.pop("progressed", False)) or progressed
                for key, value in counts.items():
                    totals[key] = totals.get(key, 0) + int(value)
            if not progressed or len(self._flushers) < 2:
                break
        return totals

    def reset(self) -> None:
        """Empty all data and queued work, keep the configuration; a manual clock goes back to its start. A delivery
        under way (a served sandbox's worker) finishes its round first: nothing sent for the old data lands after."""
        with self.outbox.paused(), self.store.lock:
            # journal entries not written yet are the old data's too: dropped with it, with no gap for a write
            self.journal.reset()
            self.store.reset()
            self.clock.rewind_to_start()
            if self.store.path:
                self._remember_time(None, self.clock.now())
            self.ids.reseed(self._id_seed)
            self.internal_errors.clear()
            self.faults.clear()
            for hook in self._reset_hooks:
                hook()

    def configure(self, config: dict | str | Path | None) -> None:
        """Replace the configuration (validated first), keeping the data. The seed and the control token, set when
        the sandbox started (`--seed`, `--control-token`), stay unless the new configuration names them: a PUT of
        a configuration must not drop the token that guards the control API. The seed cannot change."""
        new, given = load_config_with_keys(config)
        for key in ("seed", "control_token"):
            if key not in given:
                new[key] = self.config.get(key)
        if self._seed_given is not None and not isinstance(config, dict):
            new["seed"] = self._seed_given  # --seed / Sandbox(seed=...) beats a file's seed, as it did at start
        if new["seed"] != self.config["seed"]:  # reseeding would hand out ids already given again
            raise ConfigError("seed", f"{self.config['seed']}, the seed this sandbox started with (set it at start: "
                              "--seed, EMULATOR_SEED or Sandbox(seed=...))", None)
        self.engage.computations.check_config_keys(new)
        self.config = new
        for hook in self._configure_hooks:
            hook(new)

    def health(self) -> dict:
        return {"status": "ok", "emulator": __version__, "schema_version": self.store.version,
                "store": self.store.path or "memory", "clock": self.clock.describe(), "urls": dict(self.urls)}

    # --- serving -----------------------------------------------------------------------------------
    def serve(self, segment_port: int = 0, braze_port: int = 0, host: str = "127.0.0.1") -> dict[str, str]:
        """Serve both apps on real sockets (port 0 picks a free one); returns their base URLs."""
        from .server import serve_apps

        if self._servers is not None:
            return dict(self.urls)
        self._servers = serve_apps({"segment": (self.segment_app, segment_port),
                                    "braze": (self.braze_app, braze_port)}, host=host)
        self.urls = {name: served.url for name, served in self._servers.apps.items()}
        return dict(self.urls)

    @property
    def segment_url(self) -> str:
        return self.urls["segment"]

    @property
    def braze_url(self) -> str:
        return self.urls["braze"]

    def start_worker(self, interval: float = 0.2, engage_every: float = 5.0) -> None:
        """A background thread for a served sandbox: delivers what is due every `interval` seconds and lets
        Engage see time pass every `engage_every` seconds (a real-time clock moves without anyone calling it)."""
        if self._worker is not None:
            return
        self._worker_stop.clear()

        def run() -> None:
            last_engage = 0.0
            while not self._worker_stop.wait(interval):
                try:
                    if self.clock.realtime and time.monotonic() - last_engage >= engage_every:
                        self.engage.computations.tick()
                        last_engage = time.monotonic()
                    self.outbox.deliver_due(stop=self._worker_stop)
                except Exception:  # an emulator bug: keep the worker alive, surface the error
                    self.internal_errors.append("background worker: " + traceback.format_exc())

        self._worker = threading.Thread(target=run, name="emulator-worker", daemon=True)
        self._worker.start()

    def stop_worker(self) -> None:
        if self._worker is not None:
            self._worker_stop.set()
            self._worker.join(30)
            self._worker = None

    def stop(self) -> None:
        if self._servers is not None:
            self.urls = {}  # deliveries go in-process from now on
            self.outbox.close()  # its keep-alive connections first: a server stops at once when none is open
            self._servers.stop()
            self._servers = None

    def close(self) -> None:
        self.stop_worker()
        self.stop()
        self.outbox.close()
        self.journal.write()
        self.store.close()

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
