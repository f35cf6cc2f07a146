"""The web console of `tempo serve`: GET / (index.html, open without a token so the page can ask for
one) and its assets under /static (tempo/tools/static)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"


def register_console_routes(app: FastAPI) -> None:
    """GET / and the /static mount."""

    @app.get("/", include_in_schema=False)
    async def console() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
