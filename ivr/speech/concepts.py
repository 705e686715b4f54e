"""Life events and need signals a caller names instead of the service they want, in English and Mandarin.

"My husband died", "我爸走了", "we moved last month", "手头紧": callers of a life insurer's hotline often
say what happened, not what they want done. Each *concept* here is a set of cue expressions for one such
event or signal (a death, an illness or injury, a move, money trouble, a missed premium, bad service, a
machine that does not understand...). The classifier sees a concept as one extra feature shared by every
cue and both languages, so a flow phrase that says "passed away" also teaches "去世", "deceased" and
"funeral"; which intent a concept leans to is learned from the flow's own phrases, never written here
(the lexicon names no intent, so it serves any flow).

A second group are the caller's own words for what they ask: a person to talk to ("a member of staff",
"工作人员"), ending a contract ("discontinue", "注销"), changing something ("amend", "更正"), paying
("standing order", "支付"), getting costs paid back ("compensate", "报销"). A flow's phrases use a few
such words; the concept lets every other word of the class count the same.

Cues are written from a life insurer's services (claims, policy queries, premiums, policy loans, policy
changes, surrender, complaints, a human agent), not from any evaluation set. Mandarin cues of two or more
characters also match by sound, so a cue must not sound like an everyday phrase of another need (借点 is
接电(话): the cue is 借点钱).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

from ivr.speech.pinyin import char_sound, sounds

__all__ = ["CONCEPTS", "concepts_in", "mark_negations"]

CONCEPTS: Mapping[str, tuple[str, ...]] = {
    # What happened to the caller (life events and need signals).
    "death": (
        r"passed away", r"passed on", r"died", r"dies", r"dead", r"death", r"deceased", r"funeral", r"killed",
        r"lost my (?:husband|wife|father|mother|dad|mum|mom|son|daughter|partner)", r"my late \w+",
        r"no longer with us", r"bereave\w*", r"widow\w*", r"buried", r"burial",
        "去世", "过世", "走了", "身故", "死", "病逝", "病故", "故去", "老伴没了", "不在了", "离世", "逝世", "丧事",
        "火化", "身亡", "人没了", "死亡证明", "丧葬", "追悼", "遗体",
    ),
    "medical": (
        r"hospital\w*", r"surger\w+", r"operation", r"diagnos\w+", r"cancer", r"tumou?r", r"stroke",
        r"heart attack", r"injur\w+", r"hurt", r"broke (?:my|his|her|their) \w+", r"fractur\w+",
        r"accident", r"crash\w*", r"illness", r"ill", r"sick", r"treatment", r"doctor\w*", r"medical",
        r"stitches", r"icu", r"ambulance", r"fever", r"intensive care", r"clinic", r"a&e", r"emergency room",
        r"ward", r"knocked (?:off|down|over)", r"hit by a \w+", r"fell", r"fall", r"physio\w*", r"therap\w+",
        r"appendi\w+", r"prescription\w*", r"x-?rays?", r"scan", r"dentist", r"maternity", r"gave birth",
        r"chemo\w*", r"dialysis", r"pregnan\w+", r"bitten", r"burn(?:s|ed|t)?", r"concussion", r"disab\w+",
        r"pneumonia", r"infection", r"paramedic\w*",
        "住院", "住.{1,4}院", "医院", "手术", "发烧", "发高烧", "癌", "肿瘤", "骨折", "车祸", "受伤", "摔", "看病",
        "医药", "医疗", "生病", "大病", "确诊", "事故", "急诊", "门诊", "缝针", "重症", "出险", "意外", "病房", "治疗",
        "理疗", "康复", "跌倒", "被车", "阑尾", "化疗", "生孩子", "剖腹产", "分娩", "药费", "检查费", "透析", "怀孕",
        "咬", "烧伤", "烫伤", "残疾", "伤残", "病了", "病倒", "中风", "脑梗", "心梗", "肺炎", "感染", "查出",
    ),
    "moved": (
        r"moved", r"moving (?:house|home|to|out|abroad)", r"relocat\w+", r"address",
        r"new (?:address|home|house|flat|apartment|place)", r"(?:another|new|different) (?:city|town|country|province)",
        "搬家", "搬到", "搬去", "搬走", "新家", "地址", "住址", "外地", "迁居", "迁到",
    ),
    "details": (
        r"new (?:phone|number|mobile|email|e-mail|bank|card|account|id)", r"mobile", r"passport", r"occupation",
        r"changed (?:my )?(?:number|phone|mobile|email|bank|card|account|name|surname|job)", r"changed banks",
        r"got married", r"married", r"divorc\w+", r"newborn", r"had a baby", r"spell\w*", r"spelt", r"wrong name",
        r"date of birth", r"surname", r"maiden name", r"name change", r"out of date", r"email address",
        r"(?:phone|mobile|contact|bank|account) (?:number|details)", r"is (?:old|wrong|out of date)",
        "手机号", "电话号码", "联系电话", "联系方式", "换了号", "新号码", "电话变", "号码变", "结婚", "离婚",
        "生了孩子", "改名", "写错", "身份证", "证件", "护照", "职业", "换了银行卡", "换卡", "换了新卡", "换新卡",
        "邮箱", "受益人改", "改受益人", "跟着改",
    ),
    "cash_need": (
        r"short of (?:cash|money)", r"struggl\w+ (?:with|to pay)", r"behind on (?:bills|rent)", r"short this month",
        r"need (?:some |the |more )?(?:cash|money|funds)", r"(?:don't|do not) have the money", r"funds",
        r"(?:get|take|draw) (?:some )?(?:cash|money) (?:from|out of|against)", r"advance",
        r"tight on money", r"money is tight", r"tuition", r"school fees", r"hard up", r"cash flow",
        r"make ends meet", r"urgent(?:ly)? need", r"borrow\w*", r"lend\w*", r"mortgage", r"rent", r"debts?",
        r"bills to pay", r"payday", r"business (?:is )?(?:in trouble|struggling)",
        "缺钱", "急用钱", "急用", "应急", "周转不开", "周转", "钱不够", "用钱", "手头紧", "手头", "拮据", "困难",
        "学费", "没钱用", "资金", "急需", "装修", "房贷", "借点钱", "借钱", "贷",
    ),
    "leave": (
        r"cheaper", r"too expensive", r"went up", r"gone up", r"want out", r"done with", r"can't afford",
        r"cannot afford", r"can not afford", r"no longer (?:need|want)", r"(?:don't|do not) need it",
        r"(?:don't|do not) need (?:it|this|the \w+|this \w+) any ?more", r"regret\w*", r"changed my mind",
        r"not worth", r"give (?:it )?up", r"quit\w*", r"leaving", r"elsewhere", r"better deal",
        r"(?:another|different|other) (?:company|insurer|provider)", r"get out of", r"back out",
        r"switch(?:ing)? to another", r"(?:found|got) (?:a )?(?:better|cheaper)", r"cash (?:in|out)", r"close it",
        r"end (?:it|this|this one)", r"lost my job", r"unemployed", r"redundan\w+", r"waste of money", r"no point",
        r"pointless", r"stop paying", r"(?:don't|do not) want to (?:continue|carry on|keep (?:it|paying|going))",
        "不想续", "不续了", "不买了", "不想买了", "不交了", "不想交", "太贵", "涨价", "涨得", "便宜", "交不起", "后悔",
        "不想要", "不要了", "不划算", "不值", "交不下去", "不保了", "失业", "下岗", "买错", "解约", "退钱", "浪费",
        "不需要了", "用不着", "白交", "不想继续", "不继续",
    ),
    "missed_payment": (
        r"overdue", r"bounced", r"behind (?:on|with)", r"(?:i'm|i am|fallen|fell|got) behind", r"outstanding",
        r"missed (?:a |my |the )?(?:payment|premium|instal\w+)", r"failed", r"rejected", r"returned",
        r"late (?:payment|with)", r"reminder", r"didn't go through", r"did not go through", r"declined",
        r"arrears", r"unpaid", r"(?:wasn't|was not|not been|wasn't been) (?:taken|collected|deducted|debited)",
        r"direct debit", r"(?:how much|what) do i owe", r"(?:amount|balance|sum|payment|premium)s? (?:due|owed)",
        r"due (?:date|now|today)", r"what(?:'s| is) due", r"lapse unless", r"send (?:the |my )?money",
        r"grace period", r"insufficient",
        "逾期", "扣不了", "没扣", "扣款失败", "扣款不成功", "没扣成功", "没扣上", "扣失败", "余额不足", "没交", "欠费",
        "欠的", "忘记交", "忘了交", "停效", "催缴", "提醒", "补交", "划走", "退回来", "被退回", "该交", "应交",
        "要交多少", "宽限期", "滞纳",
    ),
    "grievance": (
        r"rude", r"lied", r"\blie", r"lying", r"cheat\w*", r"misled", r"mis-?sold", r"worst", r"terrible",
        r"awful", r"unacceptable", r"ridiculous", r"fed up", r"angry", r"furious", r"disgust\w*",
        r"outrage\w*", r"waiting (?:for )?(?:\w+ )?(?:weeks|months)", r"(?:nobody|no one) (?:has )?(?:called|calls|"
        r"replied|answered|responded|got back|followed up|does anything|helps|tells|told|explains|explained)",
        r"(?:sitting|stuck|pending) (?:there )?(?:for )?(?:\w+ )?(?:weeks|months|ages)", r"promised",
        r"never (?:called|replied|got back|answered)", r"ignor\w+", r"hung up", r"charged (?:me )?twice",
        r"dragging", r"shocking", r"disappoint\w*", r"unhappy", r"dissatisfied", r"not happy", r"treated",
        r"sold (?:me|my \w+) (?:something|a policy|this|that)", r"poor service", r"bad service",
        r"manager", r"supervisor", r"regulator", r"ombudsman", r"sue", r"lawyer", r"media", r"report you",
        r"scam\w*", r"fraud\w*", r"rip-?off", r"ripped off", r"useless", r"incompetent",
        "态度", "骗", "忽悠", "误导", "不满", "太差", "失望", "没人回", "没人管", "没人理", "没人处理", "没人联系",
        "拖", "挂电话", "挂我电话", "不像话", "气死", "说法", "乱扣", "重复扣", "投诉", "没结果", "没有结果", "没动静",
        "没下文", "没答复", "太冲", "有意见", "说的.{0,8}不一样", "爱答不理", "坑", "欺骗", "骗子", "监管", "曝光",
        "律师", "起诉", "法院", "消协", "领导", "经理", "不负责", "敷衍", "推卸", "踢皮球", "推来推去",
    ),
    "machine": (
        r"machine", r"robot", r"automated", r"computer", r"system", r"(?:doesn't|does not|don't|do not|can't|cannot|"
        r"isn't|not) (?:understand\w*|get what)", r"getting it wrong", r"not on (?:your|the) (?:list|menu)",
        r"none of (?:these|the|your) (?:options|choices)", r"options", r"menu", r"complicated",
        r"(?:round|around) in circles", r"going (?:round|around)", r"(?:options?|choices?) (?:fit|match|cover)",
        r"press\w* (?:\w+ )?(?:button|key)s?", r"nothing works", r"keep (?:asking|repeating)",
        r"(?:didn't|did not|can't|cannot) (?:catch|hear)", r"voice (?:system|recognition)",
        "机器", "听不懂", "听错", "听不清", "没听懂", "不明白", "说不明白", "搞不懂", "弄不懂", "看不懂", "不会用",
        "不会弄", "不会操作", "难用", "不好用", "语音", "系统", "按键", "按.{0,4}键", "选项", "菜单", "复杂",
        "绕来绕去", "自助", "老是重复", "转不过去",
    ),
    "coverage": (
        r"covered", r"included", r"protected", r"valid", r"still active", r"in force", r"lapsed", r"expir\w+",
        r"what (?:does|do|is) .{0,20}(?:cover|include)", r"am i covered", r"run out", r"still apply",
        r"still (?:going|valid|active|running|in force|ok|good)", r"insured for", r"abroad", r"overseas",
        r"travel\w*", r"names? me", r"what (?:kind|type|sort) of (?:policy|policies|plan|plans|insurance|cover)",
        r"what have i got", r"(?:does|do|will) (?:it|this|that|my \w+) pay (?:for|out)", r"pays? out",
        r"how much (?:[\w']+ ){0,3}worth", r"exclusions?",
        "保不保", "管不管", "管用", "管什么", "还能用", "还有用", "有没有用", "还算数", "保什么", "保了什么", "保哪些",
        "保多少", "保到", "保障", "包括", "有效", "失效", "过期", "到期", "满期", "买过什么", "买了什么", "买的什么",
        "哪些保险", "出国", "国外", "境外", "旅游", "保障范围", "值多少", "条款",
    ),
    # What the caller asks for, in other words than the flow's (service words by meaning; no intent named).
    "person": (
        r"(?:real|actual|live|living) (?:person|human|people|agent)", r"human\w*", r"person", r"somebody",
        r"someone", r"staff", r"operator", r"representative", r"rep", r"advisor", r"speak (?:to|with)",
        r"talk (?:to|with)",
        "真人", "人工", "活人", "接线员", "坐席", "座席", "工作人员", "专人", "客服人员", "找个人", "找人",
    ),
    "cancel": (
        r"cancel\w*", r"terminat\w+", r"discontinu\w+", r"withdraw\w*", r"surrender\w*", r"rescind\w*",
        r"(?:end|stop|close|exit|quit) (?:my|the|this|our) (?:policy|plan|insurance|cover|contract)",
        "退保", "退掉", "注销", "撤销", "终止", "解除", "取消", "解约", "撤保",
    ),
    "change": (
        r"chang\w*", r"modif\w+", r"amend\w*", r"updat\w+", r"correct\w*", r"switch\w*", r"swap\w*",
        r"replac\w+", r"alter\w*", r"edit\w*", r"fix (?:my|the) \w+", r"put (?:\w+ )?down as",
        "改", "变更", "更换", "换成", "更新", "更正", "换一", "换个", "变成",
    ),
    "pay": (
        r"pay(?!\s?out|\s?back)\w*", r"paid", r"contribution\w*", r"instal\w+", r"automatic (?:payment|debit)s?",
        r"auto-?pay\w*", r"standing order",
        "缴", "交费", "交钱", "付款", "支付", "转账",
    ),
    "reimburse": (
        r"reimburs\w+", r"pay (?:for|out for) (?:my|the|his|her|our|their) \w+", r"compensat\w+", r"payout",
        r"cover (?:the|my|his|her|our|their) (?:cost|bill|expense|treatment)s?",
        r"get (?:something|anything|money) back for",
        "报销", "能报", "报多少", "赔多少", "能赔", "赔付", "赔偿", "补偿", "给报", "能不能报", "能不能赔",
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
