"""`emulator` command line: `emulator serve` runs the sandbox server."""
from __future__ import annotations

import signal
import sqlite3
import sys
import threading
import time

import click

from . import __version__


def _credentials(config: dict) -> list[tuple[str, str]]:
    segment, braze = config["segment"], config["braze"]
    rows = [(f"Segment write key ({s['name']})", s["write_key"]) for s in segment["sources"]]
    rows += [
        ("Engage space id", segment["space"]["id"]),
        ("Profile API access token", segment["space"]["access_token"]),
        ("Segment Public API token", segment["space"]["public_api_token"]),
    ]
    rows += [("Braze REST API key", k["key"] if isinstance(k, dict) else k) for k in braze["rest_api_keys"]]
    rows += [("Braze data import key", k) for k in braze["data_import_keys"]]
    if braze.get("partner_api_key"):
        rows.append(("Braze cohort partner API key", braze["partner_api_key"]))
    return rows


@click.group()
@click.version_option(__version__, prog_name="emulator")
def main() -> None:
    """A local emulator of Segment (Tracking API + Engage) and Braze, wired together."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, envvar="EMULATOR_HOST", help="Interface to listen on.")
@click.option("--segment-port", default=8700, show_default=True, type=click.IntRange(0, 65535),
              envvar="EMULATOR_SEGMENT_PORT", help="Port of the Segment app (0 picks a free port).")
@click.option("--braze-port", default=8701, show_default=True, type=click.IntRange(0, 65535),
              envvar="EMULATOR_BRAZE_PORT",
              help="Port of the Braze app (0 picks a free port).")
@click.option("--db", "db_path", default=None, envvar="EMULATOR_DB", type=click.Path(dir_okay=False),
              help="SQLite file for a durable store (default: in memory).")
@click.option("--config", "config_path", default=None, envvar="EMULATOR_CONFIG", type=click.Path(exists=True),
              help="YAML configuration merged over the embedded defaults.")
@click.option("--control-token", default=None, envvar="EMULATOR_CONTROL_TOKEN",
              help="Require this token (X-Emulator-Token header) on /_emulator/.")
@click.option("--seed", default=None, type=int, envvar="EMULATOR_SEED", help="Seed of the sandbox RNG.")
@click.option("--manual-clock", is_flag=True, envvar="EMULATOR_MANUAL_CLOCK",
              help="Start a manual clock (moved only through /_emulator/clock) instead of real time.")
def serve(host: str, segment_port: int, braze_port: int, db_path: str | None, config_path: str | None,
          control_token: str | None, seed: int | None, manual_clock: bool) -> None:
    """Serve the Segment and Braze apps on real sockets until Ctrl-C."""
    from .config import ConfigError
    from .sandbox import Sandbox

    try:
        sandbox = Sandbox(path=db_path, config=config_path, clock="manual" if manual_clock else "realtime", seed=seed)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    except sqlite3.Error as exc:  # not a directory we can write, or not an SQLite file
        raise click.ClickException(f"cannot open the store {db_path}: {exc}") from None
    if control_token:
        sandbox.config["control_token"] = control_token
    try:
        urls = sandbox.serve(segment_port=segment_port, braze_port=braze_port, host=host)
    except (OSError, ValueError) as exc:  # ValueError: waitress on a host it cannot resolve
        sandbox.close()
        raise click.ClickException(f"cannot listen on {host}: {exc}") from None

    sandbox.start_worker()
    stop = threading.Event()

    def _stop(_signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    click.echo(f"emulator {__version__}: Segment and Braze sandbox")
    click.echo(f"  Segment  {urls['segment']}   (Tracking API at {urls['segment']}/v1/...)")
    click.echo(f"  Braze    {urls['braze']}")
    click.echo(f"  store    {sandbox.store.path or 'in memory (use --db FILE to keep data)'}")
    click.echo(f"  clock    {sandbox.clock.describe()['mode']}, now {sandbox.clock.describe()['now']}")
    for label, value in _credentials(sandbox.config):
        click.echo(f"  {label:<32} {value}")
    click.echo("  control API: GET /_emulator/health on either app. Ctrl-C stops.")
    sys.stdout.flush()
    while not stop.is_set():
        stop.wait(0.5)
    click.echo("stopping: finishing requests in flight")
    started = time.monotonic()
    sandbox.close()
    click.echo(f"stopped in {time.monotonic() - started:.2f} s")


if __name__ == "__main__":  # pragma: no cover
    main()
