from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from zoneinfo import ZoneInfo

import pytest
from structlog.testing import capture_logs

from ivr.call import QueueOutcomeKind
from ivr.flow import Flow, HttpReply, load_text
from ivr.flow.events import StepKind
from ivr.journey import Outcome
from ivr.testing import Turn
from ivr.testing.flowsim import Simulation, simulate

from .conftest import CUSTOMER, ELDERLY, POLICY, StubHttp

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = dt.datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI)


async def run(
    flow: Flow,
    *turns: Turn,
    routes: Mapping[str, object] | None = None,
    when: dt.datetime = DAY,
    caller: str = "13800138000",
    queues: Mapping[str, QueueOutcomeKind] | None = None,
) -> tuple[Simulation, StubHttp]:
    http = StubHttp({"/api/customers/" + caller: CUSTOMER, **(routes or {})})  # type: ignore[dict-item]
    sim = await simulate(
        flow, list(turns), caller=caller, when=when, backend="http://stub", http=http, queue_results=queues
    )
    return sim, http


def kinds(sim: Simulation) -> list[str]:
    return [e.kind for e in sim.events]


# --- the hotline -------------------------------------------------------------------------------------


async def test_claim_said_once_reaches_the_claims_queue_with_context(hotline: Flow) -> None:
    sim, _ = await run(hotline, Turn.say("我要报案"))
    r = sim.record
    assert (r.queue, r.outcome, r.intent) == ("claims", Outcome.TO_AGENT, "claim")
    assert r.transcript == "我要报案" and r.confidence == pytest.approx(1.0)
    request = sim.requests[0]
    assert request.queue == "claims" and dict(request.skills) == {"claims": 1}
    assert request.context["intent"] == "claim" and request.context["customer_name"] == "张伟"
    assert r.flow_version == hotline.version
    assert [e.seq for e in sim.events] == list(range(len(sim.events)))


async def test_key_zero_reaches_a_human(hotline: Flow) -> None:
    sim, _ = await run(hotline, Turn.keys("0"))
    assert sim.record.queue == "general" and sim.record.outcome is Outcome.TO_AGENT
    assert "need" in sim.record.path
    assert sim.record.intent == "", "a key press is no need: reports do not count it as one"
    assert any(e.kind == StepKind.INTENT.value and e.data["intent"] == "human_key" for e in sim.events)


async def test_classifier_routes_a_paraphrase(hotline: Flow) -> None:
    sim, _ = await run(hotline, Turn.say("我想把保险退了"), Turn.keys("1"))
    assert sim.record.intent == "surrender"
    assert sim.record.queue == "service"


async def test_english_speech_switches_the_call_to_english(hotline: Flow) -> None:
    sim, _ = await run(hotline, Turn.say("I need to make a claim"))
    assert sim.record.dialect == "en" and sim.record.queue == "claims"
    transfer = next(a for a in sim.call.actions if a.prompt_id == "transfer_agent")
    assert transfer.dialect == "en" and transfer.text.startswith("Connecting you to an agent")


async def test_key_nine_asks_again_in_english(hotline: Flow) -> None:
    sim, _ = await run(hotline, Turn.keys("9"), Turn.keys("0"))
    asks = [a for a in sim.call.actions if a.prompt_id == "ask_need"]
    assert [a.dialect for a in asks] == ["cmn", "en"]
    assert asks[1].text.startswith("Please briefly tell us")


async def test_elderly_caller_gets_dialect_menu_and_green_channel(hotline: Flow) -> None:
    caller = "13900000001"
    sim, _ = await run(hotline, Turn.keys("0"), caller=caller, routes={"/api/customers/" + caller: ELDERLY})
    assert "elderly_menu" in sim.call.prompt_ids
    greeting = next(a for a in sim.call.actions if a.prompt_id == "greeting")
    assert greeting.dialect == "yue" and "歡迎" in greeting.text
    request = sim.requests[0]
    assert (request.queue, request.priority, request.dialect) == ("elderly", 10, "yue")
    assert sim.record.queue == "elderly"


