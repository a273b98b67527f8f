"""Policy as code: signed Rego bundles, their verification and evaluation.

* :mod:`trust.policy.bundle` — source directories, the signed payload format, verification;
* :mod:`trust.policy.engine` — compile once, evaluate many, decisions by convention;
* :mod:`trust.policy.decision` — the Decision object;
* :mod:`trust.policy.testing` / :mod:`trust.policy.check` — ``warden policy test`` / ``check``;
* :mod:`trust.policy.cli` — the ``warden policy`` command group.
"""
