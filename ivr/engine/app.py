"""The engine: builds every part from the config, answers calls with flows, drains on SIGTERM.

This is the application layer over the libraries: SIP user agent, media engine, flow registry,
prompt library, speech models, ACD, store and web app are created here, in `start`, as typed fields,
and joined by small adapters (`calls`, `legs`, `dialer`, `handoff`, `agents`, `events`), so each
library stays ignorant of the others. Every part registers its shutdown as it is built, so `close`
undoes exactly what `start` did, in reverse, however far it got.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import pathlib
import secrets
import signal
import sys
from collections.abc import Callable, Coroutine, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from ivr.acd import Acd, AcdEvent
from ivr.acd import load_config as load_acd_config
from ivr.acd.events import NodeLost
from ivr.call import Call
from ivr.callback_policy import CallbackPolicy
from ivr.clock import Clock, LoopClock
from ivr.config import ENGLISH_MODELS, EngineConfig
from ivr.demo_backend import DemoBackend
from ivr.engine.agents import AgentDesk, AgentRegistrar, acd_backend
from ivr.engine.calls import FlowCalls
from ivr.engine.context import ContextPeers
from ivr.engine.deskcalls import DeskCalls, PhoneUser
from ivr.engine.dialer import SipLegs
from ivr.engine.dispatch import AcdDispatcher
from ivr.engine.ears import Ears
from ivr.engine.events import CallEvents
from ivr.engine.featurecodes import FeatureCodes
from ivr.engine.flowprompts import FlowPrompts
from ivr.engine.handoff import QueueHandoff
from ivr.engine.nodeparts import AnnouncedPrompts, node_parts, shared_phone_user
from ivr.engine.outbound import OutboundCalls, start_outbound
from ivr.engine.processors import (
    DialectMemoryProcessor,
    LiveViewProcessor,
    LogProcessor,
    MetricsProcessor,
    StoreProcessor,
)
from ivr.engine.supervision import RecordingParts
from ivr.engine.transfers import AgentTransfers
from ivr.engine.voicemail import StoredMessageBox
from ivr.errors import ConfigError, IvrError
from ivr.flow import FlowRegistry, Interpreter, ReloadResult
from ivr.flow.expr import Value
from ivr.flow.model import AskNode
from ivr.flow.nodes.menus import answer_phrases, ask_inputs
from ivr.outbound.scheduler import Scheduler
from ivr.rtp import MediaEngine
from ivr.sip import running_compiled
from ivr.sip.edge import SipEdge
from ivr.sip.listen import open_listeners
from ivr.sip.sdes import SrtpPolicy
from ivr.sip.sessiontimer import TimerPolicy
from ivr.sipua.calls import IncomingCall
from ivr.sipua.useragent import UserAgent
from ivr.speech import DecodePool, SpeechModels
from ivr.speech.models import ModelSpec
from ivr.store import SqlStore, open_store
from ivr.store.dialects import DialectWorker, DialectWriter, open_dialect_worker
from ivr.store.messages import MessageStore
from ivr.store.retention import run_retention
from ivr.voc import Classify, best_intent
from ivr.voice import (
    DialectSet,
    EspeakNgEngine,
    PromptLibrary,
    RenderCache,
    load_dialects,
    purge_personal_renders,
)
from ivr.voice.studio import PromptStudio
from ivr.web import CounterSources, EngineMetrics, LiveState, create_app, watch_counters
from ivr.web.agents import add_agent_routes
from ivr.web.node import NodeRole, add_node_routes
from ivr.web.outbound import add_outbound_routes
from ivr.web.recordings import add_recording_routes
from ivr.web.sources import FlowLoadStatus, FlowStatus

log = structlog.get_logger(__name__)


def speech_specs(config: EngineConfig) -> list[ModelSpec]:
    """English through `asr_engine`'s bundled model (Moonshine base-en, Whisper tiny.en or PocketSphinx en-us: all
    installed with the engine, so it works on a fresh machine), plus configured models (which may name another engine
    for "en"); a shipped model is converted into `model_cache_dir`."""
    specs = {"en": ModelSpec.from_mapping("en", ENGLISH_MODELS[config.asr_engine])}
    for dialect, raw in config.asr_models.items():
        specs[dialect] = ModelSpec.from_mapping(dialect, raw if isinstance(raw, Mapping) else {"model": raw})
    return [dataclasses.replace(spec, converted=config.model_cache_dir) for spec in specs.values()]


def english_engine(config: EngineConfig) -> str:
    """The engine that hears English needs (`asr_engine`, or `asr_models`' "en" entry): a flow's classifier trains on
    that engine's heard file (`ivr.flow.loader.heard_source`)."""
    return next(s for s in speech_specs(config) if s.dialect == "en").engine.value


@dataclass(slots=True, frozen=True)
class AgentQueues:
    """The ACD (from config/agents.yaml and queues.yaml) and what the engine hangs off it."""

    acd: Acd
    registrar: AgentRegistrar
    dispatcher: AcdDispatcher
    desk: AgentDesk


class Engine:
    store: SqlStore
    dialect_memory: DialectWorker
    events: CallEvents
    dialects: DialectSet
    registry: FlowRegistry
    prompts: PromptLibrary
    speech_models: SpeechModels
    decode_pool: DecodePool
    media: MediaEngine
    interpreter: Interpreter
    message_store: MessageStore
    demo_backend: DemoBackend | None
    agent_queues: AgentQueues | None
    ua: UserAgent
    uas: list[UserAgent]
    edge: SipEdge
    legs: SipLegs
    handoff: QueueHandoff | None
    recordings: RecordingParts
    calls: FlowCalls
    outbound: OutboundCalls | None

    def __init__(self, config: EngineConfig, clock: Clock | None = None, node: NodeRole | None = None,
                 holder: str | None = None) -> None:
        """`node`: this process is one worker of a node (`ivr serve --workers`; None: the node is this process);
        `holder`: then its own ACD node id, which the store keeps with its calls (None: `node_id`)."""
        self.config = config
        self.node = node
        self.holder = holder or config.node_id
        self.worker = holder is not None
        self.clock: Clock = clock or LoopClock()
        self.live = LiveState()
        self.metrics = EngineMetrics()
        self.ready = False
        self.stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._parts = contextlib.AsyncExitStack()
        """Every part's shutdown, pushed as the part is built: `close` runs them in reverse."""
        self.feature_codes = FeatureCodes()
        """Codes agents' and supervisors' phones dial (`*21`...): parts register theirs at start-up."""
        self.desk_calls: DeskCalls | None = None

    # -- start-up ---------------------------------------------------------------------------------

    async def start(self) -> None:
        cfg, parts = self.config, self._parts
        self.store = open_store(cfg.db, node_id=cfg.node_id, holder=self.holder)  # a path or postgresql:// URL
        parts.push_async_callback(asyncio.to_thread, self.store.close)
        self.dialect_memory = open_dialect_worker(cfg.db, clock=self.clock)  # off the loop (issue 22)
        parts.push_async_callback(asyncio.to_thread, self.dialect_memory.close)  # waits for queued writes
        self.events = CallEvents([
            StoreProcessor(self.store), LiveViewProcessor(self.live), MetricsProcessor(self.metrics),
            DialectMemoryProcessor(self.dialect_memory), LogProcessor(),
        ])
        self.dialects = load_dialects(cfg.dialects_dir)
        self.registry = FlowRegistry(cfg.flows_dir, clock=self.clock, fallbacks=self.dialects.fallbacks(),
                                     heard_engine=english_engine(cfg))
        for result in self.registry.load_all():
            self._on_reload(result)
        await self._start_speech_and_prompts()
        self.media = MediaEngine(host=cfg.sip_host, port_first=cfg.rtp_port_min, port_last=cfg.rtp_port_max,
                                 clock=self.clock, idle_silence=cfg.rtp_idle == "silence",
                                 keepalive_s=cfg.rtp_keepalive_s)
        parts.callback(self.media.close)
        self.message_store = MessageStore(self.store, cfg.messages_dir)  # voice messages (ivr.engine.voicemail)
        # The prompt-recording line (a flow's record_prompts node) records into the packs the prompts serve.
        studio = PromptStudio(self.prompts.dialects, cfg.prompts_dir,
                              lambda: [FlowPrompts.of(flow) for flow in self.registry.flows()],
                              cfg.prompt_line_pins, self.prompts)
        self.interpreter = Interpreter(sink=self.events, clock=self.clock, studio=studio,
                                       messages=StoredMessageBox(self.message_store, self._campaign_scheduler))
        parts.push_async_callback(self.interpreter.aclose)
        flow_variables: dict[str, Value] = {}
        self.demo_backend = DemoBackend() if cfg.demo_backend else None
        if self.demo_backend is not None:
            # The demo hotline's data dips go to a small back end served in-process (policies, customers).
            flow_variables["backend_url"] = await self.demo_backend.start()
            parts.push_async_callback(self.demo_backend.stop)
        self.agent_queues = await self._start_acd()
        # One user agent per listener (UDP sip_host:sip_port first, then `listen`: TCP, TLS), each writing
        # the advertised address in Via/Contact; calls we place leave from the first (ivr.sip.listen).
        self.edge = SipEdge(cfg.edge_policy())
        self.uas = []
        for transport in await open_listeners(
            cfg.sip_listeners(), advertise=cfg.advertise_address, clock=self.clock, tls_certificate=cfg.tls_certificate,
            tls_private_key=cfg.tls_private_key, tls_ca_file=cfg.tls_ca_file,
        ):
            parts.push_async_callback(transport.close)
            self.uas.append(UserAgent(
                transport,
                self.clock,
                on_incoming_call=self._on_incoming_call,
                accept_number=self._accepts_number,
                max_calls=cfg.max_calls,
                registrar=self.agent_queues.registrar if self.agent_queues else None,
                edge=self.edge,
                session_timer=TimerPolicy(cfg.session_expires, cfg.min_se),
            ))
            parts.push_async_callback(self.uas[-1].close)
        self.ua = self.uas[0]
        self.legs = SipLegs(self.ua, self.media, self.prompts, self.clock, cfg.media_address(),
                            symmetric=cfg.rtp_symmetric, srtp=SrtpPolicy(cfg.srtp))
        parts.push_async_callback(self.legs.aclose)
        self.handoff = None
        if self.agent_queues is not None:
            transfers = AgentTransfers(self.agent_queues.acd, self.legs, self.events, self.clock, cfg.callback_uri,
                                       cfg.transfer_numbers)
            self.handoff = QueueHandoff(self.agent_queues.acd, self.legs, self.events, self.clock, cfg.callback_uri,
                                        CallbackPolicy(cfg.callback_rules()), transfers)
            self._spawn(self.handoff.run_callbacks(), "acd-callbacks")
            # Agents' phones: REFER to hand a caller on, feature codes, consultation calls (issue 20).
            for ua in self.uas:
                ua.core.refer_listener = self.handoff.transfers.refer_received
            self.agent_queues.desk.register_codes(self.feature_codes)
            self._spawn(self.agent_queues.desk.keep_figures_fresh(), "agent-figures")
            phone_user: PhoneUser = self.agent_queues.registrar.phone_user
            if self.worker:  # the phone may have registered with another worker: the ACD has its address
                phone_user = shared_phone_user(phone_user, self.agent_queues.acd)
            self.desk_calls = DeskCalls(self.agent_queues.acd, phone_user,
                                        self.feature_codes, self.handoff.transfers, self.legs, self.clock)
        # Call recording and supervisors on bridged calls (issue 20, ivr.engine.recordings/supervision).
        self.recordings = RecordingParts(cfg, self.agent_queues.acd if self.agent_queues else None, self.live,
                                         self.legs, self.events, self.clock)
        parts.push_async_callback(self.recordings.aclose)
        if self.agent_queues is not None:
            self.recordings.supervision.register(self.feature_codes)  # *31/*32/*33<agent>
        self.calls = FlowCalls(
            registry=self.registry, interpreter=self.interpreter, legs=self.legs,
            ears=lambda: Ears(self.decode_pool, self.speech_models, self.clock),
            queues=self.recordings.queues(self.handoff),
            events=self.events, dialect_memory=self.dialect_memory, flow_variables=flow_variables, clock=self.clock,
            trusted=self.edge.trusted, context_peer=ContextPeers(cfg.context_peers), desk=self.desk_calls,
        )
        for ua in self.uas:  # each call's task runs FlowCalls itself: one coroutine frame fewer at every resume
            ua.on_incoming_call = self.calls
        self.outbound = start_outbound(self, flow_variables)  # None unless `campaigns_dir` is configured
        if self.outbound is not None:
            parts.push_async_callback(self.outbound.aclose)
            self._spawn(self.outbound.run(self.stopping), "outbound")
        await self._start_web()
        self._spawn(self._watch_flows(), "flow-watch")
        if self.node is None or self.node.front:  # once per node: the other workers share the store
            self._spawn(self._retention(), "retention")
        self.ready = True
        log.info("engine_ready", sip=f"{cfg.sip_host}:{cfg.sip_port}", http=f"{cfg.http_host}:{cfg.http_port}",
                 sip_layer="compiled" if running_compiled() else "pure Python")

    def _message_needs(self) -> Classify | None:
        """The flows' intent classifiers as one, for the voice-of-the-customer needs (None: no flow has intents)."""
        classifiers = [flow.classifier for flow in self.registry.flows() if flow.classifier is not None]
        return best_intent(classifiers) if classifiers else None

    def _campaign_scheduler(self) -> Scheduler | None:
        """The outbound scheduler once started (voice messages become callback targets through it)."""
        outbound: OutboundCalls | None = getattr(self, "outbound", None)
        return outbound.scheduler if outbound is not None else None

    async def _start_speech_and_prompts(self) -> None:
        cfg, parts = self.config, self._parts
        library = AnnouncedPrompts if self.node is not None else PromptLibrary
        self.prompts = library(self.dialects, EspeakNgEngine(), RenderCache(cfg.prompt_cache_dir), cfg.prompts_dir)
        parts.callback(self.prompts.close)
        flows = [FlowPrompts.of(flow) for flow in self.registry.flows()]
        report = await asyncio.to_thread(self.prompts.build, flows)
        log.info("prompts_ready", rendered=report.rendered, from_cache=report.from_cache,
                 recordings=report.recordings, unavailable=len(report.unavailable))
        self.speech_models = await asyncio.to_thread(SpeechModels.load, speech_specs(cfg))
        specs = {d: self.speech_models.spec(d) for d in self.speech_models.dialects}
        log.info("speech_models_loaded", engines={d: spec.engine.value for d, spec in specs.items()},
                 answers={d: spec.answers.engine.value for d, spec in specs.items() if spec.answers is not None})
        parts.push_async_callback(asyncio.to_thread, self.speech_models.close)
        await asyncio.to_thread(self.speech_models.start_hosts, cfg.asr_processes)
        await asyncio.to_thread(self._prepare_speech)
        self.decode_pool = DecodePool(cfg.asr_workers, max_recognizers=cfg.asr_max_decoders,
                                      max_lag_s=cfg.asr_max_lag_s, clock=self.clock)
        parts.push_async_callback(asyncio.to_thread, self.decode_pool.close)

    async def _start_acd(self) -> AgentQueues | None:
        """The ACD from config/agents.yaml and config/queues.yaml; without them, no queues (flows go on).
        Also the web API's emergency dispatcher over it, recording the ACD's own changes in the store."""
        cfg = self.config
        if not cfg.agents_file.exists() or not cfg.queues_file.exists():
            log.warning("acd_not_configured", agents=str(cfg.agents_file), queues=str(cfg.queues_file))
            return None
        acd_config = load_acd_config(cfg.agents_file, cfg.queues_file)
        acd = Acd(acd_config, acd_backend(dataclasses.replace(cfg, node_id=self.holder)), self.clock)
        dispatcher = AcdDispatcher(acd, self.store)  # before start: hears night hours already on
        await acd.start()
        self._parts.push_async_callback(acd.close)
        acd.add_listener(self._on_node_lost)
        desk = AgentDesk(acd, self.live, self.clock)
        acd.add_listener(desk.publish)
        desk.publish()
        registrar = AgentRegistrar(acd_config, desk.registration_changed, secrets.token_bytes(16),
                                   **cfg.registrar_options())
        return AgentQueues(acd, registrar, dispatcher, desk)

    def _on_node_lost(self, event: AcdEvent) -> None:
        """Another node of the cluster died: its heir (one node, so once) closes the calls it left in the
        shared store as interrupted, as a restarted node does for its own."""
        if isinstance(event, NodeLost) and event.heir == self.holder:
            self.store.node_lost(event.node)

    async def _start_web(self) -> None:
        from aiohttp import web

        from ivr.web import server_access
        from ivr.web.messages import add_message_routes

        # The SIP, edge, registrar and media layers' own totals, copied onto /metrics at each scrape.
        watch_counters(self.metrics, CounterSources(
            sip=tuple(ua.endpoint for ua in self.uas),
            over_capacity=lambda: sum(ua.endpoint.layer.dropped_over_capacity for ua in self.uas),
            edge=self.edge.counters, media=self.media.counters, dialect_memory=self.dialect_memory,
            speech_shed=lambda: self.decode_pool.backlog.shed,
            registrar=self.agent_queues.registrar.counters if self.agent_queues else None,
        ))  # fmt: skip
        app = create_app(
            store=self.store,
            live=self.live,
            # Queues and agents reach the dashboard through the live view (fed by the ACD listener).
            acd=None,
            # Emergency dispatch over the ACD (None without agents.yaml/queues.yaml: the API answers 503).
            dispatcher=self.agent_queues.dispatcher if self.agent_queues else None,
            dialects=DialectSetterAdapter(self.dialect_memory, set(self.dialects)),
            metrics=self.metrics,
            ready=lambda: self.ready,
            # Tokens: config api_tokens, IVR_API_TOKEN, or var/api-token made at first start (ivr.web.access).
            access=server_access(self.config),
            draining=lambda: self.ua.draining,
        )
        if self.outbound is not None:
            add_outbound_routes(app, self.outbound)
        if self.agent_queues is not None:
            add_agent_routes(app, self.agent_queues.desk, self.live)
        add_message_routes(app, self.message_store, self._message_needs)
        add_recording_routes(app, self.recordings.api)
        if self.node is not None:  # one worker of several: worker 0's port shows and serves the whole node
            front = add_node_routes(app, self.node, node_parts(
                self.live, self.clock, self.store, self.agent_queues.desk if self.agent_queues else None, self.prompts,
                self.config.prompts_dir))  # fmt: skip
            if isinstance(self.prompts, AnnouncedPrompts):
                self.prompts.announce_to(front)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        self._parts.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, self.config.http_host, self.config.http_port)
        await site.start()

    async def _retention(self) -> None:
        """Purge what is older than the retention period: records and journeys, and the TTS renders
        of caller-specific texts (names, amounts), which are personal data too."""
        cache_dir = self.config.prompt_cache_dir

        def purge_renders(before: datetime) -> int:
            return purge_personal_renders(cache_dir, before)

        await run_retention(self.store, self.config.retention_days, self.clock, render_purgers=[purge_renders],
                            message_purgers=[self.message_store.purge],
                            recording_purgers=self.recordings.purgers())

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        self._tasks.append(asyncio.get_running_loop().create_task(work, name=name))

    def _prepare_speech(self) -> None:
        """Build every open question's phrase bias, and its re-ask's (a closed turn: `menus.answer_spec`, heard by the
        dialect's answers engine if it has one), now, so no call waits for it (blocking)."""
        prepared: set[tuple[str, tuple[str, ...], bool]] = set()
        for flow in self.registry.flows():
            for node in flow.spec.nodes.values():
                if not isinstance(node, AskNode):
                    continue
                for dialect in flow.spec.dialects:
                    languages, phrases = ask_inputs(flow, node, dialect)
                    answers = answer_phrases(node, languages)
                    for language in languages:
                        for turn, closed in ((phrases, False), (answers, True)):
                            if (closed and not turn) or (language, turn, closed) in prepared:
                                continue
                            prepared.add((language, turn, closed))
                            self.speech_models.prepare(language, turn, recognizers=self.config.asr_prewarm,
                                                       closed=closed)
        log.info("speech_prepared", biases=len(prepared))

    # -- flows ------------------------------------------------------------------------------------

    def _on_reload(self, result: ReloadResult) -> None:
        for status in self.registry.status():
            self.live.flow_status(
                FlowStatus(
                    flow_id=status.flow_id or pathlib.Path(status.path).stem,
                    version=status.version,
                    status=FlowLoadStatus.REFUSED if status.refused
                    else FlowLoadStatus.FAILED if status.errors else FlowLoadStatus.LOADED,
                    loaded_at=status.loaded_at,
                    errors=status.errors,
                    path=status.path,
                )
            )
        self.metrics.flow_reloads.labels("ok" if not getattr(result, "errors", ()) else "refused").inc()

    async def _watch_flows(self) -> None:
        reloads: asyncio.Queue[ReloadResult] = asyncio.Queue()
        watcher = asyncio.create_task(self.registry.watch(stop=self.stopping, on_reload=reloads))
        try:
            while not watcher.done():
                result = await reloads.get()
                self._on_reload(result)
                await self.prompts.rebuild([FlowPrompts.of(f) for f in self.registry.flows()])
                await asyncio.to_thread(self._prepare_speech)
        finally:
            watcher.cancel()

    # -- calls ------------------------------------------------------------------------------------

    def _accepts_number(self, dialed: str) -> bool:
        """Admission: a flow's number, or one only agents' phones call (a feature code, an agent)."""
        if self.registry.flow_for_number(dialed) is not None:
            return True
        return self.desk_calls is not None and self.desk_calls.accepts(dialed)

    async def _on_incoming_call(self, incoming: IncomingCall) -> None:
        """A call that arrives while start-up builds `FlowCalls` (the user agents are pointed at it after)."""
        await self.calls(incoming)

    # -- shut-down --------------------------------------------------------------------------------

    async def drain(self) -> None:
        """No new calls (503); wait for the calls in progress, up to the drain timeout."""
        log.info("engine_draining", calls=len(self._calls_in_progress()))
        for ua in self.uas:
            ua.drain()
        if calls := self._calls_in_progress():
            with contextlib.suppress(TimeoutError):
                async with self.clock.timeout(self.config.drain_timeout_s):
                    await asyncio.wait(calls)
        log.info("engine_drained", calls_left=len(self._calls_in_progress()))

    def _calls_in_progress(self) -> set[asyncio.Task[Any]]:
        """Answered calls and, with campaigns, the outbound calls placed."""
        outbound = self.outbound.in_progress if self.outbound is not None else set()
        return {*self.calls.in_progress, *outbound}

    async def close(self) -> None:
        self.ready = False
        self.stopping.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._parts.aclose()


