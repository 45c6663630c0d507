"""HTTP-level console tests: the real app on a local port, signed in like a browser would.

``ConsoleClient`` signs in through the sign-in form (its CSRF cookie and field), keeps the
session cookie, and reads each page's CSRF token from ``<body data-csrf>`` for the forms it
posts. The scheduler does not run, so the rows a test writes stay as written.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from ivr.store import Store
from ivr.web.app import AppParts, create_app
from ivr.web.keys import SERVICES
from tests.conftest import DIALPLANS
from tests.console.conftest import API_TOKEN, console_settings

CSRF = re.compile(r'data-csrf="([^"]*)"')


class ConsoleClient:
    def __init__(self, client: TestClient[Any, Any]) -> None:
        self.http = client
        self.csrf = ""

    @property
    def store(self) -> Store:
        return self.http.server.app[SERVICES].store

    async def sign_in(self) -> None:
        page = await self.http.get("/console/sign-in")
        token = re.search(r'name="csrf" value="([^"]*)"', await page.text())
        assert token is not None
        response = await self.http.post(
            "/console/sign-in",
            data={"csrf": token.group(1), "user": "", "password": API_TOKEN, "next": "/console/"},
            allow_redirects=False,
        )
        assert response.status == 303, await response.text()

    async def page(self, path: str, status: int = 200) -> str:
        """The page's HTML (and its CSRF token kept for the next post)."""
        response = await self.http.get(path, allow_redirects=False)
        body = await response.text()
        assert response.status == status, f"{path}: {response.status} {body[:500]}"
        if found := CSRF.search(body):
            self.csrf = found.group(1)
        return body

    async def post(self, path: str, data: dict[str, str], *, csrf: bool = True) -> ClientResponse:
        form = {**data, **({"csrf": self.csrf} if csrf else {})}
        return await self.http.post(path, data=form, allow_redirects=False)


def text_of(html: str) -> str:
    """The page's text without tags (entities decoded), spaces collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


@pytest.fixture
def plans_dir(tmp_path: Path) -> Path:
    """A copy of the shipped plans the test may edit while the server runs."""
    folder = tmp_path / "dialplans"
    shutil.copytree(DIALPLANS, folder)
    return folder


@pytest.fixture
async def console_client(tmp_path: Path, plans_dir: Path) -> AsyncIterator[ConsoleClient]:
    url = "http://127.0.0.1"
    app = create_app(
        console_settings(tmp_path, url, dialplans=plans_dir),
        url,
        AppParts(warm_up=False, background=False, recognizer=None),
    )
    async with TestClient(TestServer(app)) as client:
        console = ConsoleClient(client)
        await console.sign_in()
        yield console
