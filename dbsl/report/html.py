"""The report's two front pages from the same Markdown: README.md (readable on GitHub) and index.html (a browser),
which renders that Markdown with markdown-it-py (CommonMark plus GitHub tables) instead of escaping it. Wide tables
scroll inside their own box and images shrink to the page, so the page itself never scrolls sideways."""
from __future__ import annotations

import html
from typing import List

from markdown_it import MarkdownIt

from .render import Section, markdown

STYLE = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222;
line-height:1.45}p,li{overflow-wrap:anywhere}code{background:#f3f3f3;padding:0 .2em;border-radius:3px;
font-size:.9em}.wide{overflow-x:auto;max-width:100%;margin:.5em 0}table{border-collapse:collapse;font-size:.85em}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top;
font-variant-numeric:tabular-nums}th{background:#f3f3f3}img{max-width:100%;height:auto}h3{margin-top:1.6em}
nav ul{columns:2}"""


def section_markdown(s: Section) -> List[str]:
    """A section's body (without its heading) as Markdown lines."""
    lines = [t + "\n" for t in s.text]
    for t in s.tables:
        csv, tex, md = t.files()
        lines += [f"### {t.title}", "", markdown(t.display), ""] + [n + "\n" for n in t.notes]
        lines += [f"Files: [CSV]({csv}) · [LaTeX]({tex}) · [Markdown]({md})", ""]
    for f in s.figures:
        lines += [f"![{f.caption}]({f.path})", "", f"*{f.caption}*", ""]
    return lines


def readme(title: str, sections: List[Section]) -> str:
    lines = [f"# {title}", ""]
    for s in sections:
        lines += [f"## {s.title}", ""] + section_markdown(s)
    return "\n".join(lines)


def renderer() -> MarkdownIt:
    """CommonMark with GitHub's tables; every table wrapped in a box that scrolls sideways on its own."""
    md = MarkdownIt("commonmark", {"html": False}).enable("table")

    def table_open(self, tokens, idx, options, env):
        return "<div class='wide'>\n" + self.renderToken(tokens, idx, options, env)

    def table_close(self, tokens, idx, options, env):
        return self.renderToken(tokens, idx, options, env) + "</div>\n"

    md.add_render_rule("table_open", table_open)
    md.add_render_rule("table_close", table_close)
    return md


def index_html(title: str, sections: List[Section]) -> str:
    e = html.escape
    md = renderer()
    parts = [f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
             f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{e(title)}</title>"
             f"<style>{STYLE}</style></head><body>", f"<h1>{e(title)}</h1>"]
    toc = "".join(f"<li><a href='#s{i}'>{md.renderInline(s.title)}</a></li>" for i, s in enumerate(sections))
    parts.append(f"<nav><ul>{toc}</ul></nav>")
    for i, s in enumerate(sections):
        parts.append(f"<h2 id='s{i}'>{md.renderInline(s.title)}</h2>")
        parts.append(md.render("\n".join(section_markdown(s))))
    parts.append("</body></html>\n")
    return "\n".join(parts)
