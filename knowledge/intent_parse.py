"""What a routed request asks for: the digit and count of a picture request, the topic of a text request.

Both read English, Chinese and mixed script, numbers as numerals or words ("three", "3", "三", "两个").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_IMAGE_COUNT = 8
MAX_IMAGE_COUNT = 16

ENGLISH_NUMBERS = {
    "zero": 0, "oh": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "twenty": 20, "dozen": 12, "couple": 2, "pair": 2, "single": 1,
}  # fmt: skip
ENGLISH_PLURALS = {"zeros": 0, "zeroes": 0, "ones": 1, "twos": 2, "threes": 3, "fours": 4, "fives": 5,
                   "sixes": 6, "sevens": 7, "eights": 8, "nines": 9}  # fmt: skip
# "oh" reads as zero only after "digit"/"number"; elsewhere it is an interjection.
CONTEXT_ONLY = {"oh"}
CHINESE_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "俩": 2, "三": 3, "四": 4, "五": 5,
                  "六": 6, "七": 7, "八": 8, "九": 9}  # fmt: skip
CHINESE_MEASURES = frozenset("个張张只幅副枚份")
ARTICLES = {"a", "an", "another"}
DIGIT_NAMES = {"digit", "number", "数字", "numeral"}
VAGUE = {"few", "some", "several", "几", "些", "many", "多"}

TOKEN = re.compile(
    r"\d+(?:'?s\b)?|[a-z]+|[零〇一二两俩三四五六七八九十]+|["
    + "".join(sorted(CHINESE_MEASURES))
    + r"]|数字|[几些多]"
)
# Words in which a Chinese numeral is no number ("一下" is "a bit", "一点" is "a little").
CHINESE_IDIOMS = re.compile(r"一下|一点|一些|一起|一定|一直|一般|一首|一段|一句|十分|万一")


@dataclass(frozen=True)
class _Token:
    text: str
    value: int | None = None  # the number it names, if any
    plural: bool = False  # "fives", "9s": a digit named as a kind


def _chinese_number(text: str) -> int | None:
    """ "三" -> 3, "十二" -> 12, "二十" -> 20; None for anything else."""
    if "十" not in text:
        return CHINESE_DIGITS[text] if len(text) == 1 else None
    tens, _, ones = text.partition("十")
    if len(tens) > 1 or len(ones) > 1:
        return None
    return (CHINESE_DIGITS[tens] if tens else 1) * 10 + (CHINESE_DIGITS[ones] if ones else 0)


def _tokens(text: str) -> list[_Token]:
    tokens = []
    for word in TOKEN.findall(CHINESE_IDIOMS.sub(" ", text.lower())):
        if word[0].isdigit():
            digits = word.rstrip("'s")
            tokens.append(_Token(word, int(digits), plural=digits != word))
        elif word in ENGLISH_PLURALS:
            tokens.append(_Token(word, ENGLISH_PLURALS[word], plural=True))
        elif word in ENGLISH_NUMBERS:
            tokens.append(_Token(word, ENGLISH_NUMBERS[word]))
        elif word[0] in "零〇一二两俩三四五六七八九十":
            tokens.append(_Token(word, _chinese_number(word)))
        else:
            tokens.append(_Token(word))
    return tokens


def parse_image_request(text: str) -> tuple[int | None, int]:
    """A picture request -> (the digit asked for or None, how many pictures, 1..16)."""
    tokens = _tokens(text)
    digit: int | None = None
    count: int | None = None
    loose: list[int] = []  # positions of numbers not yet read as count or digit
    implied_one = False
    for n, token in enumerate(tokens):
        before = tokens[n - 1].text if n else ""
        after = tokens[n + 1].text if n + 1 < len(tokens) else ""
        if token.text in CHINESE_MEASURES and (not n or tokens[n - 1].value is None):
            implied_one = implied_one or before not in VAGUE  # "画个7": one; "几个": unsaid
        if token.value is None or (token.text in CONTEXT_ONLY and before not in DIGIT_NAMES):
            if token.text in ARTICLES and after not in VAGUE:
                implied_one = True
            continue
        if token.plural and token.value <= 9:
            digit = token.value
            counted = [m for m in loose if n - m <= 3]
            if counted:
                count = tokens[counted[-1]].value
                loose.remove(counted[-1])
        elif after in CHINESE_MEASURES or token.text in {"俩", "两", "couple", "pair", "dozen"}:
            count = token.value
        elif before in DIGIT_NAMES and token.value <= 9:
            digit = token.value
        else:
            loose.append(n)
    values = [tokens[m].value for m in loose]
    if digit is None and values:
        last = values[-1]
        if last <= 9:
            digit = last
            values = values[:-1]
    if count is None and values:
        count = values[0]
    if count is None:
        count = 1 if implied_one else DEFAULT_IMAGE_COUNT
    return digit, max(1, min(MAX_IMAGE_COUNT, count))


QUOTED = re.compile(r"[\"“'‘「『](.+?)[\"”'’」』]")
CONTINUATION = re.compile(r"(?:[:：]|->|→)\s*(.+)$")
CHINESE_SUBJECT = re.compile(r"(?:主题|题目|话题)(?:是|为|[:：])\s*(.+)$")
CHINESE_ABOUT = re.compile(r"关于\s*(.+?)\s*(?:的(?:[一-龥]{0,4})?)?$")
CHINESE_ABOUT_INNER = re.compile(r"关于\s*(.+?)\s*的")
ENGLISH_ABOUT = re.compile(
    r"\b(?:about|regarding|describing|starting with|on the topic of)\s+(.+?)(?:[,.!?;，。！？]|$)",
    re.IGNORECASE,
)
ENGLISH_ON = re.compile(r"\b(?:on|for)\s+(?!me\b|us\b)(.+?)(?:[,.!?;，。！？]|$)", re.IGNORECASE)
MIXED_ABOUT = re.compile(r"about\s+(.+?)\s*的")
# Trailing asks that are style, not topic ("in a fun tone", "like 3 sentences").
STYLE_TAIL = re.compile(
    r"\s*(?:,|，)?\s*(?:in a [\w ]+ tone|like \d+ sentences|please|pls|plz|thanks|for me|要通俗有趣)\s*$",
    re.IGNORECASE,
)


# A request with none of the markers above: what follows its opening ("can you write a short tweet
# announcing", "帮我写一封") is the topic, up to the first clause break ("our seed round? we raised").
REQUEST_OPENING_EN = re.compile(
    r"^(?:(?:hey|hi|ok|okay|so|bot|please|pls|plz|kindly|quick|can you|could you|would you|can u|"
    r"could u|i need|we need|need|i want|help me|i'd like you to)\W+)*"
    r"(?:write|pen|draft|compose|generate|create|craft|produce|type|give me|come up with|whip up)"
    r"(?:\s+(?:me|us|up))?"
    r"(?:\s+(?:a|an|the|some|one|two|three|\d+|my|our))?"
    r"(?:\s+(?:short|quick|brief|little|long|funny|catchy|fun|cute|simple|polite|formal|casual|humble|"
    r"cheesy|cold|warm|nice|good|new|small))*"
    r"(?:\s+(?:blog post|press release|stor(?:y|ies)|tweets?|poems?|haikus?|limericks?|paragraphs?|posts?|"
    r"e-?mails?|letters?|notes?|bios?|pitch(?:es)?|speech(?:es)?|slogans?|taglines?|descriptions?|"
    r"summar(?:y|ies)|reviews?|essays?|articles?|copy|ads?|messages?|announcements?|intros?|"
    r"introductions?|statements?|captions?|text|sentences?|lines?|jokes?|songs?|lyrics|toasts?|"
    r"scripts?|tales?|fables?|rhymes?|threads?|repl(?:y|ies)))?"
    r"(?:\s+(?:where|in which|that|which|announcing|introducing|explaining|describing|celebrating|"
    r"thanking|welcoming|inviting|telling|saying|to|for|of|with|on))?\s+",
    re.IGNORECASE,
)
REQUEST_OPENING_ZH = re.compile(
    r"^(?:请|麻烦|能不能|能否|可以|帮我|帮忙|帮|给我|替我|你|再)*"
    r"(?:写|编|起草|生成|创作|拟|来)(?:一下)?(?:一?[段封首条篇个份句则]|几[句段条个首])?(?:话|文字)?"
)
CLAUSE_BREAK = re.compile(r"[,.!?;，。！？；]")
VAGUE_TOPICS = frozenset(
    {"something random", *"something anything sth stuff random text 点什么 点东西 东西".split()}
)


def _request_remainder(text: str) -> str:
    """What follows a writing request's opening, to its first clause break ("" when nothing is named)."""
    for opening in (REQUEST_OPENING_EN, REQUEST_OPENING_ZH):
        found = opening.match(text)
        if found and found.end() < len(text):
            topic = _clean(CLAUSE_BREAK.split(text[found.end() :], maxsplit=1)[0])
            return "" if topic.lower() in VAGUE_TOPICS else topic
    return ""


def _clean(topic: str) -> str:
    topic = STYLE_TAIL.sub("", topic.strip())
    return topic.strip(" \t,.!?;:，。！？；：~～\"'“”")


def text_prompt(text: str) -> str:
    """A writing request -> the topic or opening to pass to the text generator ("" when none is named)."""
    text = text.strip()
    for pattern in (QUOTED, CONTINUATION, CHINESE_SUBJECT, MIXED_ABOUT, CHINESE_ABOUT_INNER):
        found = pattern.search(text)
        if found and _clean(found.group(1)):
            return _clean(found.group(1))
    for pattern in (CHINESE_ABOUT, ENGLISH_ABOUT, ENGLISH_ON):
        found = pattern.search(text)
        if found and _clean(found.group(1)):
            return _clean(found.group(1))
    return _request_remainder(text)
