#!/usr/bin/env bash
# Part 3: the checks engine. Two regions validate the same credit-risk model release on their
# own data; APAC's scoring service carries a bias against women. The evidence documents in
# $DEMO_DIR/checks/{emea,apac}.json are the policy input a later part decides on.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
mkdir -p "$DEMO_DIR/checks"
cd "$DEMO_DIR/checks"
say() { printf '\n>> %s\n' "$*"; }
# The Python that runs warden (the generator needs numpy and pyarrow, as warden does).
py="$(dirname "$(command -v warden)")/python"
[ -x "$py" ] || py="$(command -v python3)"

say "Each region generates its validation set: 50,000 loan applications with the true outcome"
say "(repaid), the model's decision (approved) and score (p_approve). APAC's scoring service"
say "lowers the score of female applicants by 0.25, and its applicants' incomes have shifted;"
say "1% of applicants did not state their sex."
"$py" "$repo/bench/gen_credit.py" --rows 50000 --seed 11 --out emea.parquet
"$py" "$repo/bench/gen_credit.py" --rows 50000 --seed 12 --bias 0.25 --shift 0.15 --out apac.csv
"$py" "$repo/bench/gen_credit.py" --rows 50000 --seed 13 --out reference.parquet

say "Last quarter's data becomes a reference profile, so nodes need not keep the raw rows."
warden profile build reference.parquet --out reference.profile \
    --columns income,debt_ratio,age,credit_history_years,employment

say "The release comes with its artefact, a manifest (code commit, parameters, training data"
say "digest, training date) and a model card."
printf 'credit-risk model 1.4.0 (demo artefact)\n' > credit-risk-1.4.0.bin
"$py" "$repo/bench/gen_credit.py" --rows 5000 --seed 3 --out train.parquet
model_sha=$("$py" -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' credit-risk-1.4.0.bin)
train_sha=$("$py" -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' train.parquet)
snapshot=$("$py" -c 'import datetime as d; print(d.date.today() - d.timedelta(days=12))')
trained=$("$py" -c 'import datetime as d; print(d.date.today() - d.timedelta(days=9))')
cat > manifest.yaml <<YAML
model: {name: credit-risk, version: "1.4.0"}
artifact: {path: credit-risk-1.4.0.bin, sha256: "$model_sha"}
code: {commit: "9f2c1e7", repository: "https://git.example/risk/credit-model"}
parameters: {algorithm: gradient_boosting, max_depth: 6, learning_rate: 0.05}
training_data: {source: internal_db, path: train.parquet,
                sha256: "$train_sha", rows: 5000, snapshot_date: $snapshot}
trained_at: ${trained}T09:00:00Z
explainability: shap_summary.json
YAML
echo '{"method": "shap", "top_features": ["debt_ratio", "income"]}' > shap_summary.json
cat > model_card.md <<'CARD'
# Model card: credit-risk 1.4.0
## Model details
Gradient-boosted trees, owner: retail risk team.
## Intended use
Pre-screening of consumer loan applications; a human reviews every decline.
## Factors
Sex and age band are evaluated as sensitive factors.
## Metrics
Accuracy, ROC AUC; demographic parity and equalized odds across sex and age band.
## Evaluation data
Each region's most recent quarter of applications.
## Training data
2019-2026 applications from the internal loan database.
## Quantitative analyses
Per-group rates are produced by the regional checks.
## Ethical considerations
Historical approvals may encode bias; fairness is checked per region before promotion.
## Caveats and recommendations
Not validated for business loans.
CARD

say "EMEA runs the checks on Parquet: performance, fairness by sex and age band (and their"
say "intersection), drift against the reference profile, lineage and documentation."
warden check run --data emea.parquet --label repaid --pred approved --score p_approve \
    --sensitive sex,age_band --min-group-size 100 --profile reference.profile \
    --manifest manifest.yaml --model-card model_card.md --out emea.json --format table

say "APAC runs the same checks on CSV. Watch the selection rates by sex and the four-fifths rule."
warden check run --data apac.csv --label repaid --pred approved --score p_approve \
    --sensitive sex,age_band --min-group-size 100 --profile reference.profile \
    --manifest manifest.yaml --model-card model_card.md --out apac.json --format table

say "The evidence is plain JSON (aggregates only, never a row) with stable keys, e.g.:"
"$py" - <<'PY'
import json
for region in ("emea", "apac"):
    ev = json.load(open(f"{region}.json"))
    sex = ev["fairness"]["sex"]
    print(f"  {region}: performance.accuracy={ev['performance']['accuracy']:.3f}"
          f"  fairness.sex.demographic_parity_ratio={sex['demographic_parity_ratio']:.3f}"
          f"  fairness.sex.four_fifths.passed={sex['four_fifths']['passed']}"
          f"  drift.share_drifted={ev['drift']['share_drifted']:.2f}"
          f"  lineage.data_sha256_verified={ev['lineage']['data_sha256_verified']}")
PY

say "A malformed input is a one-line error naming the file and column (exit code 2):"
if warden check run --data apac.csv --label repaid --pred aproved 2>err.txt; then
    echo "unexpected: accepted"; exit 1
fi
cat err.txt
echo
echo "Evidence written to $DEMO_DIR/checks/emea.json and apac.json"
