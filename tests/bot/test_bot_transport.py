"""The aiohttp Bot API transport: what reaches the server, and how transport failures map onto PTB's."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from telegram import InputFile
from telegram.error import NetworkError, TimedOut
from telegram.request import RequestData
from telegram.request._requestparameter import RequestParameter

from bot.transport import AiohttpRequest

TOKEN_PATH = "/bot123:SECRET-token/"


@pytest.fixture()
async def server() -> AsyncIterator[tuple[str, list[dict]]]:
    """A loopback server that records each request's form and answers like the Bot API."""
    seen: list[dict] = []

    async def method(request: web.Request) -> web.Response:
        form = await request.post()
        fields = {
            name: (value.file.read(), value.filename, value.content_type) if hasattr(value, "file") else value
            for name, value in form.items()
        }
        seen.append({"method": request.match_info["method"], "content_type": request.content_type, **fields})
        if request.match_info["method"] == "slow":
            await asyncio.sleep(2)
        return web.json_response({"ok": True, "result": True})

    app = web.Application()
    app.router.add_post(TOKEN_PATH + "{method}", method)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", seen
    await runner.cleanup()


async def test_form_fields_arrive_json_encoded_and_the_answer_comes_back(server) -> None:
    base, seen = server
    data = RequestData(
        [RequestParameter.from_input("chat_id", 42), RequestParameter.from_input("text", "héllo <b>x</b>")]
    )
    async with AiohttpRequest(read_timeout=3.0) as request:
        status, body = await request.do_request(base + TOKEN_PATH + "sendMessage", "POST", data)
    assert status == 200 and json.loads(body) == {"ok": True, "result": True}
    assert seen == [
        {
            "method": "sendMessage",
            "content_type": "application/x-www-form-urlencoded",
            "chat_id": "42",
            "text": "héllo <b>x</b>",
        }
    ]


async def test_a_photo_goes_as_multipart_with_its_bytes_name_and_type(server) -> None:
    base, seen = server
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    data = RequestData(
        [
            RequestParameter.from_input("chat_id", 7),
            RequestParameter.from_input("photo", InputFile(png, filename="grid.png")),
            RequestParameter.from_input("caption", "<i>digits</i>"),
        ]
    )
    async with AiohttpRequest() as request:
        status, _ = await request.do_request(base + TOKEN_PATH + "sendPhoto", "POST", data)
    assert status == 200
    [call] = seen
    assert call["content_type"] == "multipart/form-data"
    assert call["chat_id"] == "7" and call["caption"] == "<i>digits</i>"
    [upload] = [value for value in call.values() if isinstance(value, tuple)]
    assert upload == (png, "grid.png", "image/png")


async def test_a_read_past_its_timeout_is_timed_out(server) -> None:
    base, _ = server
    async with AiohttpRequest(read_timeout=0.2) as request:
        with pytest.raises(TimedOut):
            await request.do_request(base + TOKEN_PATH + "slow", "POST", RequestData([]))


async def test_an_unreachable_server_is_a_network_error_that_does_not_show_the_token(
    unused_tcp_port: int,
) -> None:
    url = f"http://127.0.0.1:{unused_tcp_port}{TOKEN_PATH}getMe"
    async with AiohttpRequest(read_timeout=1.0) as request:
        with pytest.raises(NetworkError) as caught:
            await request.do_request(url, "POST", RequestData([]))
    assert not isinstance(caught.value, TimedOut)
    assert "SECRET" not in str(caught.value) and caught.value.__cause__ is None


async def test_calls_need_initialize_and_shutdown_closes_the_session() -> None:
    request = AiohttpRequest(read_timeout=2.5)
    assert request.read_timeout == 2.5  # PTB adds it to a long poll's own timeout
    with pytest.raises(RuntimeError, match="not initialized"):
        await request.do_request("http://127.0.0.1:9/", "POST")
    await request.initialize()
    await request.shutdown()
    with pytest.raises(RuntimeError, match="not initialized"):
        await request.do_request("http://127.0.0.1:9/", "POST")