async def test_elderly_dialect_choice_is_stored_and_used(hotline: Flow) -> None:
    caller = "13900000001"
    sim, _ = await run(
        hotline, Turn.keys("3"), Turn.keys("0"), caller=caller, routes={"/api/customers/" + caller: ELDERLY}
    )
    assert sim.record.variables["dialect"] == "hak" and sim.record.dialect == "hak"
    ask = next(a for a in sim.call.actions if a.prompt_id == "ask_need")
    assert ask.dialect == "hak" and "讲出" in ask.text
    # key 0 at a later menu is still the green channel for an elderly caller
    assert sim.requests[0].queue == "elderly"


async def test_policy_query_self_service_speaks_the_data_and_takes_the_survey(hotline: Flow) -> None:
    sim, http = await run(
        hotline,
        Turn.say("查一下我的保单"),
        Turn.keys("2005123456#"),
        Turn.keys("2"),
        Turn.keys("9"),
        routes={"/api/policies/2005123456": POLICY},
    )
    said = next(a.text for a in sim.call.actions if a.prompt_id == "policy_status")
    assert "2005123456" in said and "300000" in said and "2026-03-15" in said and "有效" in said
    assert sim.record.outcome is Outcome.SELF_SERVED and sim.record.survey_score == 9
    assert sim.record.breakpoint_node == ""
    assert http.calls[-1].endswith("/api/policies/2005123456?lang=cmn")


async def test_bad_check_digit_is_asked_again(hotline: Flow) -> None:
    sim, _ = await run(
        hotline,
        Turn.say("查保单"),
        Turn.keys("2005123457#"),
        Turn.keys("2005123456#"),
        Turn.keys("2"),
        routes={"/api/policies/2005123456": POLICY},
    )
    assert "bad_policy_no" in sim.call.prompt_ids
    assert sim.record.variables["policy_no"] == "2005123456"


@pytest.mark.parametrize(
    "failure",
    [HttpReply(500, {"error": "down"}), TimeoutError(), OSError("connection refused")],
    ids=["status-500", "timeout", "unreachable"],
)
async def test_failing_data_dip_ends_at_a_human_with_a_breakpoint(hotline: Flow, failure: object) -> None:
    with capture_logs() as logs:
        sim, http = await run(
            hotline,
            Turn.say("查保单"),
            Turn.keys("2021005000#"),
            routes={"/api/policies/2021005000": failure},
        )
    assert len([c for c in http.calls if "/policies/" in c]) == 2  # one retry
    assert sim.record.breakpoint_node == "fetch_policy"
    bp = [e for e in sim.breakpoints if e.kind == StepKind.DATA_DIP_FAILED.value]
    assert bp and bp[0].node == "fetch_policy"
    assert sim.record.queue == "service" and sim.record.outcome is Outcome.TO_AGENT
    assert sim.requests[0].context["breakpoint"] == "fetch_policy"
    assert any(e["event"] == "journey_breakpoint" for e in logs)


async def test_low_confidence_is_confirmed_before_acting(hotline: Flow) -> None:
    sim, _ = await run(hotline, Turn.say("我要报案", confidence=0.5), Turn.keys("1"))
    assert "confirm_intent" in sim.call.prompt_ids
    confirm = next(a.text for a in sim.call.actions if a.prompt_id == "confirm_intent")
    assert "理赔报案" in confirm
    assert sim.record.queue == "claims"


async def test_not_understood_twice_falls_back_to_the_key_menu(hotline: Flow) -> None:
    sim, _ = await run(hotline, Turn.say("今天天气怎么样"), Turn.say("嗯嗯啊啊"), Turn.keys("1"))
    assert "ask_need_retry" in sim.call.prompt_ids and "main_menu" in sim.call.prompt_ids
    assert sim.record.queue == "claims"
    assert sim.record.breakpoint_node == "need"
    assert StepKind.RETRIES_EXHAUSTED.value in kinds(sim)


