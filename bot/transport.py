"""The Bot API's HTTP transport on aiohttp, in place of PTB's default httpx one.

Why: with the knowledge base answering in a few milliseconds, the Bot API calls were what the bot
spent most CPU on. httpx's connection pool re-checks every pooled connection (a socket poll each,
and a quadratic idle count) on every request; aiohttp's client costs a fraction of that per call, and
the generation client already uses it. PTB keeps everything else: it builds the requests, parses the
answers and turns status codes into its exceptions; this class only moves bytes and maps transport
failures onto PTB's TimedOut and NetworkError, as its own transports do.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

CONNECT_TIMEOUT_S = 5.0
WRITE_TIMEOUT_S = 5.0
MEDIA_WRITE_TIMEOUT_S = 20.0  # uploads (an /image grid) may take longer to send than a message
POOL_TIMEOUT_S = 1.0


def _chosen(value: Any, default: float | None) -> float | None:
    """A per-call timeout, or the transport's own when the caller left PTB's default marker."""
    return default if isinstance(value, DefaultValue) else value


class AiohttpRequest(BaseRequest):
    """A BaseRequest over one aiohttp session with a bounded connection pool."""

    def __init__(self, connection_pool_size: int = 128, read_timeout: float | None = 5.0) -> None:
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        """PTB adds this to a long poll's own timeout."""
        return self._read_timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._pool_size, enable_cleanup_closed=True)
            self._session = aiohttp.ClientSession(connector=connector)

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None:
            raise RuntimeError("AiohttpRequest is not initialized")
        files = (
            request_data.multipart_data if request_data is not None and request_data.contains_files else None
        )
        read = _chosen(read_timeout, self._read_timeout)
        write = _chosen(write_timeout, MEDIA_WRITE_TIMEOUT_S if files else WRITE_TIMEOUT_S)
        connect = _chosen(connect_timeout, CONNECT_TIMEOUT_S)
        pool = _chosen(pool_timeout, POOL_TIMEOUT_S)
        # aiohttp has no write timeout of its own: the whole call is bounded by the sum of its phases.
        phases = (pool, connect, write, read)
        timeout = aiohttp.ClientTimeout(
            total=None if None in phases else sum(phases),  # type: ignore[arg-type]
            connect=None if pool is None or connect is None else pool + connect,
            sock_connect=connect,
            sock_read=read,
        )
        try:
            async with self._session.request(
                method, url, data=self._body(request_data, files), timeout=timeout
            ) as response:
                return response.status, await response.read()
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise TimedOut(f"Bot API call timed out ({type(exc).__name__})") from None
        except aiohttp.ClientError as exc:
            # The URL holds the bot token: keep it out of the message (and of any logged traceback).
            reason = str(exc).replace(url, "<Bot API URL>")
            raise NetworkError(f"aiohttp.{type(exc).__name__}: {reason}") from None

    @staticmethod
    def _body(request_data: RequestData | None, files: dict | None) -> Any:
        """Form fields as PTB encodes them (JSON values), multipart when there are files."""
        if request_data is None:
            return None
        fields = request_data.json_parameters
        if not files:
            return fields or None
        form = aiohttp.FormData(quote_fields=False)
        for name, value in fields.items():
            form.add_field(name, value)
        for name, (filename, content, mime_type) in files.items():
            form.add_field(name, content, filename=filename or name, content_type=mime_type)
        return form
