"""The text a Textual app shows, read back from its own screenshot: tests see the screen."""

from __future__ import annotations

import html
import re

from rich.cells import cell_len
from textual.app import App

CELL = re.compile(
    r'<text class="[^"]*-r\d+"[^>]*? x="([\d.]+)" y="[\d.]+" textLength="[\d.]+" '
    r'clip-path="url\(#[^)]*-line-(\d+)\)">([^<]*)</text>'
)


def screen_lines(app: App) -> list[str]:
    """The screen as lines of text, each character in its column (one cell is 12.2 units)."""
    width, height = app.size
    grid = [[" "] * width for _ in range(height)]
    for x, line, text in CELL.findall(app.export_screenshot()):
        column = round(float(x) / 12.2)
        for char in html.unescape(text).replace("\xa0", " "):
            if 0 <= column < width and int(line) < height:
                grid[int(line)][column] = char
            column += cell_len(char)
    return ["".join(row).rstrip() for row in grid]


def screen_text(app: App) -> str:
    return "\n".join(screen_lines(app))