async def test_after_a_no_match_the_recognizer_listens_for_the_answers_the_retry_names(hotline: Flow) -> None:
    sim, _ = await run(hotline, Turn.say("今天天气怎么样"), Turn.say("缴费"))
    first, retry = sim.call.listens[:2]
    assert "我要报案" in first.phrases and len(first.phrases) > 100
    assert (first.closed, retry.closed) == (False, True)  # the answers are the retry's whole answer set
    assert set(retry.phrases) == {"理赔", "查保单", "缴费", "借款", "变更", "退保", "投诉", "人工", "claim",
                                  "policy details", "payment", "loan", "change", "cancel", "complaint", "agent"}
    assert sim.record.intent == "payment"
    answer = [e.data for e in sim.events if e.kind == StepKind.INTENT.value][-1]
    assert answer["source"] == "answer"


async def test_an_answer_heard_in_doubt_is_confirmed_and_the_confirm_listens_for_yes_or_no(hotline: Flow) -> None:
    sim, _ = await run(hotline, Turn.say("今天天气怎么样"), Turn.say("payment", confidence=0.4), Turn.say("yes"))
    assert sim.call.prompt_ids.count("confirm_intent") == 1 and sim.record.intent == "payment"
    confirm = sim.call.listens[2]
    assert "yes" in confirm.phrases and "no" in confirm.phrases and "payment" not in confirm.phrases
    assert not confirm.closed, "yes/no is heard by the dialect's own engine (menus.yes_no_spec)"


async def test_a_silence_after_a_no_match_asks_the_open_question_again(hotline: Flow) -> None:
    sim, _ = await run(hotline, Turn.say("今天天气怎么样"), Turn.silence(), Turn.say("我要报案"))
    phrases = [len(spec.phrases) for spec in sim.call.listens[:3]]
    assert phrases[1] == 16 and phrases[0] == phrases[2] > 100
    assert [spec.closed for spec in sim.call.listens[:3]] == [False, True, False]
    assert sim.record.queue == "claims"


async def test_silence_gets_its_own_prompt(hotline: Flow) -> None:
    sim, _ = await run(hotline, Turn.silence(), Turn.say("转人工"))
    assert sim.call.prompt_ids.count("ask_need_silence") == 1
    assert sim.record.queue == "general"


@pytest.mark.parametrize(
    "when",
    [
        dt.datetime(2026, 3, 2, 23, 30, tzinfo=SHANGHAI),
        dt.datetime(2026, 3, 3, 7, 59, tzinfo=SHANGHAI),
        dt.datetime(2026, 10, 1, 10, 0, tzinfo=SHANGHAI),
    ],
    ids=["late-evening", "early-morning", "national-day"],
)
async def test_night_and_holidays_keep_the_callers_queue_with_a_night_notice(
    hotline: Flow, when: dt.datetime
) -> None:
    """Night service is the ACD's job (central sites lend agents): the caller keeps the right queue."""
    sim, _ = await run(hotline, Turn.say("我要报案"), when=when)
    assert sim.record.queue == "claims"
    assert "night_notice" in sim.call.prompt_ids


async def test_daytime_callers_hear_no_night_notice(hotline: Flow) -> None:
    sim, _ = await run(hotline, Turn.say("我要报案"), when=dt.datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI))
    assert sim.record.queue == "claims"
    assert "night_notice" not in sim.call.prompt_ids


async def test_caller_hanging_up_is_abandoned(hotline: Flow) -> None:
    sim, _ = await run(hotline, Turn.hangup())
    assert sim.record.outcome is Outcome.ABANDONED
    assert sim.record.path[-1] == "need"
    assert kinds(sim)[-2:] == [StepKind.CALLER_HUNG_UP.value, StepKind.CALL_FINISHED.value]


