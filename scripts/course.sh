#!/usr/bin/env bash
# Set up (first time only) the nbgrader course in FOLDER (default: course/), and make the
# learners' release of every graded exercise:
#   FOLDER/source/<assignment>/    the solution notebook, as nbgrader's source
#   FOLDER/release/<assignment>/   what learners get: stubs, locked test cells, no outputs
# Then, in FOLDER: collect submissions into submitted/<learner>/<assignment>/, and run
#   nbgrader autograde <assignment>          scores every submission (gradebook.db)
#   nbgrader generate_feedback <assignment>  feedback/<learner>/<assignment>/*.html
# notebooks/TEACHING.md ("An nbgrader course") says how to hand out and collect.
set -euo pipefail
folder=$(realpath -m "${1:-$(dirname "$0")/../course}")  # relative to where it is called from
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"  # nbgrader runs alembic, its database's migrations, by name
.venv/bin/python scripts/make_course.py "$folder"
echo "[course] the learners' release: $folder/release"
