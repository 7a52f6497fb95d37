"""Experiment (issue 6): would delivering from a second process reach 25,000 events/s end to end?

The served sandbox runs everything under one GIL. This splits the pipeline over the two cores of the machine, on one
WAL file store: process A serves the Segment app with its background worker switched off (ingest, identity, 10
realtime audiences, outbox enqueue); process B opens the same file as a second Sandbox and loops `deliver_due()`
(planning, its own Braze app in-process, settling). The same 20,000 events as bench_pipeline.py are posted over
HTTP to A; the figure is events/s until B has delivered all of them. For comparison, the same file store served by
one process with its worker on, and each half measured alone (a perfect split cannot beat the slower one).

    python scripts/spike_two_process.py

Not a supported mode: B's Braze app and A's share no configuration, clock or RNG beyond what the file holds.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from bench_pipeline import CONFIG, batch, start_server  # noqa: E402

EVENTS = 20_000
DELIVERIES = 23_950  # what bench_pipeline's events make: 21,975 to braze, 1,975 to braze_cohorts
NO_WORKER = ("import sys, emulator.sandbox as s; s.Sandbox.start_worker = lambda self, *a, **k: None;"
             " sys.argv = ['emulator'] + sys.argv[1:]; from emulator.cli import main; main()")
DELIVERER = """
import sys, time
from emulator import Sandbox
sb = Sandbox(path=sys.argv[1], config=sys.argv[2], clock='realtime')
print('ready', flush=True)
delivered = 0
while delivered < int(sys.argv[3]):
    counts = sb.outbox.deliver_due()
    delivered += counts['delivered']
    if not counts['progressed']:
        time.sleep(0.005)
print('delivered', delivered, flush=True)
"""


def _serve(config: Path, db: str, worker: bool) -> tuple[subprocess.Popen, str]:
    return start_server(config, "--db", db, head=("-m", "emulator.cli") if worker else ("-c", NO_WORKER))


def _post_all(url: str) -> float:
    bodies = [json.dumps({"writeKey": "sandbox-write-key", "batch": batch(n)}).encode() for n in range(EVENTS // 100)]
    started = time.perf_counter()
    with httpx.Client(base_url=url, headers={"Content-Type": "application/json"}, timeout=120) as client:
        for body in bodies:
            assert client.post("/v1/batch", content=body).status_code == 200
    return started


def two_processes(tmp: Path, config: Path) -> tuple[float, float]:
    db = str(tmp / "split.db")
    server, url = _serve(config, db, worker=False)
    deliverer = subprocess.Popen([sys.executable, "-c", DELIVERER, db, str(config), str(DELIVERIES)],
                                 stdout=subprocess.PIPE, text=True)
    try:
        assert deliverer.stdout is not None and deliverer.stdout.readline().strip() == "ready"
        started = _post_all(url)
        ingested = time.perf_counter()
        assert deliverer.stdout.readline().startswith("delivered")
        done = time.perf_counter()
    finally:
        server.terminate()
        server.wait()
        deliverer.kill()
    return EVENTS / (ingested - started), EVENTS / (done - started)


def one_process(tmp: Path, config: Path) -> tuple[float, float]:
    server, url = _serve(config, str(tmp / "one.db"), worker=True)
    try:
        started = _post_all(url)
        ingested = time.perf_counter()
        with httpx.Client(base_url=url, timeout=120) as client:
            while True:
                client.post("/_emulator/flush")
                summary = client.get("/_emulator/segment/deliveries", params={"limit": 1}).json()["summary"]
                if sum(c.get("delivered", 0) for c in summary.values()) >= DELIVERIES:
                    break
        done = time.perf_counter()
    finally:
        server.terminate()
        server.wait()
    return EVENTS / (ingested - started), EVENTS / (done - started)


def halves_apart(tmp: Path, config: Path) -> tuple[float, float]:
    """One in-memory served sandbox with no worker: ingest alone, then delivery alone (POST /_emulator/flush)."""
    server, url = start_server(config, head=("-c", NO_WORKER))
    try:
        started = _post_all(url)
        ingested = time.perf_counter()
        with httpx.Client(base_url=url, timeout=600) as client:
            assert client.post("/_emulator/flush").json()["delivered"] >= DELIVERIES
        delivered = time.perf_counter()
    finally:
        server.terminate()
        server.wait()
    return EVENTS / (ingested - started), EVENTS / (delivered - ingested)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "bench.yaml"
        config.write_text(yaml.safe_dump(CONFIG))
        ingest, delivery = halves_apart(Path(tmp), config)
        print(f"the halves apart (in memory, no worker): ingest alone {ingest:,.0f} events/s;"
              f" then delivery alone (flush over HTTP) {delivery:,.0f} events/s")
        for name, run in (("one process (worker on), file store", one_process),
                          ("two processes (A ingests, B delivers), one file store", two_processes)):
            ingest, end_to_end = run(Path(tmp), config)
            print(f"{name}: ingest {ingest:,.0f} events/s; until all applied to Braze {end_to_end:,.0f} events/s")


if __name__ == "__main__":
    main()
