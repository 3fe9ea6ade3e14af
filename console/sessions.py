"""Signed-in sessions: their Redis repository is :mod:`ivr.store.sessions` (re-exported here, where
the console has always imported it from); the sign-in limits are console/guard.py's."""

from __future__ import annotations

from ivr.store.sessions import Session, SessionStore

__all__ = ["Session", "SessionStore"]
