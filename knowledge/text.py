"""Small text helpers shared by ingest and retrieval: language, tokens, keys for duplicate checks."""

from __future__ import annotations

import functools
import re

CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")
NOT_KEY = re.compile(r"[\W_]+", re.UNICODE)
CODE_FENCE = re.compile(r"```.*?(?:```|$)", re.DOTALL)

ENGLISH_STOPWORDS = frozenset(
    """a an and are as at be been but by can could do does did for from has have how i if in into is it
    its me my of on or our should so such than that the their them then there these they this to too
    us was we were what when where which who whom why will with would you your yours about any some
    also more most very just get gets got use used using need needs tell know want please""".split()
)
# Words a question wraps around its topic ("how do I make sure ...", "what happens during ..."):
# they never decide whether a passage answers it, so the answer-support check ignores them.
QUESTION_FILLER_EN = frozenset(
    """able ability after again ago all almost already always another anything anyone around away bad
    before being best better between big came come comes common commonly deal describe different
    do doing done during each easy else enough even ever every everything example exist exists
    explain explained far few find first give given go goes going good great handle happen happens
    help helps here hard huge ideal idea include includes including involve involves keep kind kinds
    lot lots look looks like likely main make makes making many may means might much must new
    no not now often okay one ones only other others out over own possible put quite rather real
    really right same say see seem seems several simple simply since small something sometimes soon
    still sure take takes thing things think through try type types typical typically under until
    useful usually way ways well whether while whole work works worth wrong yes yet""".split()
)
# The same for Chinese questions: whole words, matched before the characters are checked.
QUESTION_FILLER_ZH = (
    "怎么办",
    "为什么",
    "什么样",
    "应该",
    "可以",
    "能够",
    "需要",
    "什么",
    "哪些",
    "怎么",
    "怎样",
    "如何",
    "一些",
    "一下",
    "一个",
    "方面",
    "工作",
    "多少",
    "多大",
    "多长",
    "不够",
    "主要",
    "有用",
    "好的",
    "用",
    "做",
    "中",
    "要",
    "一",
    "办",
    "样",
    "里",
    "能",
    "不",
    "请",
    "问",
)
# Chinese function words and question particles; two-character grams made only of these carry no topic.
CHINESE_STOP_CHARS = frozenset(
    "的了是在和与及或吗呢吧啊呀么什怎哪些个这那有我你他她它们就都而也被把对于从如何为"
)


def cjk_ratio(text: str) -> float:
    """Share of CJK characters among the letters and ideographs of a text."""
    letters = sum(1 for ch in text if ch.isalpha())
    return len(CJK.findall(text)) / letters if letters else 0.0


def dedup_key(text: str) -> str:
    """Text reduced to letters and digits, for duplicate checks."""
    return NOT_KEY.sub("", text.lower())


def shingles(key: str, size: int = 4) -> set[str]:
    """Overlapping character n-grams of a dedup key."""
    if len(key) <= size:
        return {key} if key else set()
    return {key[i : i + size] for i in range(len(key) - size + 1)}


def stem(word: str) -> str:
    """A light English stemmer: enough to match plurals and common suffixes."""
    for suffix, keep in (
        ("ies", "y"),
        ("sses", "ss"),
        ("ing", ""),
        ("edly", ""),
        ("ed", ""),
        ("es", ""),
        ("s", ""),
    ):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "s" and word.endswith(("ss", "us", "is")):
                return word
            if suffix == "es" and not word.endswith(("ches", "shes", "xes", "sses", "zes")):
                return word[:-1]
            return word[: len(word) - len(suffix)] + keep
    return word


def english_words(text: str) -> list[str]:
    """Lower-case English words without stopwords (digits kept: model names like gpt-3)."""
    return [w for w in WORD.findall(text.lower()) if w not in ENGLISH_STOPWORDS]


def chinese_grams(text: str) -> list[str]:
    """Character unigrams and bigrams of every CJK run (no segmenter needed)."""
    grams: list[str] = []
    for run in CJK_RUN.findall(text):
        for i, ch in enumerate(run):
            if ch not in CHINESE_STOP_CHARS:
                grams.append(ch)
            if i + 1 < len(run):
                pair = run[i : i + 2]
                if not (pair[0] in CHINESE_STOP_CHARS and pair[1] in CHINESE_STOP_CHARS):
                    grams.append(pair)
    return grams


def lexical_tokens(text: str) -> list[str]:
    """Index terms of a text in either language: stemmed English words and Chinese n-grams."""
    return [stem(w) for w in english_words(text)] + chinese_grams(text)


def simplified(text: str) -> str:
    """The text with traditional Chinese characters in simplified script, the corpus's (questions
    from Taiwan or Hong Kong read as the same words); text without Chinese is returned as is."""
    return _converter("t2s").convert(text) if CJK_RUN.search(text) else text


def traditional(text: str) -> str:
    """The text in traditional Chinese script (a reply to a question written in it)."""
    return _converter("s2t").convert(text) if CJK_RUN.search(text) else text


@functools.cache
def _converter(conversion: str):
    from opencc import OpenCC

    return OpenCC(conversion)
