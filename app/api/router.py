"""All routes of the service."""

from fastapi import APIRouter
from fastapi.routing import APIRoute

from app.api.routes import admin, feedback, health, metrics, models, predict, shadow

ROUTERS = (predict.router, health.router, models.router, admin.router, metrics.router, feedback.router, shadow.router)
ROUTE_PATHS = frozenset(route.path for router in ROUTERS for route in router.routes if isinstance(route, APIRoute))

api_router = APIRouter()
for _router in ROUTERS:
    api_router.include_router(_router)
