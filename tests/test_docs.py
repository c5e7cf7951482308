"""The docs are true to the repository: every "docs/method.md §N" (or §N-M) written in a .py
file names a section the page has (a heading "## §N Title"); every repository file and every
relative link the pages name exists; the front page stays short; the flags page is what the
code says; and no text speaks of issue numbers or of how the project was developed."""
import os
import re
import subprocess
import sys

from tests.helpers import ROOT, source_files

DOC = os.path.join(ROOT, "docs", "method.md")
# Built from parts so that this file's own text is not taken for a pointer.
POINTER = re.compile(re.escape("docs/method.md") + r" \u00a7(\d+)(?:[-\u2013](\d+))?")
HEADING = re.compile(r"^## \u00a7(\d+) \S", re.MULTILINE)


def pointers():
    """[(file:line, section number)] for every pointer in the repository's .py files."""
    found = []
    for path in source_files("."):
        if os.path.samefile(os.path.join(ROOT, path), __file__):
            continue
        with open(os.path.join(ROOT, path), encoding="utf-8", errors="replace") as fh:
            for number, line in enumerate(fh, 1):
                for match in POINTER.finditer(line):
                    first = int(match.group(1))
                    last = int(match.group(2) or first)
                    where = f"{path}:{number}"
                    found += [(where, n) for n in range(first, last + 1)]
    return found


def test_every_pointer_has_its_section():
    with open(DOC, encoding="utf-8") as fh:
        sections = {int(n) for n in HEADING.findall(fh.read())}
    found = pointers()
    assert len(found) >= 10, f"only {len(found)} pointers into docs/method.md found"
    missing = [(where, n) for where, n in found if n not in sections]
    assert not missing, f"pointers to sections docs/method.md lacks: {missing}"


def test_sections_one_to_six_are_in_order():
    with open(DOC, encoding="utf-8") as fh:
        numbers = [int(n) for n in HEADING.findall(fh.read())]
    assert numbers[:6] == [1, 2, 3, 4, 5, 6]


# Paths the docs name that a run writes (ignored by git), not files of the repository.
WRITTEN_BY_RUNS = ("benchmarks/results/",)
PATH = re.compile(r"(?<![\w/.-])((?:utils|models|tools|benchmarks|tests|docs)/[\w/.-]*\w"
                  r"\.(?:py|sh|md|json|png))")


def pages():
    """README.md and every Markdown page under docs/ (docs/runs/ included), from the root."""
    found = ["README.md"]
    for here, dirs, names in os.walk(os.path.join(ROOT, "docs")):
        dirs.sort()
        found += [os.path.relpath(os.path.join(here, n), ROOT) for n in sorted(names)
                  if n.endswith(".md")]
    return found


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as fh:
        return fh.read()


def test_the_files_the_docs_name_exist():
    """A file moved or renamed without its mentions fails here."""
    missing, named_in_all = [], set()
    for doc in pages():
        named = set(PATH.findall(read(doc)))
        named_in_all |= named
        missing += [f"{doc}: {p}" for p in sorted(named) if not p.startswith(WRITTEN_BY_RUNS)
                    and not os.path.exists(os.path.join(ROOT, p))]
    assert len(named_in_all) >= 50, f"only {len(named_in_all)} paths found in the docs"
    assert missing == []


LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_relative_links_resolve():
    """Every Markdown link or image that is not a web address leads to an existing file."""
    broken, count = [], 0
    for doc in pages():
        for target in LINK.findall(read(doc)):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            count += 1
            path = os.path.normpath(os.path.join(ROOT, os.path.dirname(doc), target.split("#")[0]))
            if not os.path.exists(path):
                broken.append(f"{doc}: {target}")
    assert count >= 30, f"only {count} relative links found"
    assert broken == []


def test_front_page_is_short_and_every_page_opens_with_its_question():
    assert len(read("README.md").splitlines()) <= 200
    for doc in pages():
        if doc.startswith(os.path.join("docs", "runs")) or doc == "README.md":
            continue
        text = read(doc)
        assert len(text.splitlines()) <= 460, f"{doc} is over 460 lines: split it"
        opening = " ".join(text.split("\n\n")[1:3])
        assert "?" in opening, f"{doc} does not open with the question it answers"


def test_flags_page_is_what_the_code_says():
    from tools.flags_reference import PAGE, page
    assert read(os.path.relpath(PAGE, ROOT)) == page(), (
        "docs/flags.md is stale: run python3 tools/flags_reference.py")
    # and the tool's own check agrees, as a user would run it
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "flags_reference.py"),
                           "--check"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr


# Built from parts so that this file's own text is not taken for what it forbids (pytest's
# fixture scope "session" is not the development kind).
DEVELOPMENT_TALK = re.compile("|".join([r"\bissues?\s*#?\d", r"(?<![\w&])#\d{1,3}\b(?![\w-])",
                                        r"(?<!scope=\")\bsessions?\b", r"\blent\b"]), re.IGNORECASE)
TEXT_FILES = (".md", ".py", ".sh", ".toml", ".txt", ".cfg")


def test_no_issue_numbers_or_development_circumstances():
    """The repository speaks of the software: no issue numbers a reader cannot open, nothing
    about working sessions or machines lent to the developers."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                           capture_output=True, text=True, cwd=ROOT).stdout.split()
    if not files:      # not a git checkout: walk the docs and the sources instead
        files = pages() + source_files(".")
    hits = []
    for path in files:
        if not path.endswith(TEXT_FILES) or path.startswith("tests/fixtures/") \
                or os.path.samefile(os.path.join(ROOT, path), __file__) \
                or not os.path.isfile(os.path.join(ROOT, path)):
            continue
        for number, line in enumerate(read(path).splitlines(), 1):
            if DEVELOPMENT_TALK.search(line):
                hits.append(f"{path}:{number}: {line.strip()[:80]}")
    assert hits == []
