"""Life events and need signals a caller names instead of the service they want, in English and Mandarin.

"My husband died", "我爸走了", "we moved last month", "手头紧": callers of a life insurer's hotline often
say what happened, not what they want done. Each *concept* here is a set of cue expressions for one such
event or signal (a death, an illness or injury, a move, money trouble, a missed premium, bad service, a
machine that does not understand...). The classifier sees a concept as one extra feature shared by every
cue and both languages, so a flow phrase that says "passed away" also teaches "去世", "deceased" and
"funeral"; which intent a concept leans to is learned from the flow's own phrases, never written here
(the lexicon names no intent, so it serves any flow).

Cues are written from a life insurer's services (claims, policy queries, premiums, policy loans, policy
changes, surrender, complaints, a human agent), not from any evaluation set.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

from ivr.speech.pinyin import char_sound, sounds

__all__ = ["CONCEPTS", "concepts_in", "mark_negations"]

CONCEPTS: Mapping[str, tuple[str, ...]] = {
    "death": (
        r"passed away", r"passed on", r"died", r"dies", r"dead", r"death", r"deceased", r"funeral",
        r"killed", r"lost my (?:husband|wife|father|mother|dad|mum|mom|son|daughter|partner)",
        "去世", "过世", "走了", "身故", "死", "病逝", "病故", "故去", "老伴没了", "不在了", "离世", "逝世",
        "丧事", "火化",
    ),
    "medical": (
        r"hospital\w*", r"surger\w+", r"operation", r"diagnos\w+", r"cancer", r"tumou?r", r"stroke",
        r"heart attack", r"injur\w+", r"hurt", r"broke (?:my|his|her|their) \w+", r"fractur\w+",
        r"accident", r"crash\w*", r"illness", r"ill", r"sick", r"treatment", r"doctor\w*", r"medical",
        r"stitches", r"icu", r"ambulance", r"fever", r"intensive care", r"clinic", r"a&e", r"emergency room",
        "住院", "住.{1,4}院", "医院", "手术", "发烧", "发高烧", "癌", "肿瘤", "骨折", "车祸", "受伤", "摔",
        "看病", "医药", "医疗", "生病",
        "大病", "确诊", "事故", "急诊", "门诊", "缝针", "重症", "出险", "意外", "病房", "治疗",
    ),
    "moved": (
        r"moved", r"moving (?:house|home|to|out|abroad)", r"relocat\w+",
        r"new (?:address|home|house|flat|apartment|place)", r"changed (?:my )?address", r"old address",
        "搬家", "搬到", "搬去", "新家", "地址", "外地", "迁居",
    ),
    "details": (
        r"new (?:phone|number|mobile|email|e-mail|bank|card|account|id)",
        r"changed (?:my )?(?:number|phone|mobile|email|bank|card|account|name|surname|job)",
        r"got married", r"married", r"divorc\w+", r"newborn", r"had a baby", r"spell\w*", r"wrong name",
        r"date of birth", r"surname", r"maiden name", r"out of date", r"(?:phone|mobile|contact) (?:number|details)",
        r"email address", r"bank details", r"is (?:old|wrong|out of date)",
        "手机号", "电话号码", "换了号", "新号码", "结婚", "离婚", "生了孩子", "改名", "写错", "身份证", "换了银行卡",
        "换卡", "邮箱", "受益人改", "改受益人",
    ),
    "cash_need": (
        r"short of (?:cash|money)", r"struggl\w+ (?:with|to pay)", r"behind on (?:bills|rent)",
        r"short this month", r"need (?:some |the |more )?(?:cash|money|funds)",
        r"tight on money", r"money is tight", r"tuition", r"school fees", r"hard up", r"cash flow",
        r"make ends meet", r"urgent(?:ly)? need", r"borrow\w*", r"lend\w*",
        "缺钱", "急用钱", "周转不开", "钱不够", "用钱", "手头紧", "周转", "学费", "没钱用", "资金", "急需",
        "借点", "借钱", "贷",
    ),
    "leave": (
        r"cheaper", r"too expensive", r"went up", r"gone up", r"want out", r"done with", r"can't afford",
        r"cannot afford", r"can not afford", r"no longer (?:need|want)",
        r"(?:don't|do not) need (?:it|this|the \w+|this \w+) any ?more", r"regret\w*", r"changed my mind",
        r"not worth", r"give (?:it )?up", r"quit\w*", r"leaving",
        r"(?:another|different|other) (?:company|insurer|provider)", r"get out of", r"back out",
        r"switch(?:ing)? to another",
        "不想续", "不续了", "不买了", "不交了", "太贵", "涨价", "涨得", "便宜", "交不起", "后悔", "不想要",
        "不要了", "不划算", "不值", "交不下去", "不保了",
    ),
    "missed_payment": (
        r"overdue", r"bounced", r"behind (?:on|with)", r"(?:i'm|i am|fallen|fell|got) behind", r"outstanding",
        r"missed (?:a |my |the )?(?:payment|premium|instal\w+)",
        r"late (?:payment|with)", r"reminder", r"didn't go through", r"did not go through", r"declined",
        r"arrears", r"unpaid", r"(?:wasn't|was not|not been|wasn't been) (?:taken|collected|deducted|debited)",
        r"direct debit", r"(?:how much|what) do i owe",
        "逾期", "扣不了", "没扣", "扣款失败", "扣款不成功", "没扣成功", "没交", "欠费", "欠的", "忘记交", "忘了交",
        "停效", "催缴", "提醒", "补交", "划走",
    ),
    "grievance": (
        r"rude", r"lied", r"\blie", r"lying", r"cheat\w*", r"misled", r"mis-?sold", r"worst", r"terrible",
        r"awful", r"unacceptable", r"ridiculous", r"fed up", r"angry", r"furious", r"disgust\w*",
        r"outrage\w*", r"waiting (?:for )?(?:\w+ )?(?:weeks|months)", r"(?:nobody|no one) (?:has )?(?:called|calls|"
        r"replied|answered|responded|got back|followed up|does anything|helps)",
        r"never (?:called|replied|got back|answered)", r"ignor\w+", r"hung up", r"charged (?:me )?twice",
        r"dragging", r"shocking", r"disappoint\w*", r"unhappy", r"dissatisfied", r"not happy",
        "态度", "骗", "忽悠", "误导", "不满", "太差", "失望", "没人回", "没人管", "没人理", "没人处理", "没人联系",
        "拖", "挂电话", "挂我电话", "不像话", "气死", "说法", "乱扣", "重复扣", "投诉",
    ),
    "machine": (
        r"machine", r"robot", r"automated", r"computer", r"(?:doesn't|does not|don't|do not|can't|cannot|isn't|"
        r"not) (?:understand\w*|get what)", r"getting it wrong", r"not on (?:your|the) (?:list|menu)",
        r"none of (?:these|the|your) (?:options|choices)", r"options", r"menu", r"complicated",
        r"(?:round|around) in circles", r"press\w* (?:\w+ )?(?:button|key)s?", r"nothing works",
        "机器", "听不懂", "听错", "不会用", "不会弄", "不会操作", "语音", "按键", "选项", "菜单", "复杂", "绕来绕去",
        "说不明白", "自助", "按.{0,4}键",
    ),
    "coverage": (
        r"covered", r"included", r"protected", r"still valid", r"still active", r"in force", r"lapsed",
        r"what (?:does|do|is) .{0,20}(?:cover|include)", r"am i covered", r"run out",
        r"still (?:going|valid|active|running|in force|ok|good)", r"insured for",
        "保不保", "管不管", "管用", "还能用", "还算数", "保什么", "保了什么", "保哪些", "保障", "包括",
        "有效", "失效", "过期", "到期", "满期",
    ),
}


def _compile(cues: tuple[str, ...]) -> re.Pattern[str]:
    latin = [c for c in cues if c.isascii()]
    cjk = [c for c in cues if not c.isascii()]  # plain characters, or a pattern for a split verb (住.{1,4}院)
    parts = [rf"\b(?:{'|'.join(latin)})\b"] if latin else []
    return re.compile("|".join(parts + cjk))


_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple((name, _compile(c)) for name, c in CONCEPTS.items())


_CJK_RE = re.compile(r"[\u3400-\u9fff]")


@functools.cache
def _cue_sounds() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Each concept's Mandarin cues of two or more characters as folded pinyin (" li pei "): a cue
    misheard as a homophone (投述 for 投诉) still names its concept. One-character cues (癌, 摔) are
    left out: a single syllable is shared by too many unrelated characters."""
    return tuple(
        (name, tuple(f" {' '.join(sounds(c))} " for c in cues if not c.isascii() and len(c) >= 2 and "." not in c))
        for name, cues in CONCEPTS.items()
    )


