"""A fake Telegram Bot API server on loopback, for driving the real PTB Application end to end.

It keeps chats, messages and an update queue; answers getUpdates with offsets and long polling;
checks what the bot sends the way Telegram does (HTML entities, the 4096/1024 limits, blocked users,
migrated groups, replies) and returns Telegram's real error shapes. Tests inject updates, queue
faults for the next calls of a method, and await the bot's calls.

For reliability runs it also injects random faults (`Chaos`: 429 with retry_after, 5xx, sends that
time out before or after Telegram accepted them, polls dropped mid-wait), reproducibly from a seed,
and can forget its history between rounds (`forget`) so a long run does not grow the server.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import random
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from aiohttp import web

ALLOWED_TAGS = {
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre",
    "tg-spoiler", "span", "blockquote", "tg-emoji",
}  # fmt: skip
SEND_METHODS = {"sendMessage", "sendPhoto"}


@dataclass
class Call:
    """One Bot API request the bot made, and what it got back."""

    method: str
    params: dict[str, Any]
    files: dict[str, bytes]
    status: int
    response: dict[str, Any]
    # Telegram accepted the call but the bot never saw the answer (a timeout after acceptance).
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def chat_id(self) -> int | None:
        value = self.params.get("chat_id")
        return int(value) if value is not None else None

    @property
    def text(self) -> str:
        return str(self.params.get("text") or self.params.get("caption") or "")

    @property
    def thread_id(self) -> int | None:
        value = self.params.get("message_thread_id")
        return int(value) if value is not None else None

    @property
    def reply_to(self) -> int | None:
        reply = self.params.get("reply_parameters")
        return int(reply["message_id"]) if reply else None

    @property
    def buttons(self) -> list[dict]:
        markup = self.params.get("reply_markup") or {}
        return [button for row in markup.get("inline_keyboard", []) for button in row]


@dataclass
class Fault:
    """A canned failure for the next call of a method."""

    status: int
    description: str
    parameters: dict | None = None
    drop_connection: bool = False
    delay_s: float = 0.0  # wait this long first (a getUpdates dropped mid-poll, a slow failure)


@dataclass
class Chaos:
    """Random failures on a share of the calls of `methods`, reproducible from `seed`.

    A timeout holds the call for `timeout_s` (longer than the bot's read timeout) and then drops the
    connection; for a share `accepted_share` of them Telegram has already accepted the message, so the
    user sees it although the bot saw no answer (the case that makes "exactly once" impossible)."""

    seed: int = 0
    flood: float = 0.0
    retry_after: int = 1
    server_error: float = 0.0
    timeout: float = 0.0
    timeout_s: float = 2.0
    accepted_share: float = 0.5
    poll_drop: float = 0.0  # share of getUpdates calls whose connection drops while they wait
    methods: frozenset[str] = frozenset({"sendMessage", "sendPhoto"})


@dataclass
class FakeTelegram:
    token: str
    bot_id: int = 777000
    username: str = "ThisBot"
    host: str = "127.0.0.1"
    calls: list[Call] = field(default_factory=list)
    blocked: set[int] = field(default_factory=set)
    migrated: dict[int, int] = field(default_factory=dict)
    commands: dict[tuple[str, str], list[dict]] = field(default_factory=dict)
    webhook: dict[str, Any] = field(default_factory=dict)
    chaos: Chaos | None = None
    # Forum supergroups and their topics (message_thread_id); a chat not listed has no topics.
    forums: dict[int, set[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._updates: list[dict] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)
        self._messages: dict[tuple[int, int], dict] = {}
        self._faults: dict[str, deque[Fault]] = defaultdict(deque)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.confirmed_offset = 0
        self.port = 0
        self.listeners: list[Callable[[Call], None]] = []  # called with every call as it is recorded
        self.chaos_counts: Counter[str] = Counter()  # injected random faults by kind
        self._random = random.Random(self.chaos.seed if self.chaos else 0)

    # Life cycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        # A killed bot leaves a long poll open: do not wait a minute for it when stopping.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        """Value for TELEGRAM_API_BASE_URL."""
        return f"http://{self.host}:{self.port}/bot"

    @property
    def bot_user(self) -> dict:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "Startup Guide",
            "username": self.username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": True,
        }

    # What tests call ------------------------------------------------------------------------------

    def fail_next(self, method: str, fault: Fault, times: int = 1) -> None:
        """Make the next `times` calls of `method` fail with `fault`."""
        self._faults[method].extend([fault] * times)

    def clear_faults(self, method: str) -> None:
        """Drop the faults still queued for `method` (Telegram is back)."""
        self._faults[method].clear()

    def inject(self, kind: str, payload: dict) -> int:
        """Queue an update of `kind` (message, channel_post, callback_query, ...); returns its id."""
        update_id = next(self._update_ids)
        if kind in {"message", "channel_post"}:
            self._messages[payload["chat"]["id"], payload["message_id"]] = payload
        self._updates.append({"update_id": update_id, kind: payload})
        asyncio.get_running_loop().create_task(self._notify())
        return update_id

    def new_message_id(self) -> int:
        return next(self._message_ids)

    def forget(self) -> None:
        """Drop the recorded calls and messages (between rounds of a long run); updates stay queued."""
        self.calls.clear()
        self._messages.clear()

    @property
    def pending_updates(self) -> int:
        """Updates not yet confirmed by the bot's getUpdates offset."""
        return len(self._updates)

    def calls_of(
        self, method: str | set[str], chat_id: int | None = None, ok: bool | None = None
    ) -> list[Call]:
        methods = {method} if isinstance(method, str) else method
        return [
            call
            for call in self.calls
            if call.method in methods
            and (chat_id is None or call.chat_id == chat_id)
            and (ok is None or call.ok == ok)
        ]

    async def wait_for(
        self, predicate: Callable[[Call], bool], timeout: float = 15.0, count: int = 1
    ) -> list[Call]:
        """The first `count` calls satisfying `predicate`, waiting for them to arrive."""

        def matching() -> list[Call]:
            return [call for call in self.calls if predicate(call)]

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(matching()) >= count), timeout)
            return matching()[:count]

    async def wait_for_reply(
        self, chat_id: int, timeout: float = 15.0, count: int = 1, **kwargs: Any
    ) -> list[Call]:
        """Successful sendMessage/sendPhoto calls to `chat_id`."""
        return await self.wait_for(
            lambda call: call.method in SEND_METHODS and call.chat_id == chat_id and call.ok, timeout, count
        )

    async def wait_until_consumed(self, update_id: int, timeout: float = 15.0) -> None:
        """Until the bot has fetched `update_id` (its next getUpdates offset is past it)."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: self.confirmed_offset > update_id), timeout)

    # The server ----------------------------------------------------------------------------------

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        method = request.match_info["method"]
        params, files = await _read_params(request)
        fault = self._faults[method].popleft() if self._faults[method] else None
        if fault is None and self.chaos is not None:
            fault = self._random_fault(method)
            if fault is not None and fault.description == "accepted, then timed out":
                return await self._accept_then_time_out(request, method, params, files, fault.delay_s)
        if fault is not None and fault.delay_s:
            await asyncio.sleep(fault.delay_s)
        if fault is not None and fault.drop_connection:
            request.transport.close()
            self._record(method, params, files, 599, {"ok": False, "description": "connection dropped"})
            await self._notify()
            raise ConnectionResetError("dropped on purpose")
        if fault is not None:
            status, body = fault.status, _error(fault.status, fault.description, fault.parameters)
        else:
            handler = getattr(self, f"_api_{method}", None)
            if handler is None:
                status, body = 404, _error(404, "Not Found")
            else:
                status, body = await handler(params, files)
        self._record(method, params, files, status, body)
        await self._notify()
        return web.json_response(body, status=status)

    def _random_fault(self, method: str) -> Fault | None:
        chaos = self.chaos
        assert chaos is not None
        draw = self._random.random()
        if method == "getUpdates":
            if draw < chaos.poll_drop:
                self.chaos_counts["poll_dropped"] += 1
                return Fault(0, "poll dropped", drop_connection=True, delay_s=0.05)
            return None
        if method not in chaos.methods:
            return None
        if draw < chaos.flood:
            self.chaos_counts["429"] += 1
            retry = {"retry_after": chaos.retry_after}
            return Fault(429, f"Too Many Requests: retry after {chaos.retry_after}", retry)
        draw -= chaos.flood
        if draw < chaos.server_error:
            self.chaos_counts["5xx"] += 1
            status = self._random.choice([500, 502])
            return Fault(status, "Internal Server Error" if status == 500 else "Bad Gateway")
        draw -= chaos.server_error
        if draw < chaos.timeout:
            if self._random.random() < chaos.accepted_share:
                self.chaos_counts["timeout_after_accept"] += 1
                return Fault(0, "accepted, then timed out", delay_s=chaos.timeout_s)
            self.chaos_counts["timeout"] += 1
            return Fault(0, "timed out", drop_connection=True, delay_s=chaos.timeout_s)
        return None

    async def _accept_then_time_out(
        self, request: web.Request, method: str, params: dict, files: dict, delay_s: float
    ) -> web.StreamResponse:
        """Do the call (the user sees the message), but answer only after the bot stopped waiting."""
        status, body = await getattr(self, f"_api_{method}")(params, files)
        self._record(method, params, files, status, body, timed_out=status == 200)
        await self._notify()
        await asyncio.sleep(delay_s)
        if request.transport is not None:
            request.transport.close()
        raise ConnectionResetError("answered too late on purpose")

    def _record(
        self, method: str, params: dict, files: dict, status: int, body: dict, timed_out: bool = False
    ) -> None:
        call = Call(method, params, files, status, body, timed_out)
        self.calls.append(call)
        for listener in self.listeners:
            listener(call)

    # Bot API methods ------------------------------------------------------------------------------

    async def _api_getMe(self, params: dict, files: dict) -> tuple[int, dict]:
        return 200, {"ok": True, "result": self.bot_user}

    async def _api_getUpdates(self, params: dict, files: dict) -> tuple[int, dict]:
        offset = int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)
        limit = int(params.get("limit") or 100)
        if offset:
            self._updates = [update for update in self._updates if update["update_id"] >= offset]
            self.confirmed_offset = max(self.confirmed_offset, offset)
            await self._notify()

        def pending() -> list[dict]:
            return [update for update in self._updates if update["update_id"] >= offset]

        if not pending() and timeout > 0:
            async with self._changed:
                try:
                    await asyncio.wait_for(self._changed.wait_for(lambda: bool(pending())), timeout)
                except TimeoutError:
                    pass
        return 200, {"ok": True, "result": pending()[:limit]}

    async def _api_deleteWebhook(self, params: dict, files: dict) -> tuple[int, dict]:
        self.webhook = {}
        return 200, {"ok": True, "result": True}

    async def _api_setWebhook(self, params: dict, files: dict) -> tuple[int, dict]:
        self.webhook = dict(params)
        return 200, {"ok": True, "result": True}

    async def _api_getWebhookInfo(self, params: dict, files: dict) -> tuple[int, dict]:
        info = {
            "url": self.webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": 0,
        }
        return 200, {"ok": True, "result": info}

    async def _api_setMyCommands(self, params: dict, files: dict) -> tuple[int, dict]:
        scope = params.get("scope") or {"type": "default"}
        self.commands[json.dumps(scope, sort_keys=True), params.get("language_code") or ""] = params[
            "commands"
        ]
        return 200, {"ok": True, "result": True}

    async def _api_sendChatAction(self, params: dict, files: dict) -> tuple[int, dict]:
        chat_id = int(params["chat_id"])
        error = self._chat_error(chat_id) or self._check_thread(chat_id, params)
        return error or (200, {"ok": True, "result": True})

    async def _api_answerCallbackQuery(self, params: dict, files: dict) -> tuple[int, dict]:
        return 200, {"ok": True, "result": True}

    async def _api_answerInlineQuery(self, params: dict, files: dict) -> tuple[int, dict]:
        results = params.get("results") or []
        ids = [str(result.get("id", "")) for result in results]
        if len(results) > 50 or len(set(ids)) != len(ids) or not all(1 <= len(i.encode()) <= 64 for i in ids):
            return 400, _error(400, "Bad Request: RESULT_ID_INVALID")
        for result in results:
            content = result.get("input_message_content") or {}
            if result.get("type") != "article" or not str(result.get("title", "")).strip():
                return 400, _error(400, "Bad Request: RESULT_TITLE_EMPTY")
            error = self._check_text(
                {"text": content.get("message_text", ""), "parse_mode": content.get("parse_mode")},
                "text",
                4096,
                "MESSAGE_TOO_LONG",
            )
            if error:
                return error
        return 200, {"ok": True, "result": True}

    async def _api_sendMessage(self, params: dict, files: dict) -> tuple[int, dict]:
        chat_id = int(params["chat_id"])
        error = self._chat_error(chat_id) or self._check_text(params, "text", 4096, "message is too long")
        error = error or self._check_reply(chat_id, params) or self._check_thread(chat_id, params)
        if error:
            return error
        return 200, {"ok": True, "result": self._store_sent(chat_id, params, text=params["text"])}

    async def _api_sendPhoto(self, params: dict, files: dict) -> tuple[int, dict]:
        chat_id = int(params["chat_id"])
        error = self._chat_error(chat_id) or self._check_reply(chat_id, params)
        error = error or self._check_thread(chat_id, params)
        if "caption" in params:
            error = error or self._check_text(params, "caption", 1024, "message caption is too long")
        if error:
            return error
        photo = files.get("photo")
        if not photo or not photo.startswith(b"\x89PNG"):
            return 400, _error(400, "Bad Request: IMAGE_PROCESS_FAILED")
        sizes = [
            {
                "file_id": f"photo{len(self.calls)}",
                "file_unique_id": f"u{len(self.calls)}",
                "width": 28,
                "height": 28,
            }
        ]
        result = self._store_sent(chat_id, params, photo=sizes, caption=params.get("caption", ""))
        return 200, {"ok": True, "result": result}

    async def _api_editMessageText(self, params: dict, files: dict) -> tuple[int, dict]:
        message = self._messages.get((int(params["chat_id"]), int(params["message_id"])))
        if message is None:
            return 400, _error(400, "Bad Request: message to edit not found")
        error = self._check_text(params, "text", 4096, "message is too long")
        if error:
            return error
        if message.get("text") == params["text"] and not params.get("reply_markup"):
            return 400, _error(400, "Bad Request: message is not modified")
        message["text"] = params["text"]
        return 200, {"ok": True, "result": message}

    async def _api_editMessageReplyMarkup(self, params: dict, files: dict) -> tuple[int, dict]:
        message = self._messages.get((int(params["chat_id"]), int(params["message_id"])))
        if message is None:
            return 400, _error(400, "Bad Request: message to edit not found")
        markup = params.get("reply_markup")
        if markup == message.get("reply_markup"):
            return 400, _error(400, "Bad Request: message is not modified")
        message["reply_markup"] = markup
        return 200, {"ok": True, "result": message}

    # Telegram's checks ---------------------------------------------------------------------------

    def _chat_error(self, chat_id: int) -> tuple[int, dict] | None:
        if chat_id in self.blocked:
            return 403, _error(403, "Forbidden: bot was blocked by the user")
        if chat_id in self.migrated:
            return 400, _error(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": self.migrated[chat_id]},
            )
        return None

    def _check_text(self, params: dict, name: str, limit: int, too_long: str) -> tuple[int, dict] | None:
        value = str(params.get(name, ""))
        visible = value
        if params.get("parse_mode") == "HTML":
            problem, visible = parse_telegram_html(value)
            if problem:
                return 400, _error(400, f"Bad Request: can't parse entities: {problem}")
        if name == "text" and not visible.strip():
            return 400, _error(400, "Bad Request: message text is empty")
        if len(visible) > limit:
            return 400, _error(400, f"Bad Request: {too_long}")
        return None

    def _check_reply(self, chat_id: int, params: dict) -> tuple[int, dict] | None:
        reply = params.get("reply_parameters")
        if not reply:
            return None
        if (chat_id, int(reply["message_id"])) in self._messages or reply.get("allow_sending_without_reply"):
            return None
        return 400, _error(400, "Bad Request: message to be replied not found")

    def _check_thread(self, chat_id: int, params: dict) -> tuple[int, dict] | None:
        thread = params.get("message_thread_id")
        if thread is None or int(thread) in self.forums.get(chat_id, set()):
            return None
        return 400, _error(400, "Bad Request: message thread not found")

    def _store_sent(self, chat_id: int, params: dict, **content: Any) -> dict:
        chat_type = (
            "private" if chat_id > 0 else ("supergroup" if str(chat_id).startswith("-100") else "group")
        )
        message = {
            "message_id": self.new_message_id(),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": chat_type},
            "from": self.bot_user,
            **content,
        }
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        if params.get("message_thread_id") is not None:
            message.update(message_thread_id=int(params["message_thread_id"]), is_topic_message=True)
        if chat_id in self.forums:
            message["chat"]["is_forum"] = True
        self._messages[chat_id, message["message_id"]] = message
        return message


def _error(code: int, description: str, parameters: dict | None = None) -> dict:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return body


async def _read_params(request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Form or multipart fields; PTB JSON-encodes non-scalar values, so decode those back."""
    params: dict[str, Any] = {}
    files: dict[str, bytes] = {}
    if request.content_type == "application/json":
        return await request.json(), files
    form = await request.post()
    for name, value in form.items():
        if isinstance(value, web.FileField):
            files[name] = value.file.read()
            continue
        params[name] = _decode(value)
    return params, files


