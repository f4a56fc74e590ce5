"""What the side-by-side check scripts (collapse-check, decompose-check) share: where the repository, the reference
lab (REF), the lancet binary and the evaluation text are, a logged subprocess runner, and how a result file records a
model's path."""
import os, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REF = os.environ.get("REF", os.path.expanduser("~/lancet-reference"))
LANCET = os.environ.get("LANCET", os.path.join(ROOT, ".build", "release", "lancet"))
BIN = os.path.join(REF, "llama.cpp", "build", "bin")
WIKI = os.path.join(ROOT, "..", "shared", "data", "wikitext-2", "wiki.test.raw")


def portable(path):
    """`path` as the result file records it: under the reference lab as `$REF/…`, else relative to the repository,
    so that result files do not carry the measuring machine's layout."""
    full = os.path.abspath(path)
    if full.startswith(os.path.abspath(REF) + os.sep):
        return "$REF/" + os.path.relpath(full, REF)
    return os.path.relpath(full, ROOT)


def run(cmd, **kw):
    """Runs `cmd` (logged to standard error), failing on a non-zero exit; its output is captured as text."""
    print("[check] " + " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)
