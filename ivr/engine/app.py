"""The engine: builds every part from the config, answers calls with flows, drains on SIGTERM.

This is the application layer over the libraries: SIP user agent, media engine, flow registry,
prompt library, speech models, ACD, store and web app are created here and joined by small
adapters, so each library stays ignorant of the others.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pathlib
import signal
from collections.abc import Awaitable, Callable, Mapping

import structlog

from ivr.call import Call
from ivr.clock import LoopClock
from ivr.config import EngineConfig, load_config, parse_hostport
from ivr.engine.ears import Ears
from ivr.engine.journeys import EngineJourneySink
from ivr.engine.sipcall import QueueService, SipCall
from ivr.errors import ConfigError, IvrError
from ivr.flow import FlowRegistry, Interpreter, ReloadResult
from ivr.flow.expr import Value
from ivr.flow.model import AskNode
from ivr.flow.nodes.menus import ask_inputs
from ivr.rtp import MediaEngine, MediaParams
from ivr.sip.calls import IncomingCall
from ivr.sip.sdp import SessionDescription, answer_offer, negotiated_codec
from ivr.sip.transport import SipTransport
from ivr.sip.useragent import UserAgent
from ivr.speech import DecodePool, SpeechModels
from ivr.speech.models import ModelSpec
from ivr.speech.recognizer import EngineKind
from ivr.store import SqliteStore
from ivr.voice import (
    DialectMemory,
    EspeakNgEngine,
    FlowPrompts,
    PromptLibrary,
    RenderCache,
    SqliteDialectMemory,
    load_dialects,
)
from ivr.web import EngineMetrics, LiveState, create_app
from ivr.web.sources import FlowLoadStatus, FlowStatus

log = structlog.get_logger(__name__)


def speech_specs(config: EngineConfig) -> list[ModelSpec]:
    """English through PocketSphinx's bundled model (works on a fresh machine), plus configured models."""
    specs = {"en": ModelSpec("en", EngineKind.POCKETSPHINX)}
    for dialect, raw in config.asr_models.items():
        specs[dialect] = ModelSpec.from_mapping(dialect, raw if isinstance(raw, Mapping) else {"model": raw})
    return list(specs.values())


