"""HTTP layer only: routing, authentication, JSON in/out, errors, OpenAPI (docs/design.md section 11).

``create_app(waas)`` gives the ASGI application; every decision stays in
:mod:`sessionward.service`.
"""

from .app import SessionWardApi, create_app

__all__ = ["SessionWardApi", "create_app"]
