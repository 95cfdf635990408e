"""/v1/health: answers once the database is migrated and reachable."""

from __future__ import annotations

from fastapi import APIRouter

from veil.server.routes.models import HealthOut

__all__ = ["health_router"]


def health_router() -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["health"])

    @r.get("/health", response_model=HealthOut)
    async def health() -> HealthOut:
        return HealthOut(status="ok")

    return r
