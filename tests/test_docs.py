"""The documentation: a short README, its set-up commands first, and links that resolve.

Every relative link in README.md, ARCHITECTURE.md, benchmarks/README.md and docs/*.md must name an
existing file, and every #anchor (in the page or in another Markdown file) a heading of its target,
slugged as GitHub does. External (http, https, mailto) links are not fetched.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
README_LIMIT = 12_000

SETUP_COMMANDS = [
    "make run     # set up .venv on first use, then open the app (embedded local model, no API key needed)",
    "make test    # set up .venv on first use, then run the test suite",
]


def doc_pages() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def checked_files() -> list[Path]:
    return [README, ROOT / "ARCHITECTURE.md", ROOT / "benchmarks" / "README.md", *doc_pages()]


# ---- Markdown, as much of it as the checks need ------------------------------------------------

_FENCE = re.compile(r"^ {0,3}(?:[-*+] +|\d+[.)] +)?\s*(`{3,}|~{3,})(.*)$")


def split_fences(text: str) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """(the lines outside fenced code blocks, blanked inside; the fenced blocks as (info, lines))."""
    prose: list[str] = []
    blocks: list[tuple[str, list[str]]] = []
    fence: str | None = None
    for line in text.splitlines():
        m = _FENCE.match(line)
        if fence is None:
            if m and not (m.group(1)[0] == "`" and "`" in m.group(2)):
                fence = m.group(1)
                blocks.append((m.group(2).strip(), []))
                prose.append("")
                continue
            prose.append(line)
        else:
            stripped = line.strip()
            if stripped and set(stripped) == {fence[0]} and len(stripped) >= len(fence):
                fence = None
            else:
                blocks[-1][1].append(line)
            prose.append("")
    return prose, blocks


_CODE_SPAN = re.compile(r"(`+)(.+?)\1")


def without_code_spans(line: str) -> str:
    return _CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)


def github_slug(heading: str) -> str:
    """GitHub's anchor for a heading's text: lowercase; drop every character that is not a letter,
    mark, number, connector (``_``), space or hyphen; each space becomes a hyphen."""
    text = heading.strip().lower()
    kept = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch in " -" or cat[0] in "LMN" or cat == "Pc":
            kept.append(ch)
    return "".join(kept).replace(" ", "-")


_LINK_IN_HEADING = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_HTML_TAG = re.compile(r"<[^>]+>")


def heading_text(raw: str) -> str:
    """The text GitHub slugs: inline markup removed (code ticks, emphasis, links keep their text)."""
    text = _LINK_IN_HEADING.sub(r"\1", raw)
    text = _HTML_TAG.sub("", text)
    return text.replace("`", "").replace("*", "")


def anchors(path: Path) -> set[str]:
    prose, _ = split_fences(path.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    out: set[str] = set()
    for line in prose:
        m = re.match(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        slug = github_slug(heading_text(m.group(2)))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


_INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_REF_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")


def links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every link outside code; a link's text may run over lines."""
    prose, _ = split_fences(path.read_text(encoding="utf-8"))
    lines = [without_code_spans(line) for line in prose]
    found: list[tuple[int, str]] = []
    for number, line in enumerate(lines, 1):
        m = _REF_DEF.match(line)
        if m:
            found.append((number, m.group(1)))
            lines[number - 1] = ""
    text = "\n".join(lines)
    for m in _INLINE_LINK.finditer(text):
        found.append((text.count("\n", 0, m.start()) + 1, m.group(1)))
    return sorted(found)


def is_external(target: str) -> bool:
    return bool(re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I))


# ---- the checks ----------------------------------------------------------------------------------


def test_readme_is_short():
    size = len(README.read_bytes())
    assert size <= README_LIMIT, f"README.md is {size} bytes (limit {README_LIMIT}); move text into docs/"


def test_readme_first_code_block_is_the_setup_commands():
    _, blocks = split_fences(README.read_text(encoding="utf-8"))
    assert blocks, "README.md has no fenced code block"
    info, lines = blocks[0]
    assert info == "sh"
    assert lines == SETUP_COMMANDS


def test_readme_setup_commands_are_make_targets():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for command in SETUP_COMMANDS:
        target = command.split()[1]
        assert re.search(rf"^{target}:", makefile, re.M), f"no `{target}` target in the Makefile"


@pytest.mark.parametrize("path", checked_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path: Path):
    assert path.is_file(), f"{path.relative_to(ROOT)} is missing"
    problems = []
    for number, target in links(path):
        if not target or is_external(target):
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / unquote(file_part)).resolve() if file_part else path
        where = f"{path.relative_to(ROOT)}:{number}: {target}"
        if not dest.exists():
            problems.append(f"{where}: no such file")
            continue
        if anchor and dest.suffix.lower() == ".md":
            if unquote(anchor) not in anchors(dest):
                problems.append(f"{where}: no heading with anchor #{anchor} in {dest.relative_to(ROOT)}")
    assert not problems, "\n".join(problems)


def test_every_docs_page_is_linked_from_the_readme():
    pages = doc_pages()
    assert pages, "docs/ holds no pages"
    linked = set()
    for _, target in links(README):
        if target and not is_external(target):
            linked.add((README.parent / unquote(target.partition("#")[0])).resolve())
    missing = [str(p.relative_to(ROOT)) for p in pages if p.resolve() not in linked]
    assert not missing, f"README.md links to none of: {', '.join(missing)}"


# ---- the helpers themselves ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("heading", "slug"),
    [
        ("Iterated best response (`arena iterate`)", "iterated-best-response-arena-iterate"),
        ("In the background: runner processes, detach and attach", "in-the-background-runner-processes-detach-and-attach"),
        ("The εGrounded recursion, exactly", "the-εgrounded-recursion-exactly"),
        ("Code programs (2026-11-30, `benchmarks/code_throughput.py`, the machine shared with ~7 test runs)",
         "code-programs-2026-11-30-benchmarkscode_throughputpy-the-machine-shared-with-7-test-runs"),
        ("Screen switches without Textual's 50 ms", "screen-switches-without-textuals-50-ms"),
        ("A  B", "a--b"),
    ],
)
def test_github_slug(heading, slug):
    assert github_slug(heading_text(heading)) == slug


def test_duplicate_headings_get_suffixes(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("# Notes\n\n## Notes\n\n```sh\n# Notes\n```\n\n### Notes\n")
    assert anchors(page) == {"notes", "notes-1", "notes-2"}


def test_links_skip_code(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("[a](x.md) `[b](y.md)`\n\n```md\n[c](z.md)\n```\n\n[d]: w.md#top\n\nthe [two\nlines](v.md)\n")
    assert links(page) == [(1, "x.md"), (7, "w.md#top"), (9, "v.md")]