async def test_queue_callback_and_unavailable_outcomes(hotline: Flow) -> None:
    sim, _ = await run(hotline, Turn.say("我要报案"), queues={"claims": QueueOutcomeKind.CALLBACK})
    assert sim.record.outcome is Outcome.CALLBACK and sim.call.prompt_ids[-1] == "goodbye"
    sim, _ = await run(hotline, Turn.say("我要报案"), queues={"claims": QueueOutcomeKind.UNAVAILABLE})
    assert [q.queue for q in sim.requests] == ["claims", "general"]


async def test_a_caller_no_queue_could_take_is_unserved_not_self_served(hotline: Flow) -> None:
    """Claims and then general cannot take the caller, who leaves no message: the busy goodbye ends the
    call. Counting it as self-service would inflate containment with callers who wanted a human and got none."""
    nobody = {"claims": QueueOutcomeKind.UNAVAILABLE, "general": QueueOutcomeKind.UNAVAILABLE}
    sim, _ = await run(hotline, Turn.say("我要报案"), Turn.silence(), queues=nobody)
    assert sim.call.prompt_ids[-2:] == ["leave_message", "busy"]
    assert sim.record.outcome is Outcome.UNSERVED
    full = {"claims": QueueOutcomeKind.UNAVAILABLE, "general": QueueOutcomeKind.OVERFLOWED}
    sim, _ = await run(hotline, Turn.say("我要报案"), Turn.silence(), queues=full)
    assert sim.record.outcome is Outcome.UNSERVED, "the flow ran out of places to send the caller"
    sim, _ = await run(hotline, Turn.say("我要报案"), queues={"claims": QueueOutcomeKind.UNAVAILABLE})
    assert sim.record.outcome is Outcome.TO_AGENT, "answered in the second queue"


async def test_customer_lookup_failure_is_not_a_breakpoint(hotline: Flow) -> None:
    sim, _ = await run(hotline, Turn.keys("0"), routes={"/api/customers/13800138000": OSError("down")})
    assert sim.record.breakpoint_node == ""
    assert sim.record.queue == "general"


# --- small flows: error routing, subflows, transfer ------------------------------------------------

HEAD = """id: t
version: "7"
queues: [general]
prompts:
  hi: {cmn: 你好}
  sorry: {cmn: 抱歉}
on_error: {queue: general, priority: 4, prompt: sorry}
"""


def small(nodes: str, head: str = HEAD) -> Flow:
    result = load_text(head + nodes, "t.yaml", classifier_factory=None)
    assert result.flow is not None, [str(p) for p in result.errors]
    return result.flow


async def test_an_exception_in_a_node_goes_to_on_error_with_context() -> None:
    flow = small("""nodes:
  start: {type: set, values: {x: "int('abc')"}, next: bye}
  bye: {type: hangup}
""")
    with capture_logs() as logs:
        sim, _ = await run(flow)
    assert sim.record.breakpoint_node == "start"
    error = next(e for e in sim.events if e.kind == StepKind.ERROR.value)
    assert error.breakpoint and "int() cannot convert 'abc'" in error.data["error"]
    request = sim.requests[0]
    assert (request.queue, request.priority) == ("general", 4)
    assert "int() cannot convert" in request.context["error"] and request.context["breakpoint"] == "start"
    assert sim.call.prompt_ids == ["sorry"]
    failed = next(e for e in logs if e["event"] == "node_failed")
    assert failed["exc_info"] is True and failed["node"] == "start"


async def test_an_unexpected_exception_type_is_also_caught() -> None:
    flow = small("""nodes:
  start: {type: http, url: "http://x/{caller}", next: bye, fallback: bye}
  bye: {type: hangup}
""")
    sim, _ = await run(flow, routes={"/13800138000": ZeroDivisionError("boom")})
    assert sim.record.queue == "general" and sim.record.outcome is Outcome.TO_AGENT
    assert sim.record.breakpoint_node == "start"


