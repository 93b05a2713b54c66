"""User-facing strings in English and Chinese."""

from __future__ import annotations

from knowledge.api import Lang

TEXTS: dict[str, dict[Lang, str]] = {
    "start": {
        "en": (
            "Hi {name}! I answer questions about building a startup on large AI models, "
            "citing the articles I know, and I can draw digits (/image) or write text (/text).\n\n"
            "Just send me a question, or try /help."
        ),
        "zh": (
            "你好 {name}！我可以回答关于基于大模型创业的问题，并注明出处；"
            "也可以画数字（/image）或生成文字（/text）。\n\n直接发问题给我，或者试试 /help。"
        ),
    },
    "help": {
        "en": (
            "<b>Commands</b>\n"
            "/ask &lt;question&gt; — ask a question, e.g. <code>/ask How do I price an AI product?</code>\n"
            "/image [digit] [count] [gan|vae] — draw digits, e.g. <code>/image 7 4</code>, <code>/image 7 vae</code>\n"
            "/text [prompt] — continue a text, e.g. <code>/text Our startup</code>\n"
            "/about — model versions and knowledge base size\n"
            "/privacy — what I store and for how long; /forget — delete what I stored about you\n"
            "/help — this message\n\n"
            "In a private chat just write: a question, <i>draw me a 7</i>, <i>write a slogan about teamwork</i>. "
            "In groups, mention me, reply to me or use /ask."
        ),
        "zh": (
            "<b>命令</b>\n"
            "/ask &lt;问题&gt; — 提问，例如 <code>/ask 如何给 AI 产品定价？</code>\n"
            "/image [数字] [数量] [gan|vae] — 画数字，例如 <code>/image 7 4</code>、<code>/image 7 vae</code>\n"
            "/text [开头] — 续写文字，例如 <code>/text Our startup</code>\n"
            "/about — 模型版本和知识库规模\n"
            "/privacy — 我保存哪些数据、保存多久；/forget — 删除我保存的关于你的数据\n"
            "/help — 显示本帮助\n\n"
            "私聊时直接写：一个问题、<i>画一个7</i>、<i>写一段关于团队合作的话</i>。"
            "群组中请 @我、回复我的消息或使用 /ask。"
        ),
    },
    "about": {
        "en": (
            "<b>Knowledge base</b>: {documents} articles, {sections} sections, {faq_entries} FAQ entries "
            "(corpus {fingerprint}, encoder {encoder}, built {built_at})\n"
            "<b>Image models</b>: GAN {gan}, VAE {vae}\n<b>Text models</b>: word LSTM {word}, char LSTM {lstm}"
        ),
        "zh": (
            "<b>知识库</b>：{documents} 篇文章，{sections} 个章节，{faq_entries} 条 FAQ"
            "（语料 {fingerprint}，编码器 {encoder}，构建于 {built_at}）\n"
            "<b>图像模型</b>：GAN {gan}，VAE {vae}\n<b>文本模型</b>：词级 LSTM {word}，字符级 LSTM {lstm}"
        ),
    },
    "no_model": {"en": "not loaded", "zh": "未加载"},
    "share": {"en": "↗️ Share", "zh": "↗️ 分享"},
    "open_in_bot": {"en": "Open in the bot", "zh": "在机器人中查看"},
    "inline_declined": {"en": "Not in my knowledge base", "zh": "知识库里没有这个问题的答案"},
    "inline_answer": {"en": "Answer", "zh": "回答"},
    "inline_rate_limited": {
        "en": "Too many questions: try again in {seconds} s",
        "zh": "提问太频繁，请 {seconds} 秒后再试",
    },
    "link_invalid": {
        "en": "That link does not lead to anything I know (any more). Ask me instead!",
        "zh": "这个链接没有对应的内容（可能已失效）。直接问我吧！",
    },
    # Privacy ---------------------------------------------------------------------------------------
    "privacy": {
        "en": (
            "<b>What I store, and why</b>\n"
            "• Your questions, the sources I showed and your 👍/👎 votes: for “More sources”, and so the "
            "team sees which questions the articles do not answer.\n"
            "• One row per request (kind, outcome, language, your id): for usage statistics and rate limits.\n"
            "• Incoming messages and replies not yet delivered: only until they are handled, so nothing is "
            "lost if I restart.\n"
            "Nothing is shared with anyone. Rows older than {days} days are deleted every day.\n"
            "/forget deletes your questions and your id from all of it at once (counts stay, anonymous)."
        ),
        "zh": (
            "<b>我保存什么、为什么</b>\n"
            "• 你的问题、我给出的来源和你的 👍/👎 评价：用于“更多来源”，也让团队知道哪些问题文章没有覆盖。\n"
            "• 每次请求一行记录（类型、结果、语言、你的 ID）：用于使用统计和频率限制。\n"
            "• 收到的消息和尚未送达的回复：只保留到处理完毕，保证重启时不丢失。\n"
            "数据不与任何人共享。超过 {days} 天的记录每天删除。\n"
            "/forget 会一次删除你的问题和你在所有记录中的 ID（计数保留，但已匿名）。"
        ),
    },
    "forget_confirm": {
        "en": "Delete everything I stored about you (questions, votes, usage rows)? This cannot be undone.",
        "zh": "删除我保存的关于你的所有数据（问题、评价、使用记录）？此操作无法撤销。",
    },
    "forget_yes": {"en": "Delete my data", "zh": "删除我的数据"},
    "forget_no": {"en": "Cancel", "zh": "取消"},
    "forget_done": {
        "en": (
            "Done. Deleted {questions} question(s), made {votes} vote(s) and {usage} usage row(s) anonymous, "
            "removed {messages} journalled message(s) and {replies} queued reply(ies)."
        ),
        "zh": "已完成：删除 {questions} 个问题，{votes} 条评价和 {usage} 条使用记录已匿名化，"
        "移除 {messages} 条日志消息和 {replies} 条待发回复。",
    },
    "forget_nothing": {"en": "I have nothing stored about you.", "zh": "我没有保存任何关于你的数据。"},
    "forget_cancelled": {"en": "Cancelled: nothing was deleted.", "zh": "已取消，未删除任何数据。"},
    "forget_not_yours": {
        "en": "Only the person who sent /forget can press this.",
        "zh": "只有发送 /forget 的人可以点击。",
    },
    "smalltalk": {
        "en": "Hi! I answer questions about founding a company on large AI models, draw digits and write "
        "short texts. Try /help to see how.",
        "zh": "你好！我可以回答基于大模型创业的问题，也会画数字、写短文。试试 /help 看看怎么用。",
    },
    "offtopic": {
        "en": "Sorry, I don't have an answer to that in my knowledge base. I can help with building a "
        "startup on large AI models: models and training, products and users, funding, teams, data and "
        "privacy. I can also draw digits (/image) and write short texts (/text).",
        "zh": "抱歉，我的知识库里没有这个问题的答案。我可以回答基于大模型创业的问题：模型与训练、产品与用户、融资、"
        "团队、数据与隐私；也可以画数字（/image）和写短文（/text）。",
    },
    # Said under the small-talk reply to a message the knowledge base would likely answer ("VGG").
    "leaning_question": {
        "en": "If that was a question for my sources, send /ask {command}",
        "zh": "如果这是想问资料的问题，请发送 /ask {command}",
    },
    # Said under the answer to a message that looked more like a picture or text request than a question.
    "leaning_image": {
        "en": "Did you want a picture? Send /image {command}",
        "zh": "是想要一张图吗？发送 /image {command}",
    },
    "leaning_image_any": {
        "en": "Did you want a picture? Send /image [digit 0-9] [count 1-{max_images}]",
        "zh": "是想要一张图吗？发送 /image [数字 0-9] [数量 1-{max_images}]",
    },
    "leaning_text": {
        "en": "Did you want me to write it? Send /text {command}",
        "zh": "是想让我来写吗？发送 /text {command}",
    },
    "leaning_text_any": {
        "en": "Did you want me to write it? Send /text [topic]",
        "zh": "是想让我来写吗？发送 /text [主题]",
    },
    "image_which_digit": {
        "en": 'Which digit shall I draw? Say e.g. "draw three 7s", or use /image [digit 0-9] [count 1-{max_images}].',
        "zh": "要画哪个数字？比如说“画三个7”，或者用 /image [数字 0-9] [数量 1-{max_images}]。",
    },
    "ask_usage": {
        "en": "Ask me something, e.g. /ask How do I find my first customers?",
        "zh": "请提一个问题，例如 /ask 如何找到第一批客户？",
    },
    "sources": {"en": "Sources", "zh": "来源"},
    "suggestions": {"en": "You could ask instead:", "zh": "你可以试着问："},
    "more_sources": {"en": "More sources", "zh": "更多来源"},
    "no_more_sources": {"en": "No more sources.", "zh": "没有更多来源了。"},
    "helpful": {"en": "👍 Helpful", "zh": "👍 有帮助"},
    "not_helpful": {"en": "👎 Not helpful", "zh": "👎 没帮助"},
    "feedback_thanks": {"en": "Thanks for the feedback!", "zh": "感谢反馈！"},
    "answer_gone": {"en": "That answer is no longer available.", "zh": "这个回答已不可用。"},
    "image_usage": {
        "en": "Usage: /image [digit 0-9] [count 1-{max_images}] [gan|vae], e.g. /image 7 4 or /image 7 vae",
        "zh": "用法：/image [数字 0-9] [数量 1-{max_images}] [gan|vae]，例如 /image 7 4 或 /image 7 vae",
    },
    "text_usage": {
        "en": "Usage: /text [prompt of at most {max_chars} characters], e.g. /text Our startup",
        "zh": "用法：/text [不超过 {max_chars} 个字符的开头]，例如 /text Our startup",
    },
    "image_caption": {
        "en": "{what} · {model} model {model_version} · seed {seed}",
        "zh": "{what} · {model} 模型 {model_version} · 种子 {seed}",
    },
    "digits_mixed": {"en": "{count} mixed digits", "zh": "{count} 个混合数字"},
    "digits_one": {"en": "{count} × digit {digit}", "zh": "{count} 个数字 {digit}"},
    "text_footer": {
        "en": "{model} model {model_version} · seed {seed}",
        "zh": "{model} 模型 {model_version} · 种子 {seed}",
    },
    "generator_training": {
        "en": "This generator is being trained right now (job {job_id}, about {minutes} min left). Please try again then.",
        "zh": "该生成模型正在训练中（任务 {job_id}，约剩 {minutes} 分钟），请稍后再试。",
    },
    "generator_queued": {
        "en": "This generator gets its first training right after the one running now (a few minutes each). Please try again later.",
        "zh": "该生成模型将在当前训练完成后开始首次训练（每个约几分钟），请稍后再试。",
    },
    "generators_unavailable": {
        "en": "The generators are not available right now. Please try again later.",
        "zh": "生成模型暂时不可用，请稍后再试。",
    },
    "rate_limited": {
        "en": "You're going a bit fast. Please try again in {seconds} s.",
        "zh": "请求太频繁了，请 {seconds} 秒后再试。",
    },
    "error": {
        "en": "Sorry, something went wrong. Please try again.",
        "zh": "抱歉，出了点问题，请再试一次。",
    },
    "unknown_command": {
        "en": "I don't know that command. /help lists what I can do.",
        "zh": "我不认识这个命令。/help 会列出我能做的事。",
    },
    "admins_only": {"en": "Sorry, admins only.", "zh": "抱歉，仅限管理员。"},
    # Admin commands ----------------------------------------------------------------------------
    "retrain_usage": {
        "en": (
            "Usage: /retrain gan|vae|lstm|word|intent|all [epochs=N] [steps=N] [seed=N] — retrain in the background\n"
            "/retrain cancel &lt;job id&gt; — stop a running job\nRunning: {running}"
        ),
        "zh": (
            "用法：/retrain gan|vae|lstm|word|intent|all [epochs=N] [steps=N] [seed=N] — 在后台重新训练\n"
            "/retrain cancel &lt;任务编号&gt; — 停止运行中的任务\n运行中：{running}"
        ),
    },
    "none": {"en": "none", "zh": "无"},
    "retrain_started": {
        "en": "Job <code>{job_id}</code> started: retraining {kind}{options}. Cancel: /retrain cancel {job_id}",
        "zh": "任务 <code>{job_id}</code> 已开始：重新训练 {kind}{options}。取消：/retrain cancel {job_id}",
    },
    "retrain_running": {
        "en": "{kind} is already being retrained by job <code>{job_id}</code> (/retrain cancel {job_id}).",
        "zh": "{kind} 正在由任务 <code>{job_id}</code> 训练中（/retrain cancel {job_id}）。",
    },
    "job_progress": {
        "en": "⏳ Job <code>{job_id}</code> ({kind}): {phase} step {step}/{total} · loss {loss} · ETA {eta} s",
        "zh": "⏳ 任务 <code>{job_id}</code>（{kind}）：{phase} 第 {step}/{total} 步 · 损失 {loss} · 预计还需 {eta} 秒",
    },
    "job_starting": {
        "en": "⏳ Job <code>{job_id}</code> ({kind}): starting the trainer…",
        "zh": "⏳ 任务 <code>{job_id}</code>（{kind}）：正在启动训练程序…",
    },
    "job_over": {
        "en": "Job <code>{job_id}</code> ({kind}): {status} after {seconds} s.",
        "zh": "任务 <code>{job_id}</code>（{kind}）：{status}，用时 {seconds} 秒。",
    },
    "status_succeeded": {"en": "finished", "zh": "已完成"},
    "status_failed": {"en": "failed", "zh": "失败"},
    "status_cancelled": {"en": "cancelled", "zh": "已取消"},
    "job_report": {
        "en": "<b>Job {job_id} ({kind}) finished in {seconds} s</b>",
        "zh": "<b>任务 {job_id}（{kind}）完成，用时 {seconds} 秒</b>",
    },
    "job_promoted": {
        "en": "✅ Promoted ({reason}); now serving {version}.",
        "zh": "✅ 已上线（{reason}）；当前服务版本 {version}。",
    },
    "job_not_promoted": {
        "en": "❌ Not promoted ({reason}); {champion} keeps serving.",
        "zh": "❌ 未上线（{reason}）；继续使用 {champion}。",
    },
    "job_candidate": {"en": "Candidate {version}: {metrics}", "zh": "候选 {version}：{metrics}"},
    "job_champion": {"en": "Champion {version}: {metrics}", "zh": "当前冠军 {version}：{metrics}"},
    "job_warning": {"en": "⚠️ {warning}", "zh": "⚠️ {warning}"},
    "job_no_champion": {"en": "Champion: none yet", "zh": "当前冠军：暂无"},
    "job_swap_failed": {
        "en": "⚠️ The new champion could not be loaded into the running bot: {error}",
        "zh": "⚠️ 新模型未能加载到运行中的机器人：{error}",
    },
    "job_sample": {"en": "Sample from {version} (seed {seed})", "zh": "{version} 的样例（种子 {seed}）"},
    "job_failed": {
        "en": "Job <code>{job_id}</code> ({kind}) failed: {error}. The champion is unchanged.",
        "zh": "任务 <code>{job_id}</code>（{kind}）失败：{error}。当前冠军模型未变。",
    },
    "job_cancelled": {
        "en": "Job <code>{job_id}</code> ({kind}) cancelled. The champion is unchanged.",
        "zh": "任务 <code>{job_id}</code>（{kind}）已取消。当前冠军模型未变。",
    },
    "job_finished_first": {
        "en": "Job <code>{job_id}</code> finished before it could be cancelled; its report follows.",
        "zh": "任务 <code>{job_id}</code> 在取消前已完成；报告随后发送。",
    },
    "job_cancel_failed": {
        "en": "Could not cancel <code>{job_id}</code>: {error}. It may still be running; try again.",
        "zh": "无法取消 <code>{job_id}</code>：{error}。它可能仍在运行，请重试。",
    },
    "job_unknown": {
        "en": "No running job <code>{job_id}</code>. Running: {running}",
        "zh": "没有运行中的任务 <code>{job_id}</code>。运行中：{running}",
    },
    "reindex_done": {
        "en": "Index rebuilt in {seconds} s: {documents} articles, {sections} sections, {faq_entries} FAQ entries.",
        "zh": "索引已重建，用时 {seconds} 秒：{documents} 篇文章，{sections} 个章节，{faq_entries} 条 FAQ。",
    },
    "reindex_failed": {
        "en": "Rebuilding the index failed: {error}. The previous index keeps serving.",
        "zh": "重建索引失败：{error}。继续使用之前的索引。",
    },
    "rollback_usage": {
        "en": "Usage: /rollback gan|vae|lstm|word [version] — without a version, the previous champion",
        "zh": "用法：/rollback gan|vae|lstm|word [版本] — 不指定版本则恢复上一个冠军",
    },
    "rollback_done": {
        "en": "Rolled back {kind}: {version} is the champion again and serving.",
        "zh": "{kind} 已回滚：{version} 重新成为冠军并在服务中。",
    },
    "rollback_failed": {
        "en": "Rollback refused: {error}. Nothing changed.",
        "zh": "回滚被拒绝：{error}。未做任何更改。",
    },
    "models_title": {"en": "<b>Models</b>", "zh": "<b>模型</b>"},
    "models_serving": {"en": "serving {version}", "zh": "服务中 {version}"},
    "models_intent": {
        "en": "<b>intent</b> (message routing): serving {version}",
        "zh": "<b>intent</b>（消息分类）：服务中 {version}",
    },
    "job_routing": {
        "en": "How {version} now reads a few messages:",
        "zh": "{version} 现在这样理解几条消息：",
    },
    "stats_title": {"en": "<b>Last 7 days</b>", "zh": "<b>最近 7 天</b>"},
    "stats_chart": {
        "en": "Requests per day and the share of helpful votes",
        "zh": "每日请求数与“有帮助”评价占比",
    },
    "job_loss": {"en": "Loss curve of job {job_id}", "zh": "任务 {job_id} 的损失曲线"},
    "stats_totals": {
        "en": (
            "Questions answered: {answered}\nQuestions declined: {declined}\n"
            "Images: {images} · Texts: {texts}\nFeedback: {helpful} helpful, {unhelpful} not helpful{ratio}"
        ),
        "zh": (
            "已回答问题：{answered}\n未能回答：{declined}\n"
            "图片：{images} · 文本：{texts}\n反馈：{helpful} 有帮助，{unhelpful} 没帮助{ratio}"
        ),
    },
    "stats_per_day": {
        "en": "<b>Per day</b> (answered/declined · images/texts · 👍/👎)",
        "zh": "<b>每日</b>（已答/未答 · 图片/文本 · 👍/👎）",
    },
    "stats_unanswered": {"en": "<b>Top unanswered</b>", "zh": "<b>未能回答的热门问题</b>"},
    "stats_ignored": {
        "en": "Ignored: {blocked} from blocked users, {not_allowed} from outside the allow-lists",
        "zh": "已忽略：被封禁用户 {blocked} 次，不在允许名单中 {not_allowed} 次",
    },
    "block_usage": {
        "en": "Usage: /block &lt;user id&gt;, or reply /block to their message (/unblock the same way).",
        "zh": "用法：/block &lt;用户 ID&gt;，或回复对方的消息发送 /block（/unblock 同理）。",
    },
    "block_admin": {"en": "Admins cannot be blocked.", "zh": "不能封禁管理员。"},
    "block_unknown": {
        "en": "I have never seen user {user_id}; nothing was blocked.",
        "zh": "我从未见过用户 {user_id}，未封禁任何人。",
    },
    "blocked_user": {
        "en": "Blocked user {user_id}: they get no replies and cost no model work.",
        "zh": "已封禁用户 {user_id}：不再回复，也不会占用模型。",
    },
    "block_already": {"en": "User {user_id} was already blocked.", "zh": "用户 {user_id} 已被封禁。"},
    "unblocked_user": {"en": "Unblocked user {user_id}.", "zh": "已解除封禁用户 {user_id}。"},
    "unblock_not_blocked": {"en": "User {user_id} is not blocked.", "zh": "用户 {user_id} 未被封禁。"},
}

