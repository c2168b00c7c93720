"""The operations HTTP endpoint of `sportello run`: /metrics (Prometheus), /healthz (alive), /readyz (JSON)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from wsgiref.simple_server import WSGIRequestHandler, make_server
from wsgiref.types import StartResponse, WSGIEnvironment

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from daemon.ops.health import Readiness

__all__ = ["OpsEndpoint"]

log = logging.getLogger("sportello.ops")


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        """A scrape every 15 s is not news: no access log."""


def _json(start_response: StartResponse, status: str, body: dict[str, object]) -> list[bytes]:
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    start_response(status, [("Content-Type", "application/json; charset=utf-8"), ("Content-Length", str(len(data)))])
    return [data]


class OpsEndpoint:
    """Serves in a thread of its own from `start()` to `stop()`."""

    def __init__(self, host: str, port: int, registry: CollectorRegistry, readiness: Callable[[], Readiness]) -> None:
        self.readiness = readiness
        self._metrics = make_wsgi_app(registry)
        self._server = make_server(host, port, self._app, ThreadingWSGIServer, handler_class=_QuietHandler)
        self.port = int(self._server.server_port)
        self._thread = threading.Thread(target=self._server.serve_forever, name="ops-http", daemon=True)

    def _app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            return _json(start_response, "200 OK", {"status": "ok"})
        if path == "/readyz":
            try:
                ready = self.readiness()
            except Exception as exc:  # a bug in a check is an unready answer, not a dropped connection
                log.exception("controllo di prontezza non riuscito")
                return _json(start_response, "503 Service Unavailable", {"status": "errore", "detail": repr(exc)})
            return _json(start_response, "200 OK" if ready.ok else "503 Service Unavailable", ready.to_dict())
        if path == "/metrics":
            return self._metrics(environ, start_response)
        return _json(
            start_response, "404 Not Found", {"status": "sconosciuto", "paths": ["/metrics", "/healthz", "/readyz"]}
        )

    def start(self) -> None:
        self._thread.start()
        log.info("metriche e stato su http://%s:%d/ (metrics, healthz, readyz)", *self._server.server_address[:2])

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