def concepts_in(text: str) -> list[str]:
    """The concepts whose cues occur in `text` (lower-cased, punctuation kept or not), in lexicon order;
    Mandarin cues also match by sound."""
    low = text.lower().replace("\u2019", "'")
    found = {name for name, pattern in _PATTERNS if pattern.search(low)}
    if _CJK_RE.search(low):
        heard = " " + " ".join(char_sound(c) if _CJK_RE.match(c) else "|" for c in low) + " "
        found.update(name for name, cues in _cue_sounds() if name not in found and any(c in heard for c in cues))
    return [name for name in CONCEPTS if name in found]


# "I need money but I don't want to cancel", "缺钱用但是不想退保": the caller names a service to rule it out.
# The word (English) or two characters (Mandarin) after a refusal become one negated token, so they no
# longer count for the intent they name. "不想要了"/"不要这个了" (don't want it any more) is a refusal of the
# policy itself, a surrender, so 要/了 right after the refusal are left alone.
_EN_NEGATION_RE = re.compile(
    r"\b(?:don't|do not|doesn't|does not|didn't|did not|never|not|without|rather not)"
    r"(?: (?:want|wanna|need|plan|intend|wish|mean|going|trying))?(?: to)?"
    r"(?: (?:the|my|this|it|that|a|an|any|be))* ([a-z]+)"
)
_CMN_NEGATION_RE = re.compile(r"(?:不想|不打算|不愿意|不愿|并不想|没想|不是想|不是要)(?![要了])([\u4e00-\u9fff]{1,2})")
NEGATED = "not_"
"""Prefix of a negated token ("not_cancel", "not_退保"): a word of its own, with no character n-grams
(a word character, so utterance normalisation keeps it)."""


def mark_negations(text: str) -> str:
    """`text` with each refused service turned into one negated token (spaces around it)."""
    text = _EN_NEGATION_RE.sub(lambda m: m.group(0)[: m.start(1) - m.start(0)] + f" {NEGATED}{m.group(1)} ", text)
    return _CMN_NEGATION_RE.sub(lambda m: m.group(0)[: m.start(1) - m.start(0)] + f" {NEGATED}{m.group(1)} ", text)