def _decode(value: str) -> Any:
    if value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


class _TelegramHTML(HTMLParser):
    """Telegram's HTML rules: known tags only, properly nested, text escaped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack: list[str] = []
        self.text: list[str] = []
        self.problem: str | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag not in ALLOWED_TAGS:
            self.problem = self.problem or f'Unsupported start tag "{tag}" at byte offset {self.getpos()[1]}'
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problem = self.problem or f"Unexpected end tag at byte offset {self.getpos()[1]}"
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if "<" in data or ">" in data:
            self.problem = self.problem or "Unexpected character"
        if "&" in data:
            self.problem = self.problem or "Unescaped ampersand"
        self.text.append(data)

    def handle_entityref(self, name: str) -> None:
        if name not in {"lt", "gt", "amp", "quot"}:
            self.problem = self.problem or f'Unsupported HTML entity "&{name};"'
        self.text.append(html.unescape(f"&{name};"))

    def handle_charref(self, name: str) -> None:
        self.text.append(html.unescape(f"&#{name};"))


def parse_telegram_html(value: str) -> tuple[str | None, str]:
    """(problem or None, visible text)."""
    parser = _TelegramHTML()
    parser.feed(value)
    parser.close()
    if parser.rawdata:  # an unterminated "<..." left over
        parser.problem = parser.problem or "Unclosed start tag"
    if parser.stack and not parser.problem:
        parser.problem = f'Can\'t find end tag corresponding to start tag "{parser.stack[-1]}"'
    return parser.problem, "".join(parser.text)
