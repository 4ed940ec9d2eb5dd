"""Read an HTML page with Beautiful Soup (MIT) and the standard library's parser: the content, not the site.

The content is the page's ``<main>`` (or ``role="main"``, ``<article>``, an element whose id or class says
content/conteúdo), else ``<body>``; navigation, menus, breadcrumbs, sidebars, the site's header and footer,
scripts, styles and forms are dropped. Headings, paragraphs and list items become lines and paragraphs;
``<table>`` becomes one row per line, cells split by `` | ``. The title is the content's first ``<h1>``, else
``og:title``, else ``<title>`` without the site's name after `` | ``. The encoding comes from the page itself
(BOM, ``<meta charset>``), else is detected.

Example::

    >>> from pipeline.documents.ingest.html_text import extract_html
    >>> page = b"<html><body><nav>Menu</nav><main><h1>Edital</h1><p>Texto.</p></main></body></html>"
    >>> extract_html(page).pages
    ['Edital\\n\\nTexto.']
"""

from __future__ import annotations

import re

from pipeline.documents.ingest.layout import ExtractionError, Extracted, join_lines, table_lines
from pipeline.documents.ingest.pdf_text import good_title

_DROP_TAGS = ["script", "style", "noscript", "template", "svg", "iframe", "form", "button", "select", "nav",
              "aside", "dialog", "object", "embed", "canvas"]
_DROP_ROLES = {"navigation", "banner", "contentinfo", "complementary", "search", "menu", "menubar"}
_DROP_NAMES = re.compile(r"(^|[-_\s])(nav|navbar|menu|breadcrumbs?|sidebar|rodape|footer|cookies?|share|social|"
                         r"compartilhe|compartilhar|skip|acessibilidade|barra-governo|banner)($|[-_\s])",
                         re.IGNORECASE)
_CONTENT_NAMES = re.compile(r"^(content|conteudo|conteúdo|main|main-content|maincontent|materia|article)$",
                            re.IGNORECASE)
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_BLOCKS = {"p", "div", "section", "article", "main", "ul", "ol", "li", "blockquote", "pre", "dl", "dt", "dd",
           "header", "footer", "figure", "figcaption", "address", "hr", "caption", "center", "body", *_HEADINGS}


def _names(tag) -> str:
    classes = tag.get("class") or []
    return " ".join([tag.get("id") or "", *(classes if isinstance(classes, list) else [classes])])


def _content_root(soup):
    for finder in (lambda: soup.find("main"), lambda: soup.find(attrs={"role": "main"}), lambda: soup.find("article"),
                   lambda: soup.find(lambda t: any(_CONTENT_NAMES.match(n) for n in _names(t).split()))):
        found = finder()
        if found is not None and found.get_text(strip=True):
            return found
    return soup.body or soup


def _prune(root) -> None:
    for tag in root.find_all(_DROP_TAGS):
        tag.decompose()
    for tag in root.find_all(True):
        if tag.decomposed:
            continue
        if (tag.get("role") or "").lower() in _DROP_ROLES or _DROP_NAMES.search(_names(tag)) \
                or tag.get("hidden") is not None or tag.get("aria-hidden") == "true":
            tag.decompose()
    if root.name == "body":  # no content element: the site's own header and footer are the frame
        for tag in root.find_all(["header", "footer"], recursive=False):
            tag.decompose()


def _walk(node, blocks: list[str], inline: list[str]) -> None:
    from bs4 import NavigableString, Tag
    from bs4.element import Comment

    def flush() -> None:
        text = "\n".join(join_lines([line]) for line in "".join(inline).split("\n") if line.strip())
        if text:
            blocks.append(text)
        inline.clear()

    for child in node.children:
        if isinstance(child, Comment):
            continue
        if isinstance(child, NavigableString):
            inline.append(re.sub(r"\s+", " ", str(child)))  # source line breaks are spaces; <br> is "\n"
        elif isinstance(child, Tag):
            name = child.name.lower()
            if name == "table":
                flush()
                rows = [[cell.get_text(" ", strip=True) for cell in tr.find_all(["th", "td"], recursive=False)]
                        for tr in child.find_all("tr")]
                lines = table_lines(rows)
                if lines:
                    blocks.append("\n".join(lines))
            elif name == "br":
                inline.append("\n")
            elif name in _HEADINGS:
                flush()
                blocks.append("\0" + child.get_text(" ", strip=True))  # marked: a paragraph of its own
            elif name in _BLOCKS:
                flush()
                _walk(child, blocks, inline)
                flush()
            else:
                _walk(child, blocks, inline)
    if node.name in _BLOCKS:
        flush()


def _assemble(blocks: list[str]) -> str:
    """Headings and tables as paragraphs of their own; runs of other blocks as lines of one paragraph."""
    out: list[str] = []
    run: list[str] = []
    for block in blocks:
        if block.startswith("\0") or "\n" in block or " | " in block:
            if run:
                out.append("\n".join(run))
                run = []
            out.append(block.lstrip("\0").strip())
        else:
            run.append(block)
    if run:
        out.append("\n".join(run))
    return "\n\n".join(b for b in out if b)


def extract_html(data: bytes) -> Extracted:
    """The content of an HTML page as text; ``ExtractionError("empty")`` when it has none."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(data, "html.parser")
    og = soup.find("meta", attrs={"property": "og:title"})
    page_title = soup.title.get_text(" ", strip=True).split(" | ")[0] if soup.title else ""
    for tag in soup.find_all(["script", "style", "noscript", "template"]):
        tag.decompose()
    root = _content_root(soup)
    _prune(root)
    h1 = root.find("h1")
    blocks: list[str] = []
    _walk(root, blocks, [])
    text = _assemble([b for b in blocks if b.strip("\0").strip()])
    if not text.strip():
        raise ExtractionError("empty", "HTML page without text content")
    title = (good_title(h1.get_text(" ", strip=True)) if h1 is not None else "") \
        or good_title(og.get("content") if og is not None else "") or good_title(page_title)
    n_tables = len(root.find_all("table"))
    return Extracted(kind="html", pages=[text], title=title, n_tables=n_tables, paged=False)
