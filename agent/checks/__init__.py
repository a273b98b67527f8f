"""The checks engine: pure functions from arrays to evidence, run at a regional node.

Modules, by what they hold:

* :mod:`agent.checks.performance` — classification and regression metrics (scikit-learn's);
* :mod:`agent.checks.fairness_counts` — per-group confusion counts (the sufficient
  statistics, mergeable); :mod:`agent.checks.disparity` — fairlearn's rates and disparities
  derived from them; :mod:`agent.checks.fairness` — the fairness evidence entry (and the
  import surface of both);
* :mod:`agent.checks.drift` / :mod:`agent.checks.profile` — evidently-equal drift, reference
  profiles (:mod:`agent.checks.sketch` the quantile sketch, :mod:`agent.checks.profile_format`
  the file format);
* :mod:`agent.checks.lineage` — artefact and training-data digests, manifest, data age;
* :mod:`agent.checks.documentation` — model card completeness (Mitchell et al.);
* :mod:`agent.checks.evidence` — the versioned evidence document (``warden.evidence/v1``):
  assembly and validation;
* :mod:`agent.checks.run` — :func:`~agent.checks.run.run_checks`, the I/O edge that reads the
  files (through :mod:`agent.checks.files` and :mod:`agent.data`) and runs the pure checks;
  still importable as ``agent.checks.evidence.run_checks``.

Every check keeps sufficient statistics that merge across chunks and nodes; no evidence
section ever contains a row.
"""
