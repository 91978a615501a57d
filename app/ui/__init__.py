"""Pages for people, served by the service itself and working offline: the playground at `/`,
Swagger UI at `/docs`, ReDoc at `/redoc` (assets from the fastapi-standalone-docs wheel)."""