async def test_subflow_returns_to_its_caller() -> None:
    flow = small("""nodes:
  start: {type: subflow, call: greet, next: bye}
  greet: {type: play, prompt: hi, next: back}
  back: {type: return}
  bye: {type: hangup, prompt: sorry}
""")
    sim, _ = await run(flow)
    assert sim.record.path == ["start", "greet", "back", "bye"]
    assert sim.record.outcome is Outcome.SELF_SERVED


@pytest.mark.parametrize(("accepted", "outcome"), [(True, Outcome.TRANSFERRED), (False, Outcome.TO_AGENT)])
async def test_transfer(accepted: bool, outcome: Outcome) -> None:
    flow = small("""nodes:
  start: {type: transfer, target: "sip:claims@10.0.0.1", failed: agent}
  agent: {type: queue, queue: general}
""")
    http = StubHttp()
    from ivr.testing import SimCall

    call = SimCall(transfer_accepted=accepted)
    from ivr.clock import FakeClock
    from ivr.flow import Interpreter
    from ivr.journey import MemoryJourneySink

    record = await Interpreter(sink=MemoryJourneySink(), clock=FakeClock(), http=http).run(flow, call)
    assert record.outcome is outcome
    assert call.actions[0].text == "sip:claims@10.0.0.1"


async def test_runtime_guard_stops_a_data_dependent_busy_loop() -> None:
    from dataclasses import replace

    flow = small("""nodes:
  start: {type: set, values: {n: "default(n, 0) + 1"}, next: check}
  check:
    type: branch
    cases: [{when: "n > 0", goto: bye}]
    else: bye
  bye: {type: hangup}
""")
    # Bend the graph into a loop the validator would refuse, to prove the runtime guard holds.
    nodes = dict(flow.spec.nodes)
    nodes["check"] = replace(nodes["check"], cases=(replace(nodes["check"].cases[0], goto="start"),))  # type: ignore[arg-type, attr-defined]
    looping = replace(flow, spec=replace(flow.spec, nodes=nodes))
    sim, _ = await run(looping)
    assert sim.record.queue == "general"
    assert "steps without waiting" in sim.requests[0].context["error"]


def test_schedule_overnight_and_weekdays() -> None:
    from ivr.flow.nodes.logic import schedule_state

    flow = small("""nodes:
  start:
    type: schedule
    timezone: Asia/Shanghai
    hours: [{days: [fri], from: "22:00", to: "02:00"}]
    holidays: [2026-03-07]
    open: bye
    closed: bye
  bye: {type: hangup}
""")
    node = flow.spec.nodes["start"]
    at = lambda d, h, m=0: dt.datetime(2026, 3, d, h, m, tzinfo=SHANGHAI)  # noqa: E731
    assert schedule_state(node, at(6, 23)) == "open"  # Friday night
    assert schedule_state(node, at(7, 1, 59)) == "holiday"  # Saturday is a holiday
    assert schedule_state(node, at(14, 1, 59)) == "open"  # Saturday morning, Friday's shift
    assert schedule_state(node, at(14, 2)) == "closed"
    assert schedule_state(node, at(5, 23)) == "closed"  # Thursday
    utc = dt.datetime(2026, 3, 6, 14, 30, tzinfo=dt.UTC)  # 22:30 in Shanghai
    assert schedule_state(node, utc) == "open"


@pytest.mark.parametrize(
    ("digits", "luhn", "mod11"),
    [
        ("2018000014", True, False),
        ("2005123457", False, False),
        ("79927398713", True, False),
        ("1234567892", False, True),
        ("1234567893", False, False),
        ("1", False, False),
    ],
)
def test_checksums(digits: str, luhn: bool, mod11: bool) -> None:
    from ivr.flow.nodes.collect import luhn_ok, mod11_ok

    assert luhn_ok(digits) is luhn
    assert mod11_ok(digits) is mod11


