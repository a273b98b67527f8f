"""Helpers private to :mod:`trust`: one copy of each check the signed-object modules share.

Nothing here is a public surface; import the public modules (``trust.record``,
``trust.approval``, ``trust.root``, ``trust.policy.bundle``, ``trust.dsse``) instead.
"""