COMMANDS: dict[str, dict[Lang, str]] = {
    "ask": {"en": "Ask a question", "zh": "提问"},
    "image": {
        "en": "Draw digits: /image [digit] [count] [gan|vae]",
        "zh": "画数字：/image [数字] [数量] [gan|vae]",
    },
    "text": {"en": "Generate text: /text [prompt]", "zh": "生成文字：/text [开头]"},
    "about": {"en": "Model versions and knowledge base size", "zh": "模型版本和知识库规模"},
    "privacy": {"en": "What I store and for how long", "zh": "我保存哪些数据、保存多久"},
    "forget": {"en": "Delete what I stored about you", "zh": "删除我保存的关于你的数据"},
    "help": {"en": "Commands and examples", "zh": "命令和示例"},
    "start": {"en": "Welcome", "zh": "欢迎"},
}

ADMIN_COMMANDS: dict[str, dict[Lang, str]] = {
    "stats": {"en": "Usage statistics", "zh": "使用统计"},
    "models": {"en": "Model versions", "zh": "模型版本"},
    "reindex": {"en": "Rebuild the knowledge index", "zh": "重建知识索引"},
    "retrain": {
        "en": "Retrain a model: /retrain gan|vae|lstm|word|intent|all",
        "zh": "重新训练模型：/retrain gan|vae|lstm|word|intent|all",
    },
    "block": {"en": "Ignore a user: /block ID (or reply)", "zh": "封禁用户：/block ID（或回复）"},
    "unblock": {"en": "Stop ignoring a user: /unblock ID", "zh": "解除封禁：/unblock ID"},
    "rollback": {
        "en": "Restore an earlier model: /rollback gan|vae|lstm|word [version]",
        "zh": "恢复旧版模型：/rollback gan|vae|lstm|word [版本]",
    },
}


def text(key: str, lang: Lang, **values: object) -> str:
    """The string `key` in `lang`, formatted with `values` (callers escape HTML values themselves)."""
    template = TEXTS[key][lang]
    return template.format(**values) if values else template