@pytest.mark.parametrize(
    ("text", "digits"),
    [
        ("二零零五 一二三 四五六", "2005123456"),
        ("幺三九", "139"),
        ("two oh oh five", "2005"),
        ("12 34", "1234"),
    ],
)
def test_spoken_digits(text: str, digits: str) -> None:
    from ivr.flow.nodes.listening import spoken_digits

    assert spoken_digits(text) == digits


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("是的", True),
        ("不是", False),
        ("没错", True),
        ("不对", False),
        ("yes please", True),
        ("no", False),
        ("随便", None),
        ("not really", False),
    ],
)
def test_yes_no(text: str, answer: bool | None) -> None:
    from ivr.call import SpeechInput
    from ivr.flow.nodes.listening import yes_no

    assert yes_no(SpeechInput(text, 1.0, "cmn")) is answer


async def test_the_record_is_finished_before_the_engine_hangs_up() -> None:
    """A BYE can wait its whole transaction timeout for an answer; the record must not wait with it,
    whether the flow ends at a hangup node or through on_error."""
    from ivr.testing.simcall import Action, ActionKind

    endings = (
        "nodes:\n  start: {type: hangup}\n",
        "nodes:\n  start: {type: set, values: {x: \"int('abc')\"}, next: bye}\n  bye: {type: hangup}\n",
    )
    for nodes in endings:
        sim, _ = await run(small(nodes))
        order = [
            "hung_up" if isinstance(item, Action) else "finished"
            for item in sim.timeline
            if (isinstance(item, Action) and item.kind is ActionKind.HUNG_UP)
            or getattr(item, "kind", None) == StepKind.CALL_FINISHED.value
        ]
        assert order == ["finished", "hung_up"], nodes


async def test_the_welcome_is_the_open_questions_lead_in_and_is_not_repeated(hotline: Flow) -> None:
    """One listen covers the welcome and the open question (a caller may speak over the welcome);
    the re-prompt after silence does not welcome the caller again."""
    sim, _ = await run(hotline, Turn.silence(), Turn.say("我要报案"))
    assert sim.call.prompt_ids[:3] == ["greeting", "ask_need", "ask_need_silence"]
    assert sim.call.prompt_ids.count("greeting") == 1
    assert sim.record.queue == "claims"
    played = [e.data["prompt"] for e in sim.events if e.kind == StepKind.PROMPT_PLAYED.value]
    assert played[:3] == ["greeting", "ask_need", "ask_need_silence"]
    assert "greeting" not in sim.record.path, "the welcome is no node of its own"


GROWING = """variables: {n: 3, d: -1000000000000000000000}
nodes:
  start: {type: set, values: {n: "n * n"}, next: menu}
  menu: {type: menu, prompt: hi, keys: {"1": start, "2": rounding}}
  rounding: {type: set, values: {r: "round(5, d)"}, next: bye}
  bye: {type: hangup}
"""


async def test_a_value_growing_in_a_loop_goes_to_on_error_and_validate_warns() -> None:
    """`n * n` each time round: past ±10^18 the node fails and the caller reaches a human."""
    flow = small(GROWING)
    assert [w.split(": ", 1)[1] for w in flow.warnings if "grows" in w] == [
        "warning: node 'start' grows 'n' from itself with '*' each time its loop comes round: past the bounds of a "
        "value the call goes to on_error"
    ]
    sim, _ = await run(flow, *[Turn.keys("1")] * 10)
    assert sim.record.breakpoint_node == "start" and sim.record.queue == "general"
    error = next(e for e in sim.events if e.kind == StepKind.ERROR.value)
    assert "number beyond ±10^18" in error.data["error"]
    assert sim.record.path.count("start") == 6, "9, 81, 6561, 43046721, 1853020188851841, then too big"


async def test_round_with_huge_digits_goes_to_on_error_at_once() -> None:
    sim, _ = await run(small(GROWING), Turn.keys("2"))
    assert sim.record.breakpoint_node == "rounding" and sim.record.queue == "general"
    error = next(e for e in sim.events if e.kind == StepKind.ERROR.value)
    assert "round() digits must be between -15 and 15" in error.data["error"]
