"""The ``assetflow ui`` server: one static page and a JSON API that serves the CLI's documents.

``GET /api/<command>`` returns exactly what ``assetflow <command> --json`` prints
(docs/json-schema.md); ``/api/changes`` is the page's cheap poll, and
``POST /api/materialize`` (only with ``--allow-run``) starts a run in a subprocess,
as if typed in a terminal, so that the lock, the state and the logs are a run's like
any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import secrets
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assetflow.documents import document
from assetflow.errors import AssetflowError, SelectionError, UnknownAssetError
from assetflow.errors import ProjectBroken
from assetflow.ui.project_view import ProjectView, error_payload
from assetflow.ui.security import CSRF_HEADER, Guard, allowed_hosts, same_origin, same_token

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

STATIC = Path(__file__).parent / "static"


def page_html(mode: str, csrf: str = "", allow_run: bool = False) -> str:
    """The page, told how to reach its data: ``live`` (this server's API) or ``export`` (data/*.json)."""
    text = (STATIC / "index.html").read_text(encoding="utf-8")
    return (text.replace("{{mode}}", mode).replace("{{csrf}}", html.escape(csrf))
            .replace("{{allow_run}}", "1" if allow_run else "0"))


class Launcher:
    """Runs ``assetflow materialize`` in a subprocess for the page, one at a time."""

    def __init__(self, view: ProjectView) -> None:
        self.view = view
        self.process: subprocess.Popen[bytes] | None = None
        self.log: Any = None
        self.select = ""

    def start(self, select: str) -> dict[str, Any]:
        if self.process is not None and self.process.poll() is None:
            return {"started": False, "reason": f"a run started from this page is still going (pid "
                                                f"{self.process.pid})", **self.report()}
        command = [sys.executable, "-m", "assetflow", "materialize", "--project", str(self.view.root)]
        project_dir, modules, files = self.view.where
        command += [arg for m in modules for arg in ("-m", m)] + [arg for f in files for arg in ("-f", f)]
        if select.strip():
            command.append(select)
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=self.log,
                                        stderr=subprocess.STDOUT, cwd=self.view.root)
        self.select = select
        return {"started": True, **self.report()}

    def report(self) -> dict[str, Any]:
        if self.process is None:
            return {"launch": None}
        code = self.process.poll()
        output = ""
        if code is not None and self.log is not None:
            self.log.seek(0)
            output = self.log.read()[-4000:].decode(errors="replace")
        return {"launch": {"pid": self.process.pid, "select": self.select, "running": code is None,
                           "exit_code": code, "output": output}}

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


def create_app(view: ProjectView, *, bind_host: str = "127.0.0.1", token: str | None = None,
               allow_run: bool = False, extra_hosts: tuple[str, ...] = ()) -> Starlette:
    """The ASGI app for one project. Every project call runs on one worker thread, in order."""
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse, JSONResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="assetflow-ui")
    launcher = Launcher(view)
    csrf = secrets.token_urlsafe(24)

    async def on_worker(fn: Callable[[], Any]) -> Any:
        return await asyncio.wrap_future(worker.submit(fn))

    async def serve(fn: Callable[[], dict[str, Any]]) -> Response:
        try:
            return JSONResponse(await on_worker(fn))
        except ProjectBroken as exc:
            return JSONResponse(document("error", exc.payload), status_code=503)
        except UnknownAssetError as exc:
            status = 400 if isinstance(exc, SelectionError) else 404
            return JSONResponse(document("error", error_payload(exc)), status_code=status)
        except AssetflowError as exc:
            return JSONResponse(document("error", error_payload(exc)), status_code=400)
        except Exception as exc:  # noqa: BLE001 - the server outlives any failure of one request
            return JSONResponse(document("error", error_payload(exc)), status_code=500)

    async def index(request: Request) -> Response:
        return HTMLResponse(page_html("live", csrf, allow_run), headers={"cache-control": "no-store"})

    def command(name: str, *params: str) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            args = [request.path_params["name"]] if "name" in request.path_params else []
            args += [request.query_params[p] for p in params if p in request.query_params]
            return await serve(lambda: view.get(name, *args))
        return endpoint

    async def changes(request: Request) -> Response:
        def poll() -> dict[str, Any]:
            token_now = view.token()
            return document("changes", {"token": token_now, "broken": view.error is not None,
                                        "allow_run": allow_run, **launcher.report()})
        return await serve(poll)

    async def materialize(request: Request) -> Response:
        if not allow_run:
            return JSONResponse(document("error", {"error": {
                "type": "ReadOnly", "message": "This server is read-only: restart it with "
                "`assetflow ui --allow-run` to launch runs from the page.", "traceback": None}}), status_code=403)
        origin = request.headers.get("origin")
        if not same_token(request.headers.get(CSRF_HEADER), csrf) or (
                origin is not None and not same_origin(origin, request.url.scheme, request.headers.get("host", ""))):
            return JSONResponse(document("error", {"error": {
                "type": "CSRF", "message": "Missing or wrong CSRF token: launch runs from the page itself "
                "(reload it if the server restarted).", "traceback": None}}), status_code=403)
        try:
            body = await request.json()
        except ValueError:
            body = {}
        select = body.get("select", "") if isinstance(body, dict) else ""
        if not isinstance(select, str):
            select = ""
        return await serve(lambda: document("launch", launcher.start(select)))

    routes = [
        Route("/", index),
        Route("/api/status", command("status", "select")),
        Route("/api/list", command("list", "select")),
        Route("/api/show/{name}", command("show")),
        Route("/api/why/{name}", command("why", "partition")),
        Route("/api/lineage/{name}", command("lineage", "version")),
        Route("/api/history", command("history", "limit")),
        Route("/api/schedules", command("schedules")),
        Route("/api/sensors", command("sensors")),
        Route("/api/logs/{name}", command("logs", "run")),
        Route("/api/changes", changes),
        Route("/api/materialize", materialize, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        launcher.stop()
        await on_worker(view.close)
        worker.shutdown()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_middleware(Guard, hosts=allowed_hosts(bind_host, extra_hosts, token), token=token)
    return app
