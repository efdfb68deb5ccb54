"""The ASGI application: ``POST /v1/Waas/<Method>``, ``GET|HEAD /healthz`` (liveness),
``/readyz`` (readiness, :mod:`.health`), ``/metrics`` and ``/openapi.json``; a mounted
component answers its own paths (:mod:`.mounts`: :mod:`sessionward.server` mounts the review
pages of :mod:`sessionward.ui` at ``/ui``).

The HTTP layer only translates. A request goes through, in order:

1. routing (unknown method → 404 ``METHOD_UNKNOWN``, wrong verb → 405);
2. the body, bounded by ``max_body_bytes`` on ``Content-Length`` and while reading (413);
3. on the event loop, fair scheduling (:mod:`.fairness`): a request naming a credential whose
   rate bucket is empty is refused (429) without a worker thread; the others wait for a slot
   in a queue per tenant, served round-robin; every 429 is answered after
   ``rate_limit_hold_s`` (backpressure);
4. then, in a worker thread (the service and the store are synchronous): authentication of the
   raw bytes (:mod:`.auth`), the ``Idempotency-Key`` claim for mutations (:mod:`.idempotency`),
   strict JSON and the request model (:mod:`.body`), the one service call (:mod:`.methods`),
   and the stored answer for the key. Execute does all of it in one unit of work, on the one
   thread of a :class:`~.unit_writer.UnitWriter`, committed with the units queued beside it
   (SQLite and PostgreSQL alike). The revocation methods and LiftFreeze do it in one durable
   unit of work each, in a worker thread.

Every response carries ``X-Request-Id``; every error has the shape of :mod:`.errors`; a
database outage becomes 503 ``DATABASE_UNAVAILABLE`` with ``Retry-After``; anything else
unexpected becomes a logged 500 of that shape, with no stack trace or secret in the body.

The app neither starts nor stops the :class:`Waas` it is given: the caller runs
``waas.start()`` before serving (relaying) and ``waas.stop()`` afterwards.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from functools import partial
from typing import Any, Final

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from sessionward.crypto.http_names import (
    IDEMPOTENCY_HEADER,
    METHOD_PREFIX,
    REQUEST_ID_HEADER,
    SIGNATURE_HEADER,
)
from sessionward.reasons import ReasonCode, SessionWardError
from sessionward.service.errors import ServiceError
from sessionward.service.waas import Waas

from .answers import Outcome
from .auth import Authenticator, KeyToClaim, Principal, single_header
from .body import declared_length, parse_document, read_bounded, validate
from .errors import (
    RETRY_AFTER_S,
    ApiError,
    from_service_error,
    internal_error,
    method_unknown,
)
from .fairness import FairScheduler, claimed_credential, tenant_of
from .health import Readiness, database_outage, unavailable
from .http_guard import RAW_TARGET
from .idempotency import Idempotency, well_formed
from .methods import METHODS, Method
from .metrics import ApiMetrics
from .mounts import Mount, MountedRoutes
from .openapi import openapi_document
from .unit_writer import UnitWriter

_log = logging.getLogger("sessionward.api")

JSON: Final = "application/json"


def dump_json(value: object) -> bytes:
    """JSON bytes; orjson when it can (it refuses integers beyond 64 bits), else the stdlib."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _new_request_id() -> str:
    return "req_" + secrets.token_hex(12)


def _path_with_query(scope: Scope) -> str:
    """The request target exactly as received, what the signature preimage commits to.

    Served by :mod:`sessionward.server`, the target's own bytes (``/v1/Waas/Execute?`` keeps its
    bare ``?``; see :mod:`.http_guard`); a target the protocol never produces (absolute or
    ``*`` form, a ``#`` fragment) is refused. Under another ASGI server, the raw path
    (percent-encoding untouched) and query, which cannot tell a bare ``?`` from none.
    """
    extensions = scope.get("extensions") or {}
    target = extensions.get(RAW_TARGET)
    if isinstance(target, bytes):
        text = target.decode("latin-1")
        if not text.startswith("/") or "#" in text:
            raise ApiError(
                400,
                "InvalidRequest",
                ReasonCode.REQUEST_TARGET_MALFORMED,
                "the request target must be a path (and query) starting with /, no fragment",
                reason="request target",
            )
        return text
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else str(scope["path"])
    query = scope.get("query_string", b"")
    return f"{path}?{query.decode('latin-1')}" if query else path


