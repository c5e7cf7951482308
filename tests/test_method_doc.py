"""The docs and the code point at each other correctly: every "docs/method.md §N" (or §N-M)
written in a .py file of the repository names a section that the page has, as a heading of
the form "## §N Title"; every repository file the docs name exists."""
import os
import re

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


def test_the_files_the_docs_name_exist():
    """A file moved or renamed without its mentions fails here (README.md, docs/method.md)."""
    missing = []
    for doc in ("README.md", os.path.join("docs", "method.md")):
        with open(os.path.join(ROOT, doc), encoding="utf-8") as fh:
            named = set(PATH.findall(fh.read()))
        assert len(named) >= 10, f"{doc}: only {len(named)} paths found"
        missing += [f"{doc}: {p}" for p in sorted(named) if not p.startswith(WRITTEN_BY_RUNS)
                    and not os.path.exists(os.path.join(ROOT, p))]
    assert missing == []
