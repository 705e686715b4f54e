"""A small demo back end for the hotline's data dips: customers (incl. elderly callers with a
preferred dialect) and policies. An aiohttp app; `DemoBackend` runs it in-process on a loopback port.

    GET /api/customers/{number}         → {name, age, elderly, dialect, vip} or 404
    GET /api/policies/{policy_no}?lang= → {policy_no, product, status, amount, next_due} or 404
    GET /api/health                     → {"ok": true}

Policy numbers are 10 digits with a Luhn check digit. Two are faulty on purpose: `FAILING_POLICY`
answers 500 and `SLOW_POLICY` answers only after `slow_s` seconds (a data-dip timeout).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType

from aiohttp import web


@dataclass(slots=True, frozen=True)
class Customer:
    name: str
    age: int
    dialect: str
    vip: bool = False

    @property
    def elderly(self) -> bool:
        return self.age >= 65


@dataclass(slots=True, frozen=True)
class Policy:
    product: Mapping[str, str]
    status: Mapping[str, str]
    amount: int
    """Sum assured, yuan."""
    next_due: str


CUSTOMERS: Mapping[str, Customer] = {
    "13800138000": Customer("张伟", 41, "cmn"),
    "13900000001": Customer("李秀英", 78, "yue"),
    "13900000002": Customer("王德福", 82, "nan"),
    "13900000003": Customer("陈阿婆", 75, "wuu"),
    "13900000004": Customer("刘伯", 70, "hak"),
    "13900000005": Customer("赵大爷", 80, "cmn"),
    "13700000007": Customer("John Smith", 52, "en", vip=True),
}
ELDERLY_CALLER = "13900000001"

_IN_FORCE = {"cmn": "有效", "en": "in force"}
_LAPSED = {"cmn": "已失效", "en": "lapsed"}
POLICIES: Mapping[str, Policy] = {
    "2005123456": Policy(
        {"cmn": "国寿福终身寿险", "en": "Guoshou Fu whole life"}, _IN_FORCE, 300000, "2026-03-15"
    ),
    "2018000014": Policy(
        {"cmn": "鑫享宝两全保险", "en": "Xinxiangbao endowment"}, _IN_FORCE, 120000, "2026-06-01"
    ),
    "2019007778": Policy(
        {"cmn": "康宁重大疾病保险", "en": "Kangning critical illness"}, _LAPSED, 500000, "2025-12-20"
    ),
}
FAILING_POLICY = "2021005000"
SLOW_POLICY = "2022009993"
UNKNOWN_POLICY = "2023123454"


def _lang(request: web.Request) -> str:
    return "en" if request.query.get("lang") == "en" else "cmn"


async def _customer(request: web.Request) -> web.Response:
    customer = CUSTOMERS.get(request.match_info["number"])
    if customer is None:
        return web.json_response({"error": "unknown customer"}, status=404)
    return web.json_response(
        {
            "name": customer.name,
            "age": customer.age,
            "elderly": customer.elderly,
            "dialect": customer.dialect,
            "vip": customer.vip,
        }
    )


async def _policy(request: web.Request) -> web.Response:
    number = request.match_info["policy_no"]
    if number == FAILING_POLICY:
        return web.json_response({"error": "policy system unavailable"}, status=500)
    if number == SLOW_POLICY:
        await asyncio.sleep(float(request.app[SLOW_KEY]))
    policy = POLICIES.get(number)
    if policy is None:
        return web.json_response({"error": "unknown policy"}, status=404)
    lang = _lang(request)
    return web.json_response(
        {
            "policy_no": number,
            "product": policy.product[lang],
            "status": policy.status[lang],
            "amount": policy.amount,
            "next_due": policy.next_due,
        }
    )


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


SLOW_KEY = web.AppKey("slow_s", float)


def make_app(*, slow_s: float = 5.0) -> web.Application:
    app = web.Application()
    app[SLOW_KEY] = slow_s
    app.router.add_get("/api/customers/{number}", _customer)
    app.router.add_get("/api/policies/{policy_no}", _policy)
    app.router.add_get("/api/health", _health)
    return app


class DemoBackend:
    """`async with DemoBackend() as backend: backend.url` — the app on 127.0.0.1, an ephemeral port."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, slow_s: float = 5.0) -> None:
        self._host = host
        self._port = port
        self._runner = web.AppRunner(make_app(slow_s=slow_s), access_log=None)
        self.url = ""

    async def start(self) -> str:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        port = self._port
        for address in self._runner.addresses:
            if isinstance(address, tuple) and len(address) >= 2:
                port = int(address[1])
        self.url = f"http://{self._host}:{port}"
        return self.url

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def __aenter__(self) -> DemoBackend:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


async def serve_forever(host: str, port: int) -> None:
    async with DemoBackend(host=host, port=port) as backend:
        print(f"demo back end on {backend.url}", flush=True)
        await asyncio.Event().wait()
