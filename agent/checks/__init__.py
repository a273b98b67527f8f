"""The checks engine: pure functions from arrays to evidence, run at a regional node.

Modules, by what they hold:

* :mod:`agent.checks.performance` — classification and regression metrics (scikit-learn's);
* :mod:`agent.checks.fairness` — per-group confusion counts and fairlearn's disparities;
* :mod:`agent.checks.drift` / :mod:`agent.checks.profile` — evidently-equal drift, reference
  profiles;
* :mod:`agent.checks.lineage` — artefact and training-data digests, manifest, data age;
* :mod:`agent.checks.documentation` — model card completeness (Mitchell et al.);
* :mod:`agent.checks.evidence` — the versioned evidence document (``warden.evidence/v1``)
  and :func:`~agent.checks.evidence.run_checks`, the one place that reads files.

Every check keeps sufficient statistics that merge across chunks and nodes; no evidence
section ever contains a row.
"""