class _Disconnected(Exception):
    """The client went away (or was timed out) before its body arrived: nothing to answer."""


async def _chunks(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected  # never run a request on part of its body
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


class SessionWardApi:
    """The ASGI callable. ``metrics`` is public so that embedders can add their own series to
    ``metrics.registry``."""

    def __init__(
        self,
        waas: Waas,
        *,
        clock_ms: Callable[[], int] | None = None,
        mounts: Sequence[Mount] = (),
    ) -> None:
        self.waas = waas
        self.metrics = ApiMetrics()
        self.metrics.watch_reconciler(waas.reconciler_snapshot)  # every network's, summed
        self._limit = waas.runtime.settings.max_body_bytes
        self._auth = (
            Authenticator(waas) if clock_ms is None else Authenticator(waas, clock_ms=clock_ms)
        )
        self._idempotency = Idempotency(waas.idempotency)
        self._openapi = orjson.dumps(openapi_document())
        self._mounts: tuple[tuple[Mount, MountedRoutes], ...] = tuple(
            (mount, mount.routes(waas, self._auth)) for mount in mounts
        )
        self._readiness = Readiness(waas)
        self._entry = _with_cors(self._handle, waas.runtime.settings.cors_origins)
        # Requests that run as one unit of work (Prepare, Execute) run on one thread and
        # commit in groups (Waas.groups_units: both databases); see unit_writer.
        self._unit_writer: UnitWriter[Outcome] | None = (
            UnitWriter(waas.run_units) if waas.groups_units else None
        )
        # Fair scheduling between tenants (issue 14; .fairness): before any expensive work.
        settings = waas.runtime.settings
        self._threads: FairScheduler | None = None
        self._units: FairScheduler | None = None
        if settings.fair_scheduling_enabled:
            queued = settings.fair_max_queued_per_tenant
            self._threads = FairScheduler(slots=settings.fair_max_running, max_queued=queued)
            self._units = FairScheduler(slots=settings.fair_max_running_units, max_queued=queued)
        self._refusal_hold_s = settings.rate_limit_hold_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":  # websockets are not part of this API
            return
        await self._entry(scope, receive, send)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = _new_request_id()
        path = str(scope.get("path", ""))
        label = _label(path, self._mounts)
        try:
            status, body, headers = await self._route(scope, receive, path, request_id)
        except ApiError as exc:
            status, body, headers = _error(exc, request_id)
        except _Disconnected:
            return
        except Exception as exc:
            if database_outage(exc):  # 503 + Retry-After: the retry gets a fresh connection
                status, body, headers = _error(unavailable(exc), request_id)
            else:
                _log.exception("unexpected error in %s (request %s)", label, request_id)
                status, body, headers = _error(internal_error(), request_id)
        self.metrics.request(label, status)
        media_type = headers.pop("content-type", JSON)
        headers[REQUEST_ID_HEADER] = request_id
        await Response(body, status, headers, media_type)(scope, receive, send)

    async def _route(self, scope: Scope, receive: Receive, path: str, request_id: str) -> Outcome:
        verb = scope["method"]
        if path.startswith(METHOD_PREFIX):
            method = METHODS.get(path[len(METHOD_PREFIX) :])
            if method is None:
                raise method_unknown(path[len(METHOD_PREFIX) :])
            if verb != "POST":
                raise _not_allowed("POST")
            return await self._call(method, scope, receive, request_id)
        for mount, routes in self._mounts:  # e.g. the review pages (sessionward.server)
            if mount.owns(path):
                headers = _single_headers(scope)
                return await run_in_threadpool(
                    routes.answer, verb, path, _path_with_query(scope), headers
                )
        if path not in _ENDPOINTS:
            raise method_unknown(path)
        if verb not in ("GET", "HEAD"):  # HEAD: the same answer, whose body uvicorn drops
            raise _not_allowed("GET, HEAD")
        if path == "/openapi.json":
            return 200, self._openapi, {}
        if path == "/metrics":
            return 200, self.metrics.render(), {"content-type": self.metrics.content_type}
        if path == "/healthz":  # liveness: this process answers HTTP, nothing more
            return 200, b'{"status":"ok"}', {}
        return await run_in_threadpool(self._ready)

    async def _call(
        self, method: Method, scope: Scope, receive: Receive, request_id: str
    ) -> Outcome:
        headers = _single_headers(scope)
        declared_length(headers, self._limit)
        body = await read_bounded(_chunks(receive), self._limit)
        signature = headers.get(SIGNATURE_HEADER)
        answer = partial(self._answered, method, headers, _path_with_query(scope), body, request_id)
        try:
            if self._threads is not None:  # on the loop: the refusal costs no thread hop
                self._auth.refuse_early(claimed_credential(signature))
            in_unit = method.one_transaction and not (
                method.calls_out is not None and method.calls_out(body)
            )
            outcome = await self._scheduled(
                method, tenant_of(signature, _peer(scope)), answer, in_unit=in_unit
            )
        except ApiError as exc:
            if exc.status == 429:
                await self._hold()
            raise
        if outcome[0] == 429:
            await self._hold()
        return outcome

    async def _scheduled(
        self, method: Method, tenant: str, answer: Callable[[], Outcome], *, in_unit: bool
    ) -> Outcome:
        """``answer`` run in its tenant's turn: on a worker thread (at most
        ``fair_max_running`` at once), or, ``in_unit``, as a unit of work (at most
        ``fair_max_running_units``: they wait on the database more than on the
        interpreter)."""
        started = time.perf_counter()
        try:
            if not in_unit:
                async with _turn(self._threads, tenant):
                    return await run_in_threadpool(answer)
            async with _turn(self._units, tenant):
                if self._unit_writer is not None and not method.durable:
                    return await self._unit_writer.run(answer)
                return await run_in_threadpool(self._in_one_transaction, answer, method.durable)
        finally:
            if method.name == "Execute":
                self.metrics.execute_latency(time.perf_counter() - started)

    def _hold(self) -> Awaitable[None]:
        """Backpressure: a 429 is answered only after ``rate_limit_hold_s``, so a client that
        ignores ``Retry-After`` sends one request per hold and connection, not one per
        round trip (the wait costs the node no CPU)."""
        return asyncio.sleep(self._refusal_hold_s)

    def close(self) -> None:
        """Stop the thread that runs units of work (after what is queued); the app answers
        no more Execute requests afterwards."""
        if self._unit_writer is not None:
            self._unit_writer.close()

    # --- in a worker thread -------------------------------------------------------------

    def _in_one_transaction(self, answer: Callable[[], Outcome], durable: bool) -> Outcome:
        with self.waas.one_transaction(durable=durable):
            return answer()

    def _answered(
        self,
        method: Method,
        headers: Mapping[str, str],
        path_with_query: str,
        body: bytes,
        request_id: str,
    ) -> Outcome:
        """Authenticate, claim the idempotency key and answer; a refusal (``ApiError``) is an
        answer too, and what it wrote (its replay nonce) commits with the request's unit."""
        parsed: list[dict[str, Any]] = []

        def document() -> dict[str, Any]:
            if not parsed:
                parsed.append(parse_document(body, self._limit))
            return parsed[0]

        key = headers.get(IDEMPOTENCY_HEADER) if method.mutation else None
        to_claim = (
            None if key is None or not well_formed(key) else KeyToClaim(key, method.name, body)
        )
        if method.expects is not None:
            self._expect(method.expects, document)
        try:
            principal = self._auth.authenticate(
                method.auth,
                headers.get(SIGNATURE_HEADER),
                method="POST",
                path_with_query=path_with_query,
                body=body,
                document=document,
                claim=to_claim,
            )
            if key is None:
                return self._answer(method, principal, document, request_id)
            return self._idempotency.run(
                subject=principal.subject,
                key=key,
                method=method.name,
                body=body,
                answer=lambda: self._answer(method, principal, document, request_id),
                claimed=principal.key_claimed,
            )
        except ApiError as exc:
            return _error(exc, request_id)

    def _expect(
        self,
        expects: Callable[[Waas, Mapping[str, Any]], None],
        document: Callable[[], dict[str, Any]],
    ) -> None:
        """Tell the service what the request will read (``Method.expects``), if its body
        parses; one that does not is refused as before, in its turn."""
        try:
            body = document()
        except ApiError:
            return
        expects(self.waas, body)

    def _answer(
        self,
        method: Method,
        principal: Principal,
        document: Callable[[], dict[str, Any]],
        request_id: str,
    ) -> Outcome:
        """Parse, validate and call the service; refusals become error outcomes (so that an
        idempotency key stores them), unexpected exceptions propagate (500, not stored)."""
        try:
            request = validate(method.request, document())
            result = method.handler(self.waas, principal, request)
        except ApiError as exc:
            return _error(exc, request_id)
        except ServiceError as exc:
            if method.decision and exc.kind == "denied":
                self.metrics.denied([v.code.value for v in exc.violations] or [exc.code.value])
            return _error(from_service_error(exc), request_id)
        except SessionWardError as exc:
            # A typed refusal that escaped the service's translation: still the client's input.
            _log.warning("untranslated %s in %s (request %s)", exc.code, method.name, request_id)
            return _error(ApiError(400, "InvalidRequest", exc.code, exc.message), request_id)
        if method.decision:
            self.metrics.allowed()
        if method.revocation_path is not None:
            self.metrics.revoked(method.revocation_path, len(result.get("revokedSessions", ())))
        return 200, dump_json(result), {}

    def _ready(self) -> Outcome:
        ready, report = self._readiness.report()
        if ready:
            return 200, dump_json(report), {}
        return 503, dump_json(report), {"Retry-After": str(RETRY_AFTER_S)}


_ENDPOINTS: Final = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json"})


def _label(path: str, mounts: Sequence[tuple[Mount, MountedRoutes]]) -> str:
    """The metrics label of a path: the API method or endpoint, ``unknown`` otherwise (so a
    client cannot create label values at will)."""
    if path.startswith(METHOD_PREFIX) and path[len(METHOD_PREFIX) :] in METHODS:
        return path[len(METHOD_PREFIX) :]
    for mount, _ in mounts:
        if mount.owns(path):
            return mount.label
    return path if path in _ENDPOINTS else "unknown"


def _turn(scheduler: FairScheduler | None, tenant: str) -> AbstractAsyncContextManager[None]:
    return nullcontext() if scheduler is None else scheduler.turn(tenant)


def _peer(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


def _single_headers(scope: Scope) -> Headers:
    """The request's headers, refused (400 ``HEADER_REPEATED``) if a header that must appear
    once (the request signature, the idempotency key) appears twice."""
    headers = Headers(scope=scope)
    for name in (SIGNATURE_HEADER, IDEMPOTENCY_HEADER):
        single_header(headers, name)
    return headers


def _with_cors(app: ASGIApp, origins: Sequence[str]) -> ASGIApp:
    """``app`` as is without configured origins (CORS off: browsers on other origins cannot
    read an answer); otherwise behind CORS for exactly those origins (owner apps), with the
    request-signature and idempotency headers allowed and the request id readable."""
    if not origins:
        return app
    return CORSMiddleware(
        app,
        allow_origins=list(origins),
        allow_methods=["GET", "HEAD", "POST"],
        allow_headers=[SIGNATURE_HEADER, IDEMPOTENCY_HEADER, "Content-Type"],
        expose_headers=[REQUEST_ID_HEADER, "Retry-After"],
        max_age=600,
    )


def _not_allowed(allowed: str) -> ApiError:
    return ApiError(
        405,
        "MethodNotAllowed",
        "METHOD_UNKNOWN",
        f"use {allowed}",
        reason="http method",
        headers={"Allow": allowed},
    )


def _error(exc: ApiError, request_id: str) -> Outcome:
    return exc.status, dump_json(exc.body(request_id)), dict(exc.headers)


async def _lifespan(receive: Receive, send: Send) -> None:
    """Nothing to set up: the Waas is built, started and stopped by the caller."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def create_app(
    waas: Waas, *, clock_ms: Callable[[], int] | None = None, mounts: Sequence[Mount] = ()
) -> SessionWardApi:
    """The ASGI app over ``waas`` (``clock_ms`` overrides the request-signature clock) serving
    ``mounts`` too (:mod:`.mounts`)."""
    return SessionWardApi(waas, clock_ms=clock_ms, mounts=mounts)
