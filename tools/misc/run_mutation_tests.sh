#!/usr/bin/env bash
# Mutation testing (mutmut) of the MGD core: the solver, the reducers, the
# loss and the margin, against their fast unit tests. Not part of CI.
#
#   bash tools/misc/run_mutation_tests.sh [MAX_CHILDREN]
#
# Needs `pip install -e '.[mutation]'`. It works on a copy of the package
# and tests in work_dirs/mutation (mutmut writes a `mutants/` tree and its
# configuration is read from the working directory), prints every
# surviving mutant and the score. docs/mutation_testing.md lists why each
# survivor that has no test is equivalent. 12.5 minutes on a shared 2-core
# machine (6.2 CPU minutes), well under 30.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
WORK="${MUTATION_WORK_DIR:-$ROOT/work_dirs/mutation}"
PYTHON="${PYTHON:-python}"
CHILDREN="${1:-$(nproc)}"

rm -rf "$WORK"
mkdir -p "$WORK"
cp -r "$ROOT/mgd_plugin" "$ROOT/tests" "$ROOT/pytest.ini" "$WORK/"
find "$WORK" -name __pycache__ -prune -exec rm -rf {} +
cat > "$WORK/setup.cfg" <<'CFG'
[mutmut]
source_paths = mgd_plugin/
only_mutate =
    mgd_plugin/matching.py
    mgd_plugin/models/architectures/connectors/*
    mgd_plugin/models/losses/*
    mgd_plugin/models/utils/margin.py
pytest_add_cli_args_test_selection =
    tests/test_matching.py
    tests/test_reducers.py
    tests/test_matching_guided_loss.py
    tests/test_margin.py
also_copy =
    pytest.ini
CFG

cd "$WORK"
# One thread per test process: the children run side by side.
export OMP_NUM_THREADS=1
"$PYTHON" -m mutmut run --max-children "$CHILDREN" > mutmut_run.log 2>&1 || {
    tail -c 3000 mutmut_run.log
    exit 1
}
"$PYTHON" -m mutmut results | tee survivors.txt
"$PYTHON" -m mutmut export-cicd-stats > /dev/null
"$PYTHON" - <<'PY'
import json
stats = json.load(open('mutants/mutmut-cicd-stats.json'))
print(json.dumps(stats, indent=1))
total = stats['total']
print(f"score: {stats['killed']} killed / {total} mutants "
      f"({stats['killed'] / total:.1%}); survived: {stats['survived']}")
PY
