#!/usr/bin/env python3
"""Section-3 manual pages of mproc, generated from the public headers.

The header comments are the one source of the API contract (STYLE.md:
what a call does, every return value and error, whether it blocks, what
may run concurrently).  This script turns each documented family -- a
comment followed by one or more MPROC_API declarations -- into one mdoc
page named after its first function, with a .so link page for each other
member, and fills the overview page mproc(7) with the Python-to-mproc
table from README.md.

Each page: NAME, LIBRARY, SYNOPSIS (the prototypes), DESCRIPTION (the
comment up to its first "Returns"), RETURN VALUES (from there on),
THREAD AND PROCESS SAFETY (the header's own concurrency paragraph), an
EXAMPLES section from examples/<header>.c, and SEE ALSO.

An MPROC_API declaration with no comment above it (and not directly
after another declaration of its family) is an error: --check fails, so
a public call without a page fails the build's man-pages test.

usage: genman.py --list HEADER...            page file names, one a line
       genman.py --outdir DIR HEADER...      write the section-3 pages
       genman.py --check HEADER...           only parse; report problems
       genman.py --overview README.md IN OUT fill mproc(7)'s table
"""
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DATE = "2025-01-01"  # .Dd of generated pages; bump with the API
MDATE = None


def die(msg):
    sys.stderr.write(f"genman: {msg}\n")
    sys.exit(1)


def clean_comment(lines):
    """The text of a C comment, without its delimiters and stars."""
    out = []
    for ln in lines:
        s = ln.strip()
        s = re.sub(r"^/\*\*?", "", s)
        s = re.sub(r"\*/$", "", s)
        s = re.sub(r"^\* ?", "", s.strip()) if s.strip().startswith("*") else s
        out.append(s.rstrip())
    while out and not out[0].strip():
        out.pop(0)
    while out and not out[-1].strip():
        out.pop()
    return out


def parse_header(path):
    """(top comment lines, families) of one public header."""
    src = open(path).read().split("\n")
    top = None
    families = []
    problems = []
    comment = None   # (lines, index of its last line)
    last_decl = None  # index of the last line of the previous declaration
    i = 0
    while i < len(src):
        line = src[i]
        st = line.strip()
        if st.startswith("/*"):
            start = i
            while "*/" not in src[i]:
                i += 1
            block = clean_comment(src[start:i + 1])
            if top is None:
                top = block
            else:
                comment = (block, i)
            i += 1
            continue
        if st.startswith("MPROC_API"):
            start = i
            while ";" not in src[i]:
                i += 1
            decl = " ".join(s.strip() for s in src[start:i + 1])
            decl = re.sub(r"\s+", " ", decl[len("MPROC_API"):]).strip()
            decl = re.sub(r"__attribute__\s*\(\((?:[^()]|\([^()]*\))*\)\)\s*",
                          "", decl).strip()
            m = re.search(r"(\w+)\s*\(", decl)
            name = m.group(1)
            between = [s for s in src[(comment[1] + 1 if comment else 0):start]]
            if comment and all(not s.strip() for s in between) and \
                    comment[1] == start - 1:
                families.append({"names": [name], "protos": [decl],
                                 "comment": comment[0]})
                comment = None
            elif last_decl is not None and families and \
                    all(not s.strip() for s in src[last_decl + 1:start]):
                families[-1]["names"].append(name)
                families[-1]["protos"].append(decl)
            else:
                problems.append(f"{path}:{start + 1}: {name} has no comment "
                                "(so no manual page)")
            last_decl = i
            i += 1
            continue
        if st:
            last_decl = None if not st.startswith("MPROC_API") else last_decl
        i += 1
    return top or [], families, problems


def paragraphs(lines):
    paras, cur = [], []
    for ln in lines:
        if ln.strip():
            cur.append(ln)
        elif cur:
            paras.append(cur)
            cur = []
    if cur:
        paras.append(cur)
    return paras


def esc(text):
    """Escape running text for mdoc: backslashes, and @param as italics."""
    text = text.replace("\\", "\\e")
    text = re.sub(r"@(\w+)", r"\\fI\1\\fP", text)
    return text


def text_lines(text):
    """mdoc text lines for a paragraph: one sentence per line, none
    starting with a dot or an apostrophe."""
    out = []
    for s in re.split(r"(?<=[.;:])\s+(?=[A-Z(\-])", " ".join(text.split())):
        s = esc(s)
        if s[:1] in (".", "'"):
            s = "\\&" + s
        out.append(s)
    return out


