"""The report's two front pages: README.md (readable on GitHub) and index.html (a browser), from the same sections."""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import List

from .figures import Figure
from .render import Table, html_table, markdown

STYLE = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0;font-size:.85em}th,td{border:1px solid #ccc;padding:.25em .5em;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}img{max-width:100%}
.note{color:#555;font-size:.85em}.files{font-size:.8em}"""


@dataclass
class Section:
    title: str
    text: List[str] = field(default_factory=list)
    tables: List[Table] = field(default_factory=list)
    figures: List[Figure] = field(default_factory=list)


def _files(table: Table) -> tuple:
    return (f"tables/{table.name}.csv", f"tables/{table.name}.tex", f"tables/{table.name}.md")


def readme(title: str, sections: List[Section]) -> str:
    lines = [f"# {title}", ""]
    for s in sections:
        lines += [f"## {s.title}", ""] + [t + "\n" for t in s.text]
        for t in s.tables:
            csv, tex, _ = _files(t)
            lines += [f"### {t.title}", "", markdown(t.display), ""] + [n + "\n" for n in t.notes]
            lines += [f"Files: [CSV]({csv}) · [LaTeX]({tex})", ""]
        for f in s.figures:
            lines += [f"![{f.caption}]({f.path})", "", f"*{f.caption}*", ""]
    return "\n".join(lines)


def index_html(title: str, sections: List[Section]) -> str:
    e = html.escape
    parts = [f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{e(title)}</title>"
             f"<style>{STYLE}</style></head><body>", f"<h1>{e(title)}</h1>"]
    toc = "".join(f"<li><a href='#s{i}'>{e(s.title)}</a></li>" for i, s in enumerate(sections))
    parts.append(f"<ul>{toc}</ul>")
    for i, s in enumerate(sections):
        parts.append(f"<h2 id='s{i}'>{e(s.title)}</h2>")
        parts += [f"<p>{e(t)}</p>" for t in s.text]
        for t in s.tables:
            csv, tex, md = _files(t)
            parts += [f"<h3>{e(t.title)}</h3>", html_table(t.display)]
            parts += [f"<p class='note'>{e(n)}</p>" for n in t.notes]
            parts.append(f"<p class='files'><a href='{csv}'>CSV</a> · <a href='{tex}'>LaTeX</a> · "
                         f"<a href='{md}'>Markdown</a></p>")
        for f in s.figures:
            parts.append(f"<figure><img src='{e(f.path)}' alt='{e(f.caption)}'><figcaption class='note'>"
                         f"{e(f.caption)}</figcaption></figure>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
