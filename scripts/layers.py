#!/usr/bin/env python3
"""The layer rule of ARCHITECTURE.md, checked: a file of `src/` imports (by
`crate::` paths, inline tests aside) only from its own layer or below.
Prints every import that runs up a layer; fails when there is more than
the one ARCHITECTURE.md allows (`ALLOWED`), or when a file has no layer.

Usage: scripts/layers.py (from anywhere; reads the repository's src/)
"""
import glob, os, re, sys

os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

# Top-level module (or module path prefix) -> layer, lowest first. The
# longest prefix that matches a file's module decides.
LAYERS = {
    0: ["board", "limits", "clock", "geom", "pool", "ring", "jpeg", "logging", "shutdown", "sync", "error", "metrics", "private_files"],
    1: ["config"],
    2: ["ingest", "decode", "detect", "track", "landmarks", "face", "sink"],
    3: ["monitor"],
    4: ["pipeline", "cli", "crate"],
}
NAMES = {0: "ground floor", 1: "configuration", 2: "stages", 3: "monitoring", 4: "wiring and commands"}
# The one edge up a layer that ARCHITECTURE.md names (importer -> imported).
ALLOWED = set()

files = sorted(glob.glob("src/**/*.rs", recursive=True))

def module_of(path):
    p = path[len("src/"):-3]
    if p in ("lib", "main"):
        return "crate"
    if p.endswith("/mod"):
        p = p[:-4]
    return p.replace("/", "::")

mods = {module_of(f): f for f in files}

def layer_of(m):
    best = None
    for layer, prefixes in LAYERS.items():
        for p in prefixes:
            if m == p or m.startswith(p + "::"):
                if best is None or len(p) > len(best[1]):
                    best = (layer, p)
    return best[0] if best else None

def resolve(path):
    parts = path.split("::")
    for n in range(len(parts), 0, -1):
        m = "::".join(parts[:n])
        if m in mods:
            return m
    return None

def imports(m, f):
    text = open(f).read()
    text = re.sub(r"#\[cfg\(test\)\]\s*mod tests\s*\{.*", "", text, flags=re.S)
    out = set()
    for block in re.findall(r"\buse\s+crate::([^;]+);", text):
        block = re.sub(r"\s+", "", block)
        mm = re.match(r"([\w:]*?)::?\{(.*)\}$", block)
        paths = [mm.group(1) + "::" + x for x in re.split(r",(?![^{]*\})", mm.group(2))] if mm else [block]
        for p in paths:
            t = resolve(p.split("::{")[0].strip(":"))
            if t and t != m and t != "crate":
                out.add(t)
    for p in re.findall(r"\bcrate::([\w:]+)", re.sub(r"\buse\s+crate::[^;]+;", "", text)):
        t = resolve(p)
        if t and t != m and t != "crate":
            out.add(t)
    return out

unplaced = [m for m in mods if layer_of(m) is None]
up = []
for m, f in mods.items():
    lm = layer_of(m)
    if lm is None:
        continue
    for t in sorted(imports(m, f)):
        lt = layer_of(t)
        if lt is not None and lt > lm:
            up.append((m, t, lm, lt))

for m, t, lm, lt in up:
    mark = " (allowed)" if (m, t) in ALLOWED else ""
    print(f"up a layer: {m} ({NAMES[lm]}) imports {t} ({NAMES[lt]}){mark}")
for m in unplaced:
    print(f"no layer: {m} ({mods[m]}): add it to LAYERS in scripts/layers.py and ARCHITECTURE.md")
extra = [(m, t) for m, t, _, _ in up if (m, t) not in ALLOWED]
print(f"layers: {len(up)} import(s) up a layer ({len(up) - len(extra)} allowed), {len(unplaced)} file(s) with no layer")
sys.exit(1 if extra or unplaced or len(up) > 1 else 0)
