"""Request dependencies: the store, and who is calling (an agent, an admin, or Prometheus).

People and automation with an admin token are ``Viewer``s (collector/accounts/web.py); the
routes ask the Viewer what it may see. ``Admin`` is for what only the collector's admin may
do (an admin user or an admin token); agents and Prometheus keep their own credentials.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from collector.accounts.roles import Viewer
from collector.accounts.web import ApiViewer
from collector.registry import AgentIdentity, NotAllowed, authenticate_agent, may_read_metrics


def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


EngineDep = Annotated[Engine, Depends(get_engine)]


def bearer_token(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(401, "send the credential as 'Authorization: Bearer …'",
                            headers={"WWW-Authenticate": "Bearer"})
    return token.strip()


def current_agent(engine: EngineDep, token: Annotated[str, Depends(bearer_token)]
                  ) -> AgentIdentity:
    try:
        return authenticate_agent(engine, token)
    except NotAllowed as exc:
        raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
    except SQLAlchemyError:
        raise HTTPException(503, "the store is not available; retry later",
                            headers={"Retry-After": "5"}) from None


def require_admin(viewer: ApiViewer) -> Viewer:
    """The collector's admin (a user or an admin token): 401 without credentials, 403 for
    any other signed-in role."""
    if not viewer.is_admin:
        raise HTTPException(403, "only the collector's admin may do this")
    return viewer


def require_metrics_reader(engine: EngineDep, token: Annotated[str, Depends(bearer_token)]) -> None:
    # /metrics names every board, school and agent of the collector: a metrics or admin
    # token only. An agent's credential is refused like an unknown token, since one agent
    # must not read the figures of every other school.
    try:
        allowed = may_read_metrics(engine, token)
    except SQLAlchemyError:
        raise HTTPException(503, "the store is not available; retry later",
                            headers={"Retry-After": "5"}) from None
    if not allowed:
        raise HTTPException(401, "unknown or revoked metrics token (make one with: "
                            "schoolnet-collector metrics-token create)",
                            headers={"WWW-Authenticate": "Bearer"})


CurrentAgent = Annotated[AgentIdentity, Depends(current_agent)]
Admin = Depends(require_admin)
AdminViewer = Annotated[Viewer, Admin]
MetricsReader = Depends(require_metrics_reader)
