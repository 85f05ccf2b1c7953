"""PACT v2.3 Action Events: receive CloudEvents, answer requests asynchronously at the client's own
PACT API, record each event once."""

from __future__ import annotations

import asyncio
import logging
import weakref
from datetime import UTC, datetime, timedelta

import httpx
import msgspec
from litestar.datastructures import State
from sqlalchemy import select

from carbonpuhui.i18n import N_
from carbonpuhui.pact import schemas
from carbonpuhui.pact.errors import PactError
from carbonpuhui.pact.models import PactClient, PactEvent
from carbonpuhui.pact.outbound import (
    FETCH_DEADLINE_SECONDS,
    check_outbound,
    client_credentials_token,
    httpx_client,
)
from carbonpuhui.pact.service import PactService

log = logging.getLogger("carbonpuhui.pact.events")
DELIVERY_ATTEMPTS = 3
SOURCE = "urn:carbonpuhui:pact"  # our events' CloudEvents ``source``
# Deliveries in progress at once for one client (per process): a client flooding requests waits for
# its own answers instead of making the platform open a connection per event.
DELIVERIES_PER_CLIENT = 4
# Per event loop: asyncio primitives belong to the loop they first wait on.
_SLOTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Semaphore]] = weakref.WeakKeyDictionary()


def _delivery_slot(client_id: str) -> asyncio.Semaphore:
    slots = _SLOTS.setdefault(asyncio.get_running_loop(), {})
    return slots.setdefault(client_id, asyncio.Semaphore(DELIVERIES_PER_CLIENT))


async def receive(service: PactService, client: PactClient, raw: bytes) -> int | None:
    """Validate and record an event; returns the recorded event's number when an answer is due."""
    try:
        event = schemas.decode_event(raw)
    except msgspec.ValidationError as exc:
        if "$.type" in str(exc) or "`type`" in str(exc):
            raise PactError("NotImplemented", N_("This event type is not supported.")) from None
        raise PactError("BadRequest", N_("The event is not valid: {problem}"), problem=str(exc)) from None
    except msgspec.DecodeError:
        raise PactError("BadRequest", N_("The request body is not valid JSON.")) from None
    except RecursionError:  # msgspec's answer to nesting thousands of levels deep
        raise PactError("BadRequest", N_("The request is malformed.")) from None
    if isinstance(event, schemas.ProductFootprintPublished):
        # PfIds are UUIDs (v2.3); a product URN there is a malformed notification.
        if len(event.data.pf_uuids()) != len(event.data.pf_ids):
            raise PactError("BadRequest", N_("pfIds must be ProductFootprint ids (UUIDs)."))
        await service.record_event(client.client_id, event.id, schemas.EVENT_PUBLISHED, "received", None)
        return None
    if not isinstance(event, schemas.ProductFootprintRequestCreated):
        # Answers to requests we sent: we send none yet, so they are recorded and acknowledged.
        await service.record_event(client.client_id, event.id, type(event).__name__, "received", None)
        return None
    product_ids = list((event.data.pf.product_ids if event.data.pf else None) or [])
    found = await service.matching(client.org, product_ids)
    if found:
        answer = schemas.fulfilled_event(
            request_event_id=event.id, source=SOURCE,
            pfs=[schemas.decode_product_footprint(msgspec.json.encode(row.document), require_2025_properties=False)
                 for row in found])
        outcome = "fulfilled"
    elif not any(p.startswith("urn:gtin:") for p in product_ids):
        # Nothing we could look up (no GTIN URN, e.g. the conformance suite's "urn:pact:null"): the
        # request itself is unanswerable, a BadRequest in the spec's table (and in the suite's schema).
        answer = schemas.rejected_event(request_event_id=event.id, code="BadRequest", source=SOURCE,
                                        message="The request names no product id this host can look up (urn:gtin:...).")
        outcome = "rejected"
    else:
        answer = schemas.rejected_event(request_event_id=event.id, code="NoSuchFootprint", source=SOURCE,
                                        message="No footprint you may read matches the requested product ids.")
        outcome = "rejected"
    row = await service.record_event(client.client_id, event.id, schemas.EVENT_REQUEST_CREATED, outcome,
                                     msgspec.json.decode(msgspec.json.encode(answer)))
    return row.seq if row is not None else None


async def deliver(state: State, seq: int) -> None:
    """POST the answer to ``{callback}/2/events`` with a token from the client's own token endpoint.
    Runs after the response is sent; the outcome is recorded on the event."""
    db = state.db
    settings = state.settings
    async with db.transaction() as session:
        event = await session.get(PactEvent, seq)
        client = await session.get(PactClient, event.client_id) if event else None
        if event is None or client is None or event.answer is None:
            return
        answer, base = event.answer, client.callback_base_url
        creds = (client.callback_client_id, client.callback_client_secret)
        client_id = client.client_id
    error: str | None = None
    if not base:
        error = "no callback URL registered for this client"
    else:
        async with _delivery_slot(client_id):
            for attempt in range(DELIVERY_ATTEMPTS):
                try:
                    await asyncio.to_thread(check_outbound, base, settings)
                    async with asyncio.timeout(FETCH_DEADLINE_SECONDS), httpx_client(settings) as http:
                        headers = {"Content-Type": "application/cloudevents+json; charset=UTF-8"}
                        if creds[0] and creds[1]:
                            token = await client_credentials_token(http, base, creds[0], creds[1])
                            headers["Authorization"] = f"Bearer {token}"
                        # Streamed and never read: the receiver's answer body is of no interest.
                        async with http.stream("POST", f"{base}/2/events", content=msgspec.json.encode(answer),
                                               headers=headers) as response:
                            status = response.status_code
                    if status < 300:
                        error = None
                        break
                    error = f"HTTP {status}"
                except (httpx.HTTPError, KeyError, ValueError, TypeError, TimeoutError) as exc:
                    error = type(exc).__name__
                except Exception as exc:  # noqa: BLE001 - a refused outbound target (ProblemError) and the like
                    error = str(exc) or type(exc).__name__
                    break
                await asyncio.sleep(0.5 * 2**attempt)
    async with db.transaction() as session:
        event = await session.get(PactEvent, seq)
        if event is not None:
            event.delivered_at = datetime.now(UTC) if error is None else None
            event.delivery_error = error
    if error:
        log.warning("PACT answer %s not delivered: %s", seq, error)



async def redeliver(state: State, *, max_age_hours: int = 24) -> tuple[int, int]:
    """Deliver again every recorded answer that has not arrived (a process stopped, the client's
    API was down): ``carbonpuhui pact redeliver``. Returns (tried, delivered)."""
    since = datetime.now(UTC) - timedelta(hours=max_age_hours)
    async with state.db.transaction() as session:
        pending = list((await session.scalars(
            select(PactEvent.seq).where(PactEvent.answer.is_not(None), PactEvent.delivered_at.is_(None),
                                        PactEvent.received_at >= since).order_by(PactEvent.seq))).all())
    for seq in pending:
        await deliver(state, seq)
    async with state.db.transaction() as session:
        delivered = len((await session.scalars(
            select(PactEvent.seq).where(PactEvent.seq.in_(pending), PactEvent.delivered_at.is_not(None)))).all()) \
            if pending else 0
    return len(pending), delivered
