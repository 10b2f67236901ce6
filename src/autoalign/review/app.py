"""The review web app: a person labels the queued items in a browser, on 127.0.0.1 only.

    autoalign review runs/<name>        # prints http://127.0.0.1:<port>/?token=<token>

One page, rendered on the server (Jinja2, every model text autoescaped): the next pending item
with the prompt, the responses, the critic's critique, scores and uncertainty signals, and
progress counts. Buttons and keys A / B / T (tie) / S (skip) answer it; a score, an edited
response and a note go with the same request. Every request needs the random token printed at
start: the first visit with `?token=` sets it as an HttpOnly cookie, and scripts send it as
`Authorization: Bearer <token>`. The JSON API (`/api/items`, `/api/labels`, `/api/counts`) is
what the page itself uses, and what a scripted reviewer or another labelling tool can use.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel

from autoalign.review.queue import HumanLabel, ReviewQueue

COOKIE = "autoalign_review"
TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"], default=True),
)


class LabelIn(BaseModel):
    item_id: str
    kind: str
    value: Any = None
    note: str = ""


def _authorised(request: Request, token: str) -> bool:
    offered = request.cookies.get(COOKIE) or request.query_params.get("token") or ""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        offered = header[7:]
    return secrets.compare_digest(offered.encode(), token.encode())


def make_app(queue: ReviewQueue, token: str, who: str = "reviewer") -> FastAPI:
    """The app over one queue; labels are stored under `who`."""
    app = FastAPI(title="autoalign review", docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def require_token(request: Request, call_next):
        if not _authorised(request, token):
            return JSONResponse({"detail": "missing or wrong review token"}, status_code=401)
        if request.method == "GET" and request.query_params.get("token"):
            # Keep it in a cookie, out of the address bar and the history.
            response = RedirectResponse(str(request.url.remove_query_params("token")), status_code=303)
            response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
            return response
        return await call_next(request)

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        pending = queue.items(pending_only=True, limit=1)
        item = pending[0] if pending else None
        return TEMPLATES.get_template("review.html").render(item=item, counts=queue.counts(), who=who)

    @app.get("/api/counts")
    def counts() -> dict[str, int]:
        return queue.counts()

    @app.get("/api/items")
    def items(pending: bool = True) -> list[dict[str, Any]]:
        return [{"item_id": item.item_id, **asdict(item)} for item in queue.items(pending_only=pending)]

    @app.post("/api/labels")
    def label(body: LabelIn) -> dict[str, int]:
        try:
            answer = HumanLabel(body.item_id, body.kind, body.value, who=who, note=body.note)
        except ValueError as e:  # not a valid answer: label_problem's reason
            raise HTTPException(422, str(e)) from None
        try:
            queue.answer(answer)
        except KeyError as e:
            raise HTTPException(404, str(e.args[0])) from None
        return queue.counts()

    return app


def serve(run_dir: Path, port: int = 0, who: str = "reviewer", log=print) -> None:
    """Serve the run's queue until interrupted (port 0: a free one)."""
    import uvicorn

    from autoalign.engines.server import free_port
    from autoalign.review.queue import QUEUE_FILE

    token = secrets.token_urlsafe(24)
    port = port or free_port()
    with ReviewQueue(run_dir / QUEUE_FILE) as queue:
        counts = queue.counts()
        log(f"{counts['pending']} of {counts['items']} items wait for review in {run_dir / QUEUE_FILE}")
        log(f"open http://127.0.0.1:{port}/?token={token}")
        uvicorn.run(make_app(queue, token, who), host="127.0.0.1", port=port, log_level="warning")
