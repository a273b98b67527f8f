"""Compatibility re-export: the hub checkpoint verifier lives in :mod:`trust.hub_checkpoint`.

It imports only ``trust``, and agents (which may not import ``hub``) verify checkpoints too.
"""

from __future__ import annotations

from trust.hub_checkpoint import verify_hub_checkpoint

__all__ = ["verify_hub_checkpoint"]
