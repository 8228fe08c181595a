"""What a report is made of and how it is written: a table and its three file formats (Markdown for GitHub, LaTeX
for papers, CSV for numbers) plus HTML; a figure (a PNG under figures/ and its caption); a section (a heading with
paragraphs, tables and figures). The leaf of dbsl/report: it imports no other report module, so the front pages
(:mod:`.html`) and every table and figure module can use it."""
from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import List

import pandas as pd


@dataclass
class Table:
    """``data`` holds the numbers (written as CSV); ``display`` the same rows as text (Markdown, LaTeX, HTML)."""

    name: str  # file stem under tables/
    title: str
    data: pd.DataFrame
    display: pd.DataFrame
    notes: List[str] = field(default_factory=list)

    def write(self, folder) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.data.to_csv(folder / f"{self.name}.csv", index=False)
        (folder / f"{self.name}.md").write_text(f"**{self.title}**\n\n{markdown(self.display)}\n" +
                                                "".join(f"\n{n}\n" for n in self.notes))
        (folder / f"{self.name}.tex").write_text(latex(self.display, self.title))

    def files(self) -> tuple:
        """Its three files, relative to the report folder (CSV, LaTeX, Markdown)."""
        return tuple(f"tables/{self.name}.{ext}" for ext in ("csv", "tex", "md"))


@dataclass
class Figure:
    path: str  # relative to the report folder
    caption: str


def save_figure(fig, out: Path, name: str, caption: str) -> Figure:
    """A matplotlib figure written to ``out``/figures/``name``.png (the caller closes it)."""
    path = out / "figures" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return Figure(f"figures/{name}.png", caption)


@dataclass
class Section:
    title: str
    text: List[str] = field(default_factory=list)  # Markdown paragraphs (or blocks)
    tables: List[Table] = field(default_factory=list)
    figures: List[Figure] = field(default_factory=list)


def slug(text: str) -> str:
    """A file stem from an experiment's name
    ('cpu_fashion_mnist / fashion_mnist' -> 'cpu_fashion_mnist_fashion_mnist')."""
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower() or "experiment"


# -- cell formats ----------------------------------------------------------------------------------------------
def missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def num(value, digits: int = 2, signed: bool = False) -> str:
    if missing(value):
        return ""
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def significant(value, figures: int = 4) -> int:
    """Decimals that show ``value`` with about ``figures`` significant digits (1541, 37.00, 0.06460)."""
    if missing(value) or value == 0 or not math.isfinite(value):
        return 2
    return min(6, max(0, figures - 1 - math.floor(math.log10(abs(value)))))


def mean_std(mean, std, digits: int | None = 2) -> str:
    """'71.30 ± 0.42' (the sample standard deviation over seeds), or the mean alone for a single run;
    ``digits=None`` picks about four significant digits from the mean."""
    if missing(mean):
        return ""
    digits = significant(mean) if digits is None else digits
    return f"{mean:.{digits}f}" if missing(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


# -- formats ---------------------------------------------------------------------------------------------------
def markdown(frame: pd.DataFrame) -> str:
    def cell(v) -> str:
        return "" if missing(v) else str(v).replace("|", "\\|").replace("\n", " ")

    head = "| " + " | ".join(cell(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *rows])


_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
          "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "±": r"$\pm$", "Δ": r"$\Delta$",
          "−": "-", "≤": r"$\le$", "·": r"$\cdot$", "×": r"$\times$", "→": r"$\rightarrow$"}


def tex_escape(text) -> str:
    return "".join(_LATEX.get(ch, ch) for ch in ("" if missing(text) else str(text)))


def latex(frame: pd.DataFrame, caption: str) -> str:
    cols = "l" * len(frame.columns)
    lines = [r"\begin{table}[ht]", r"\centering", rf"\caption{{{tex_escape(caption)}}}",
             rf"\begin{{tabular}}{{{cols}}}", r"\hline", " & ".join(tex_escape(c) for c in frame.columns) + r" \\", r"\hline"]
    lines += [" & ".join(tex_escape(v) for v in row) + r" \\" for row in frame.itertuples(index=False)]
    lines += [r"\hline", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(lines)


def html_table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{'' if missing(v) else html.escape(str(v))}</td>" for v in row) + "</tr>\n"
                   for row in frame.itertuples(index=False))
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>"