def body(lines):
    """mdoc for a block of comment text: paragraphs of sentences, "@name:"
    items as a tag list, and indented paragraphs (bullets, tables) as
    literal displays."""
    out = []
    for para in paragraphs(lines):
        if all(p[:1] in (" ", "\t") for p in para):
            out.append(".Bd -literal -offset indent")
            for p in para:
                t = p.replace("\\", "\\e")
                out.append(("\\&" if t.lstrip()[:1] in (".", "'") and
                            t[:1] in (".", "'") else "") + t)
            out.append(".Ed")
            continue
        # Runs of plain text and of "@name: text" items.
        runs, cur = [], None
        for p in para:
            m = re.match(r"@([\w@/]+):\s*(.*)", p)
            if m:
                if not cur or cur[0] != "items":
                    cur = ["items", []]
                    runs.append(cur)
                cur[1].append([m.group(1), m.group(2)])
            elif cur and cur[0] == "items" and p[:1] in (" ", "\t"):
                cur[1][-1][1] += " " + p.strip()
            else:
                if not cur or cur[0] != "text":
                    cur = ["text", []]
                    runs.append(cur)
                cur[1].append(p.strip())
        for kind, content in runs:
            if kind == "text":
                out.append(".Pp")
                out.extend(text_lines(" ".join(content)))
            else:
                out.append(".Bl -tag -width Ds")
                for name, text in content:
                    out.append(".It Fa " + " ".join(
                        n for n in name.replace("@", "").split("/")))
                    out.extend(text_lines(text))
                out.append(".El")
    # A paragraph right after the heading needs no break.
    if out and out[0] == ".Pp":
        out.pop(0)
    return out


def synopsis(proto):
    """.Ft/.Fo/.Fa/.Fc for a prototype "type name(args);"."""
    m = re.match(r"(.*?)(\w+)\s*\((.*)\)\s*;$", proto)
    if not m:
        die(f"cannot parse prototype: {proto}")
    ret, name, args = m.group(1).strip(), m.group(2), m.group(3).strip()
    out = [".Ft " + ret, ".Fo " + name]
    if args and args != "void":
        depth, cur, parts = 0, "", []
        for ch in args:
            if ch == "," and depth == 0:
                parts.append(cur.strip())
                cur = ""
                continue
            depth += ch in "([" 
            depth -= ch in ")]"
            cur += ch
        parts.append(cur.strip())
        for p in parts:
            out.append('.Fa "' + p + '"')
    out.append(".Fc")
    return out


SAFETY_WORDS = re.compile(r"(Thread-safe|thread-safe|[Nn]ever blocks|[Dd]oes not "
                          r"block|Blocks|concurrent|any thread|signal handler)")


def split_returns(lines):
    """Comment text before and after its first sentence starting with
    Returns/Return."""
    text = "\n".join(lines)
    m = re.search(r"(?:(?<=\n)|(?<=\.  )|(?<=\. )|^)(Returns?\b)", text)
    if not m:
        return lines, []
    before = text[:m.start()].rstrip()
    after = text[m.start():]
    return before.split("\n") if before.strip() else [], after.split("\n")


def module_of(path):
    return os.path.splitext(os.path.basename(path))[0]


def concurrency(top):
    """The header's paragraphs about threads and processes."""
    keep = []
    for para in paragraphs(top):
        t = " ".join(para)
        if re.match(r"\s*(Concurrency|THREADS|Threads|Thread safety)", t):
            keep.append(para)
    return keep


def page(path, fam, top, siblings):
    mod = module_of(path)
    name = fam["names"][0]
    comment = list(fam["comment"])
    first = " ".join(comment).strip()
    m = re.match(r"(\w+)\s+-\s+(.*)", first)
    if m and m.group(1) in fam["names"]:
        rest = m.group(2)
        # drop the "name - " prefix from the text as well
        comment[0] = re.sub(r"^\s*\w+\s+-\s+", "", comment[0])
    else:
        rest = first
    nd = re.split(r"(?<=[a-z)0-9])\.(\s|$)|:\s", rest)[0].strip().rstrip(".")
    nd = esc(nd.replace("@", ""))
    out = [f".\\\" Generated by doc/man/genman.py from include/mproc/{mod}.h;",
           ".\\\" edit the header comment, not this file.",
           f".Dd {MDATE}", f".Dt {name.upper()} 3", ".Os mproc", ".Sh NAME"]
    for n in fam["names"]:
        out.append(f".Nm {n}" + (" ," if n != fam["names"][-1] else ""))
    out.append(f".Nd {nd}")
    out += [".Sh LIBRARY", "mproc library", ".Pq Fl lmproc ,", "pkg-config", ".Ic mproc",
            ".Sh SYNOPSIS", f".In mproc/{mod}.h"]
    for p in fam["protos"]:
        out += synopsis(p)
    desc, rets = split_returns(comment)
    out.append(".Sh DESCRIPTION")
    out += [f".Fn {name} :"] + (body(desc) if desc else
                                ["see", ".Sx RETURN VALUES ."])
    if rets:
        out.append(".Sh RETURN VALUES")
        out += body(rets)
    out.append(".Sh THREAD AND PROCESS SAFETY")
    said = [s for s in re.split(r"(?<=\.)\s+", " ".join(comment))
            if SAFETY_WORDS.search(s)]
    if said:
        out += text_lines(" ".join(said))
        out.append(".Pp")
    conc = concurrency(top)
    if conc:
        out.append(f"From the contract of")
        out.append(f".In mproc/{mod}.h :")
        for para in conc:
            out += body(para)
    else:
        out.append(f"See the rules at the top of")
        out.append(f".In mproc/{mod}.h .")
    ex = os.path.join(HERE, "examples", mod + ".c")
    if os.path.exists(ex):
        out += [".Sh EXAMPLES", ".Bd -literal"]
        for ln in open(ex).read().rstrip("\n").split("\n"):
            s = ln.replace("\\", "\\e")
            out.append(("\\&" if s[:1] in (".", "'") else "") + s)
        out.append(".Ed")
    out.append(".Sh SEE ALSO")
    refs = sorted(s for s in siblings if s != name)
    for r in refs:
        out.append(f".Xr {r} 3 ,")
    out.append(".Xr mproc 7")
    return "\n".join(out) + "\n"


