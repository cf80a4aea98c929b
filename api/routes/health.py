"""Liveness, readiness and Prometheus metrics (no auth: scraped by infrastructure)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from otelspend.api.deps import Context

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process is up")
def healthz() -> dict[str, str]:
    """The process is up (always 200 while it can answer)."""
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: the store answers and the pipeline accepts spans")
def readyz(ctx: Context) -> Response:
    """200 when the store answers and the pipeline accepts spans, else 503; `checks` says which part
    is not ready and why."""
    checks: dict[str, str] = {}
    ready = True
    try:
        ctx.store.ping()
        checks["store"] = "ok"
    except Exception as exc:  # any driver error means not ready
        checks["store"] = ctx.store.scrub(f"error: {exc}")[:300]
        ready = False
    if ctx.commands is not None:
        problem = ctx.commands.pipeline_problem()
        checks["pipeline"] = "ok" if problem is None else ctx.store.scrub(problem)[:300]
        ready = ready and problem is None
        # The allocation job is not on the ingest path: a stopped job is reported, not a refusal.
        stopped = ctx.commands.allocation_status().get("problem")
        checks["allocation"] = "ok" if stopped is None else ctx.store.scrub(stopped)[:300]
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
def metrics(ctx: Context) -> PlainTextResponse:
    """The process's counters, gauges and latency histograms in the Prometheus text format."""
    return PlainTextResponse(ctx.metrics.render(), media_type="text/plain; version=0.0.4")
