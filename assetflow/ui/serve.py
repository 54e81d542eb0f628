"""Running the page's server: a socket bound first (so port 0 can be told), then uvicorn on it."""

from __future__ import annotations

import socket
import sys

from assetflow.ui.project_view import ProjectView


def serve(view: ProjectView, *, host: str, port: int, token: str | None, allow_run: bool,
          extra_hosts: tuple[str, ...] = ()) -> None:
    """Serve until Ctrl-C; prints the address (with the token, if any) on stderr."""
    import uvicorn

    from assetflow.ui.app import create_app

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)  # connections made as soon as the address is printed wait in the backlog
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    url = f"http://{shown}:{bound}/" + (f"?token={token}" if token else "")
    mode = "launching runs allowed" if allow_run else "read-only"
    print(f"assetflow ui: {view.root} at {url} ({mode}); Ctrl-C stops it", file=sys.stderr, flush=True)
    app = create_app(view, bind_host=host, token=token, allow_run=allow_run, extra_hosts=extra_hosts)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])
