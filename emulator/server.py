"""Serving both apps on real sockets with waitress, each on its own port and thread."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from waitress import create_server
from waitress import wasyncore


@dataclass
class ServedApp:
    name: str
    server: Any
    thread: threading.Thread
    url: str


@dataclass
class Servers:
    apps: dict[str, ServedApp] = field(default_factory=dict)

    def url(self, name: str) -> str:
        return self.apps[name].url

    def stop(self, timeout: float = 5.0) -> None:
        """Finish the requests in flight, then close every socket."""
        for served in self.apps.values():
            served.server.task_dispatcher.shutdown(cancel_pending=False, timeout=timeout)
            # closed by the loop's own thread (a trigger thunk): sockets closed under a select() in progress made
            # it raise EBADF in that thread; an empty map then ends the loop
            served.server.trigger.pull_trigger(lambda m=served.server._map: wasyncore.close_all(m))
        for served in self.apps.values():
            served.thread.join(timeout)
            wasyncore.close_all(served.server._map)  # a no-op once the loop closed them; else (no loop) from here
        self.apps.clear()


def serve_apps(apps: dict[str, tuple[Any, int]], host: str = "127.0.0.1", threads: int = 8) -> Servers:
    """`apps` maps a name to (wsgi_app, port); port 0 picks a free one. Returns once all are listening."""
    servers = Servers()
    try:
        for name, (wsgi_app, port) in apps.items():
            server = create_server(wsgi_app, host=host, port=port, threads=threads, ident="emulator",
                                   clear_untrusted_proxy_headers=True, channel_timeout=60)
            shown_host = f"[{host}]" if ":" in host else host
            url = f"http://{shown_host}:{server.effective_port}"
            thread = threading.Thread(target=server.run, name=f"emulator-{name}-http", daemon=True)
            thread.start()
            servers.apps[name] = ServedApp(name, server, thread, url)
    except BaseException:
        servers.stop()
        raise
    return servers
