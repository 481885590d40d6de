"""Static checks of the pages in mediasrv/web/ (no server, no browser):

- no script writes markup (innerHTML and friends): server data only ever goes in as text;
- no inline script or style (the Content-Security-Policy would refuse them);
- every form control has a label;
- the theme's text colours meet WCAG 2.x AA contrast (4.5:1) on their backgrounds.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[2] / "mediasrv" / "web"
PAGES = sorted(WEB.glob("*.html"))
SCRIPTS = sorted((WEB / "js").glob("*.js"))


def test_the_pages_and_scripts_exist():
    assert {p.name for p in PAGES} == {"index.html", "watch.html", "studio.html", "admin.html", "settings.html",
                                        "notfound.html", "golive.html", "verify-email.html"}
    assert SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_no_script_writes_markup(script):
    text = script.read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in text, f"{script.name} uses {sink}"


class _Controls(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.labels: set[str] = set()
        self.controls: list[dict] = []
        self.inline: list[str] = []
        self._label_depth = 0
        self._in_script_with_src: list[bool] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "style" in a:
            self.inline.append(f"style attribute on <{tag}>")
        if any(name.startswith("on") for name in a):
            self.inline.append(f"event handler attribute on <{tag}>")
        if tag == "style":
            self.inline.append("<style> element")
        if tag == "script":
            self._in_script_with_src.append("src" in a)
        if tag == "label":
            self._label_depth += 1
            if a.get("for"):
                self.labels.add(a["for"])
        if tag in ("input", "select", "textarea") and a.get("type") != "hidden":
            self.controls.append({**a, "_wrapped": self._label_depth > 0, "_tag": tag})

    def handle_endtag(self, tag):
        if tag == "label":
            self._label_depth -= 1
        if tag == "script" and self._in_script_with_src:
            self._in_script_with_src.pop()

    def handle_data(self, data):
        if self._in_script_with_src and not self._in_script_with_src[-1] and data.strip():
            self.inline.append("inline <script>")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_pages_have_labelled_controls_and_nothing_inline(page):
    parser = _Controls()
    parser.feed(page.read_text())
    assert not parser.inline, parser.inline
    for control in parser.controls:
        labelled = (control.get("id") in parser.labels or control["_wrapped"] or control.get("aria-label")
                    or control.get("aria-labelledby"))
        assert labelled, f"{page.name}: <{control['_tag']} id={control.get('id')!r}> has no label"
    assert 'lang="en"' in page.read_text()
    assert 'name="viewport"' in page.read_text()


def _colours() -> dict[str, str]:
    css = (WEB / "app.css").read_text()
    root = css[css.index(":root"):css.index("}", css.index(":root"))]
    return dict(re.findall(r"--([a-z0-9-]+):\s*(#[0-9a-fA-F]{6})", root))


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    """WCAG 2.x contrast ratio of two #rrggbb colours."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def test_contrast_ratio_formula():
    assert round(contrast("#000000", "#ffffff"), 1) == 21.0
    assert contrast("#777777", "#777777") == 1.0


@pytest.mark.parametrize("text,background", [
    ("text", "bg"), ("text", "panel"), ("text", "panel2"),
    ("muted", "bg"), ("muted", "panel"), ("muted", "panel2"),
    ("accent", "bg"), ("accent", "panel"), ("accent-ink", "accent"),
    ("ok", "panel2"), ("warn", "panel2"), ("bad", "panel2"), ("bad", "panel"),
    ("white", "live"),  # the LIVE badge and pill
])
def test_theme_colours_meet_wcag_aa(text, background):
    colours = {**_colours(), "white": "#ffffff"}
    ratio = contrast(colours[text], colours[background])
    assert ratio >= 4.5, f"--{text} on --{background}: {ratio:.2f}:1"