def load(headers):
    allfams, problems = [], []
    for h in headers:
        top, fams, probs = parse_header(h)
        problems += probs
        for f in fams:
            allfams.append((h, top, f))
    return allfams, problems


def overview(readme, src, dst):
    """Fill @TABLE@ in mproc.7.in with README's Python-to-mproc rows."""
    text = open(readme).read()
    m = re.search(r"\| Python \| mproc \| status \|\n\|[-|]+\|\n((?:\|.*\n)+)", text)
    if not m:
        die("README.md has no Python-to-mproc table")
    rows = []
    for ln in m.group(1).strip().split("\n"):
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", ln.strip())[1:-1]]
        if len(cells) != 3:
            die(f"README table row with {len(cells)} cells: {ln}")
        rows.append(cells)

    def md(cell):
        out, parts = [], re.split(r"(`[^`]*`)", cell)
        line = ""
        for p in parts:
            if p.startswith("`") and p.endswith("`") and len(p) > 1:
                line += "\\fB" + p[1:-1].replace("\\", "\\e") + "\\fP"
            else:
                line += p.replace("\\", "\\e")
        line = line.replace("\\e|", "|")
        return text_lines_raw(line)

    out = []
    for py, mp, status in rows:
        out.append(".It")
        out += ["Python:"] + md(py)
        out.append(".br")
        out += ["mproc:"] + md(mp)
        if status != "built":
            out.append(f"({status})")
    table = "\n".join(out)
    s = open(src).read()
    if "@TABLE@" not in s:
        die(f"{src} has no @TABLE@")
    open(dst, "w").write(s.replace("@TABLE@", table))


def text_lines_raw(s):
    out = []
    for part in re.split(r"(?<=[.;])\s+(?=[A-Z(])", " ".join(s.split())):
        if part[:1] in (".", "'"):
            part = "\\&" + part
        out.append(part)
    return out


def main(argv):
    global MDATE
    MDATE = os.environ.get("MPROC_MAN_DATE", DATE)
    if len(argv) >= 2 and argv[1] == "--overview":
        overview(argv[2], argv[3], argv[4])
        return 0
    if len(argv) < 3 or argv[1] not in ("--list", "--check", "--outdir"):
        sys.stderr.write(__doc__)
        return 2
    mode = argv[1]
    if mode == "--outdir":
        outdir, headers = argv[2], argv[3:]
    else:
        outdir, headers = None, argv[2:]
    fams, problems = load(headers)
    if problems:
        for p in problems:
            sys.stderr.write(p + "\n")
        return 1
    names = []
    for h, top, f in fams:
        names += f["names"]
    if len(set(names)) != len(names):
        die("a function is declared twice")
    if mode == "--check":
        print(f"{len(fams)} pages cover {len(names)} public functions")
        return 0
    if mode == "--list":
        for n in sorted(names):
            print(n + ".3")
        return 0
    os.makedirs(outdir, exist_ok=True)
    by_header = {}
    for h, top, f in fams:
        by_header.setdefault(h, []).extend(f["names"])
    for h, top, f in fams:
        first = f["names"][0]
        sib = [n for fam in fams if fam[0] == h for n in fam[2]["names"][:1]]
        with open(os.path.join(outdir, first + ".3"), "w") as fh:
            fh.write(page(h, f, top, sib))
        for other in f["names"][1:]:
            with open(os.path.join(outdir, other + ".3"), "w") as fh:
                fh.write(f".so man3/{first}.3\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
