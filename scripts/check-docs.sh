#!/usr/bin/env bash
# Checks that the docs say what the tree holds (CI runs it; so can you, in a second):
#   - every relative link in README.md and docs/*.md resolves to a file or directory;
#   - a link whose text names code, like [`Server::run`](src/server.rs#L213) or
#     [`push_past_cap_is_refused`](src/outbox.rs), points at a file that defines that name
#     (a `fn`, type, const or enum variant), and a `#L` anchor at the line that defines it;
#   - a `#heading` anchor into a Markdown file names one of its headings;
#   - every generated figure block (<!-- figures:NAME … --> … <!-- /figures:NAME -->) is
#     exactly docs/figures/NAME.md, the fragment scripts/figures.sh wrote from its raw output;
#   - the reference the docs quote is what the binary prints now: `chatloop serve --help`, and
#     the names and help lines of GET /metrics (with and without --redis). This part builds
#     the debug binary first.
#
#   ./scripts/check-docs.sh
set -euo pipefail
cd "$(dirname "$0")/.."

status=0
cargo build --quiet --bin chatloop
python3 - target/debug/chatloop <<'EOF' || status=1
import subprocess, sys, re, urllib.request

binary = sys.argv[1]
bad = []
helps = subprocess.run([binary, "serve", "--help"], capture_output=True, text=True, check=True)
if helps.stdout != open("docs/figures/serve-help.txt", encoding="utf-8").read():
    bad.append("docs/figures/serve-help.txt is not what `chatloop serve --help` prints")


def metric_heads(args):
    """The # HELP and # TYPE lines of GET /metrics from a fresh `chatloop serve ARGS`."""
    server = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:0", *args],
                              stderr=subprocess.PIPE, text=True)
    try:
        for line in server.stderr:
            m = re.search(r"listening on ws://127\.0\.0\.1:(\d+)/", line)
            if m:
                url = f"http://127.0.0.1:{m.group(1)}/metrics"
                text = urllib.request.urlopen(url, timeout=10).read().decode()
                return [l for l in text.splitlines() if l.startswith("# ")]
        raise SystemExit("check-docs: the server did not start")
    finally:
        server.kill()
        server.wait()


for args, raw in (([], "docs/figures/metrics.txt"),
                  (["--redis", "redis://127.0.0.1:1"], "docs/figures/metrics-redis.txt")):
    kept = [l for l in open(raw, encoding="utf-8").read().splitlines() if l.startswith("# ")]
    if metric_heads(args) != kept:
        bad.append(f"{raw}: the metric names or help lines are not what the server serves now")
for b in bad:
    print(f"check-docs: {b} (run ./scripts/figures.sh reference)", file=sys.stderr)
sys.exit(1 if bad else 0)
EOF

python3 - README.md docs/*.md <<'EOF' || status=1
import os, re, sys

IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(::[A-Za-z_][A-Za-z0-9_]*)*(\(\))?$")
LINK = re.compile(r"!?\[((?:[^\[\]]|\[[^\]]*\])*)\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~)")
root = os.path.realpath(".")
errors = []


def defines(text, name):
    """Does this source text define `name` (item, or enum variant / field-less variant)?"""
    item = rf"\b(fn|struct|enum|const|static|trait|type|mod|macro_rules!)\s+{name}\b"
    variant = rf"^\s*{name}\s*(\(|\{{|,|$)"
    return re.search(item, text) or re.search(variant, text, re.M)


def slug(heading):
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def prose_lines(path):
    """The file's lines outside fenced code blocks, with their numbers."""
    inside = False
    for n, line in enumerate(open(path, encoding="utf-8"), 1):
        if FENCE.match(line.strip()):
            inside = not inside
            continue
        if not inside:
            yield n, line


for doc in sys.argv[1:]:
    base = os.path.dirname(doc)
    for n, line in prose_lines(doc):
        for text, target in LINK.findall(line):
            where = f"{doc}:{n}: [{text}]({target})"
            if re.match(r"^[a-z]+:", target):  # http:, https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            full = os.path.normpath(os.path.join(base, path)) if path else doc
            if not os.path.realpath(full).startswith(root):
                errors.append(f"{where}: leaves the repository")
                continue
            if not os.path.exists(full):
                errors.append(f"{where}: no such file")
                continue
            name = text.strip("`")
            is_code = text.startswith("`") and IDENT.match(name) and os.path.isfile(full) \
                and full.endswith(".rs")
            if is_code:
                src = open(full, encoding="utf-8").read()
                parts = name.removesuffix("()").split("::")
                if not defines(src, parts[-1]):
                    errors.append(f"{where}: {full} defines no `{parts[-1]}`")
                elif len(parts) > 1 and not re.search(rf"\b{parts[-2]}\b", src):
                    errors.append(f"{where}: {full} never mentions `{parts[-2]}`")
            if not anchor:
                continue
            m = re.fullmatch(r"L(\d+)(-L\d+)?", anchor)
            if m:
                lines = open(full, encoding="utf-8").read().split("\n")
                k = int(m.group(1))
                if k > len(lines):
                    errors.append(f"{where}: {full} has only {len(lines)} lines")
                elif is_code and not defines(lines[k - 1], name.removesuffix("()").split("::")[-1]):
                    errors.append(f"{where}: line {k} of {full} is `{lines[k - 1].strip()}`, "
                                  f"not the definition of `{name}`")
            elif full.endswith(".md"):
                heads = {slug(l.lstrip("#")) for _, l in prose_lines(full) if l.startswith("#")}
                if anchor not in heads:
                    errors.append(f"{where}: no heading '#{anchor}' in {full}")
            else:
                errors.append(f"{where}: an anchor that cannot be checked")

    # Generated figure blocks must be exactly the fragments scripts/figures.sh wrote.
    text = open(doc, encoding="utf-8").read()
    for name, body in re.findall(r"^<!-- figures:(\S+) [^\n]*-->\n(.*?)^<!-- /figures:\1 -->$",
                                 text, re.M | re.S):
        frag = os.path.join("docs", "figures", name + ".md")
        if not os.path.exists(frag):
            errors.append(f"{doc}: figures block '{name}' has no {frag}")
        elif open(frag, encoding="utf-8").read() != body:
            errors.append(f"{doc}: figures block '{name}' differs from {frag} "
                          f"(run ./scripts/figures.sh --render)")
    opened = re.findall(r"^<!-- figures:(\S+) ", text, re.M)
    closed = re.findall(r"^<!-- /figures:(\S+) -->$", text, re.M)
    if sorted(opened) != sorted(closed):
        errors.append(f"{doc}: unbalanced figures markers: {opened} vs {closed}")

for e in errors:
    print(f"check-docs: {e}", file=sys.stderr)
if errors:
    sys.exit(1)
print(f"check-docs: {len(sys.argv) - 1} files, every link resolves, every figure block is current")
EOF
exit $status
