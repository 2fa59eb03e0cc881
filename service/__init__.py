"""The HTTP ranking service: ``create_app`` builds it, ``serve`` runs it with uvicorn.

- ``models``: the JSON bodies, which also make the OpenAPI document.
- ``state``: the store reader and ranker of a server process, and the readiness checks.
- ``app``: the routes and error handling.
"""

from service.app import API_VERSION, create_app, create_app_from_environment
from service.command import serve

__all__ = ["API_VERSION", "create_app", "create_app_from_environment", "serve"]