class DialectSetterAdapter:
    """`PUT /api/callers/{number}/dialect`: ops set a caller's dialect for their next call."""

    def __init__(self, memory: DialectWriter, known: set[str]) -> None:
        self._memory = memory
        self._known = known

    async def set_dialect(self, caller: str, dialect: str) -> None:
        if dialect not in self._known:
            raise ConfigError(f"unknown dialect {dialect!r} (known: {', '.join(sorted(self._known))})")
        self._memory.set(caller, dialect)


Running = Callable[[Engine], AbstractAsyncContextManager[object]]
"""What runs around a started engine until it drains (`ivr.workers`: loop-lag monitor, GC, shared port)."""


async def serve(config: EngineConfig, running: Running | None = None, node: NodeRole | None = None,
                holder: str | None = None) -> int:
    loop = asyncio.get_running_loop()
    engine = Engine(config, LoopClock(loop), node=node, holder=holder)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await engine.start()
        async with running(engine) if running is not None else contextlib.nullcontext():
            await stop.wait()
            await engine.drain()
    finally:
        await engine.close()
    return 0


def serve_main(config: EngineConfig, running: Running | None = None, node: NodeRole | None = None,
               holder: str | None = None) -> int:
    """Run the engine with `config` (resolved by `ivr.cli` from flags, environment and file); `node`,
    `holder`: as one worker of a node (`ivr.workers`)."""
    import uvloop

    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(serve(config, running, node, holder))
    except (IvrError, OSError) as exc:
        log.error("engine_failed", error=str(exc))
        print(f"ivr serve: {exc}", file=sys.stderr, flush=True)
        return 1


__all__ = ["Engine", "serve", "serve_main", "Call"]