class Engine:
    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.clock = LoopClock()
        self.live = LiveState()
        self.metrics = EngineMetrics()
        self.ready = False
        self.stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._call_tasks: set[asyncio.Task[object]] = set()
        self.closers: list[Callable[[], Awaitable[None]]] = []
        """Shutdown steps registered by optional parts (the ACD), run in reverse order."""
        self._session_seq = int.from_bytes(os.urandom(3), "big")

    # -- start-up ---------------------------------------------------------------------------------

    async def start(self) -> None:
        cfg = self.config
        cfg.db_path.parent.mkdir(parents=True, exist_ok=True)
        self.store = SqliteStore(cfg.db_path, node_id=cfg.node_id)
        self.dialect_memory: DialectMemory = SqliteDialectMemory(cfg.db_path)
        self.sink = EngineJourneySink(self.store, self.live, self.metrics, self.dialect_memory)
        self.dialects = load_dialects(cfg.dialects_dir)
        self.registry = FlowRegistry(cfg.flows_dir, clock=self.clock, fallbacks=self.dialects.fallbacks())
        for result in self.registry.load_all():
            self._on_reload(result)
        self.prompts = PromptLibrary(
            self.dialects, EspeakNgEngine(), RenderCache(cfg.prompt_cache_dir), cfg.prompts_dir
        )
        flows = [FlowPrompts.of(flow) for flow in self.registry.flows()]
        report = await asyncio.to_thread(self.prompts.build, flows)
        log.info("prompts_ready", rendered=report.rendered, from_cache=report.from_cache,
                 recordings=report.recordings, unavailable=len(report.unavailable))
        self.speech_models = await asyncio.to_thread(SpeechModels.load, speech_specs(cfg))
        await asyncio.to_thread(self.speech_models.start_hosts, cfg.asr_processes)
        await asyncio.to_thread(self._prepare_speech)
        self.decode_pool = DecodePool(cfg.asr_workers, max_recognizers=cfg.asr_max_decoders)
        self.media = MediaEngine(host=cfg.sip_host, port_first=cfg.rtp_port_min, port_last=cfg.rtp_port_max)
        self.interpreter = Interpreter(sink=self.sink, clock=self.clock)
        self.flow_variables: dict[str, Value] = {}
        await self._start_demo_backend()
        self.queues: QueueService | None = await self._start_acd()
        transport = await SipTransport.open(cfg.sip_host, cfg.sip_port)
        self.ua = UserAgent(
            transport,
            self.clock,
            on_incoming_call=self._on_incoming_call,
            accept_number=lambda dialed: self.registry.flow_for_number(dialed) is not None,
            max_calls=cfg.max_calls,
            registrar=self.registrar,
        )
        await self._start_web()
        self._tasks.append(asyncio.create_task(self._watch_flows(), name="flow-watch"))
        self.ready = True
        log.info("engine_ready", sip=f"{cfg.sip_host}:{cfg.sip_port}", http=f"{cfg.http_host}:{cfg.http_port}")

    async def _start_demo_backend(self) -> None:
        """The demo hotline's data dips go to a small back end served in-process (policies, customers)."""
        from ivr.demo_backend import DemoBackend

        self.demo_backend = DemoBackend()
        self.flow_variables["backend_url"] = await self.demo_backend.start()

    async def _start_acd(self) -> QueueService | None:
        from ivr.engine.handoff import start_acd

        handoff, self.registrar, self.dispatcher = await start_acd(self)
        return handoff


    async def _start_web(self) -> None:
        from aiohttp import web

        app = create_app(
            store=self.store,
            live=self.live,
            # Queues and agents reach the dashboard through the live view (fed by the ACD listener).
            acd=None,
            # Emergency dispatch over the ACD (None without agents.yaml/queues.yaml: the API answers 503).
            dispatcher=self.dispatcher,
            dialects=DialectSetterAdapter(self.dialect_memory, set(self.dialects)),
            metrics=self.metrics,
            ready=lambda: self.ready,
        )
        self.web_runner = web.AppRunner(app, access_log=None)
        await self.web_runner.setup()
        site = web.TCPSite(self.web_runner, self.config.http_host, self.config.http_port)
        await site.start()

    def _prepare_speech(self) -> None:
        """Build every open question's phrase bias now, so no call waits for it (blocking)."""
        prepared: set[tuple[str, tuple[str, ...]]] = set()
        for flow in self.registry.flows():
            for node in flow.spec.nodes.values():
                if not isinstance(node, AskNode):
                    continue
                for dialect in flow.spec.dialects:
                    languages, phrases = ask_inputs(flow, node, dialect)
                    for language in languages:
                        if (language, phrases) not in prepared:
                            prepared.add((language, phrases))
                            self.speech_models.prepare(language, phrases, recognizers=self.config.asr_prewarm)
        log.info("speech_prepared", biases=len(prepared))

    # -- flows ------------------------------------------------------------------------------------

    def _on_reload(self, result: ReloadResult) -> None:
        for status in self.registry.status():
            self.live.flow_status(
                FlowStatus(
                    flow_id=status.flow_id or pathlib.Path(status.path).stem,
                    version=status.version,
                    status=FlowLoadStatus.FAILED if status.errors else FlowLoadStatus.LOADED,
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

    async def _on_incoming_call(self, incoming: IncomingCall) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._call_tasks.add(task)
        task.add_done_callback(self._call_tasks.discard)
        flow = self.registry.flow_for_number(incoming.dialed)
        if flow is None:  # removed between admission and now
            incoming.reject(404)
            return
        offer = SessionDescription.parse(incoming.offer)
        media = await self.media.open_session(call_id=incoming.call_id)
        try:
            self._session_seq += 1
            answer = answer_offer(
                offer, local_address=self.config.sip_host, local_port=media.local_port,
                session_id=self._session_seq,
            )
            negotiated = negotiated_codec(answer)
            remote = negotiated_codec(offer)
            incoming.ring()
            leg = incoming.answer(answer.serialize())
            media.start(
                MediaParams(
                    remote=(remote.remote_address, remote.remote_port),
                    payload_type=negotiated.payload_type,
                    telephone_event_pt=negotiated.dtmf_payload_type,
                )
            )
            call = SipCall(
                leg=leg, media=media, caller=incoming.caller, dialed=incoming.dialed,
                prompts=self.prompts, ears=Ears(self.decode_pool, self.speech_models, self.clock),
                queues=self.queues, clock=self.clock,
            )
            await self._run_flow(flow, call)
        finally:
            self.media.release(media)

    async def _run_flow(self, flow: object, call: SipCall) -> None:
        from ivr.flow import Flow

        assert isinstance(flow, Flow)
        variables: dict[str, Value] = dict(self.flow_variables)
        remembered = self.dialect_memory.get(call.caller)
        if remembered:
            variables["remembered_dialect"] = remembered
            if remembered in flow.spec.dialects:
                # The caller is greeted in it even when the flow never reaches a node that reads
                # `remembered_dialect` (a caller the back end does not know, a failed lookup).
                variables["dialect"] = remembered
        dialect = str(variables.get("dialect") or flow.spec.default_dialect)
        self.live.call_started(call.call_id, call.caller, call.dialed, self.clock.wall(), dialect=dialect,
                               flow_id=flow.id)
        self.metrics.calls_total.inc()
        try:
            await self.interpreter.run(flow, call, variables=variables)
        finally:
            self.live.call_ended(call.call_id)
            await call.aclose()

    # -- shut-down --------------------------------------------------------------------------------

    async def drain(self) -> None:
        """No new calls (503); wait for the calls in progress, up to the drain timeout."""
        log.info("engine_draining", calls=len(self._call_tasks))
        self.ua.drain()
        if self._call_tasks:
            await asyncio.wait(set(self._call_tasks), timeout=self.config.drain_timeout_s)
        log.info("engine_drained", calls_left=len(self._call_tasks))

    async def close(self) -> None:
        self.ready = False
        self.stopping.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if hasattr(self, "ua"):
            await self.ua.close()
            await self.ua.transport.close()
        for closer in reversed(self.closers):
            await closer()
        if hasattr(self, "web_runner"):
            await self.web_runner.cleanup()
        if hasattr(self, "demo_backend"):
            await self.demo_backend.stop()
        if hasattr(self, "interpreter"):
            await self.interpreter.aclose()
        if hasattr(self, "media"):
            self.media.close()
        if hasattr(self, "decode_pool"):
            await asyncio.to_thread(self.decode_pool.close)
        if hasattr(self, "speech_models"):
            await asyncio.to_thread(self.speech_models.close)
        if hasattr(self, "prompts"):
            self.prompts.close()
        if hasattr(self, "store"):
            await asyncio.to_thread(self.store.close)


class DialectSetterAdapter:
    """`PUT /api/callers/{number}/dialect`: ops set a caller's dialect for their next call."""

    def __init__(self, memory: DialectMemory, known: set[str]) -> None:
        self._memory = memory
        self._known = known

    async def set_dialect(self, caller: str, dialect: str) -> None:
        if dialect not in self._known:
            raise ConfigError(f"unknown dialect {dialect!r} (known: {', '.join(sorted(self._known))})")
        self._memory.set(caller, dialect)


async def serve(config: EngineConfig) -> int:
    engine = Engine(config)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await engine.start()
        await stop.wait()
        await engine.drain()
    finally:
        await engine.close()
    return 0


def serve_main(args: argparse.Namespace) -> int:
    try:
        config = load_config(pathlib.Path(args.config) if args.config else None)
        sip_host, sip_port = parse_hostport(args.sip, default_port=5060)
        http_host, http_port = parse_hostport(args.http, default_port=8080)
        config = config.replace(
            flows_dir=pathlib.Path(args.flows), db_path=pathlib.Path(args.db),
            sip_host=sip_host, sip_port=sip_port, http_host=http_host, http_port=http_port,
        )
    except IvrError as exc:
        print(f"ivr serve: {exc}", flush=True)
        return 2
    import uvloop

    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(serve(config))
    except (IvrError, OSError) as exc:
        log.error("engine_failed", error=str(exc))
        print(f"ivr serve: {exc}", flush=True)
        return 1


__all__ = ["Engine", "serve", "serve_main", "Call"]
