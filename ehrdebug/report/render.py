"""One renderer per output format, shared by `check`, `doctor`, `report` and the TUI export.

Formats: ``text`` (rich, for a terminal), ``json``, ``junit`` (one testcase per probe),
``github`` (Actions workflow annotations) and ``markdown``.
"""

from __future__ import annotations

import json
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from ehrdebug.findings import Finding, Report, Severity

FORMATS = ("text", "json", "junit", "github", "markdown")

_STYLE = {Severity.OK: "green", Severity.INFO: "cyan", Severity.WARN: "yellow", Severity.FAIL: "bold red"}


def render(report: Report, fmt: str = "text", *, width: int = 100) -> str:
    """Render ``report`` as a string in ``fmt``; raises ValueError on an unknown format."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (expected one of: {', '.join(FORMATS)})")
    return {
        "text": lambda: render_text(report, width=width),
        "json": lambda: render_json(report),
        "junit": lambda: render_junit(report),
        "github": lambda: render_github(report),
        "markdown": lambda: render_markdown(report),
    }[fmt]()


def render_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False)


def format_value(value: Any, limit: int = 160) -> str:
    """Compact one-line form of an evidence value."""
    if isinstance(value, float):
        text = f"{value:.6g}"
    elif isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        text = "[" + ", ".join(repr(v) for v in value) + "]"
    elif isinstance(value, (dict, list, tuple)):
        text = json.dumps(value, ensure_ascii=False, default=str)
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _example_line(example: Any) -> str:
    return format_value(example, limit=220)


def render_text(report: Report, *, width: int = 100) -> str:
    from rich.console import Console
    from rich.text import Text

    console = Console(width=width, record=True, file=_NullFile(), force_terminal=False, color_system=None)
    counts = _counts(report)
    console.print(Text(f"ehrdebug report: {report.subject}", style="bold"))
    console.print(
        "  ".join(f"{sev.label}: {counts[sev]}" for sev in (Severity.FAIL, Severity.WARN, Severity.INFO, Severity.OK))
    )
    for finding in report.ranked():
        console.print()
        head = Text()
        head.append(f"[{finding.severity.label.upper():4}] ", style=_STYLE[finding.severity])
        head.append(f"{finding.probe}: ", style="bold")
        head.append(finding.title)
        console.print(head)
        if finding.rule:
            console.print(Text(f"  rule: {finding.rule}", style="dim"))
        for key, value in finding.evidence.items():
            console.print(Text(f"  {key}: {format_value(value)}"))
        for example in finding.examples[:8]:
            console.print(Text(f"  e.g. {_example_line(example)}"))
        if finding.recipes:
            console.print(Text(f"  fix: {', '.join(finding.recipes)}", style="green"))
    return console.export_text()


class _NullFile:
    def write(self, _text: str) -> int:
        return 0

    def flush(self) -> None:
        return None


def render_markdown(report: Report) -> str:
    counts = _counts(report)
    lines = [
        f"# ehrdebug report: {report.subject}",
        "",
        " · ".join(f"**{sev.label}**: {counts[sev]}" for sev in (Severity.FAIL, Severity.WARN, Severity.INFO, Severity.OK)),
        "",
        "| severity | probe | finding | fix |",
        "|---|---|---|---|",
    ]
    for f in report.ranked():
        lines.append(f"| {f.severity.label} | `{f.probe}` | {_md(f.title)} | {', '.join(f'`{r}`' for r in f.recipes)} |")
    for f in report.ranked():
        if f.severity < Severity.INFO and not f.evidence:
            continue
        lines += ["", f"## {f.severity.label.upper()} `{f.probe}`: {_md(f.title)}", ""]
        if f.rule:
            lines += [f"*Rule:* {_md(f.rule)}", ""]
        for key, value in f.evidence.items():
            lines.append(f"- **{key}**: `{format_value(value)}`")
        if f.examples:
            lines += ["", "Examples:", ""]
            lines += [f"- `{_example_line(e)}`" for e in f.examples[:8]]
        if f.recipes:
            lines += ["", "Fix-recipes: " + ", ".join(f"`{r}`" for r in f.recipes)]
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def render_github(report: Report) -> str:
    """GitHub Actions workflow commands: one ``::error``/``::warning``/``::notice`` line per finding."""
    level = {Severity.FAIL: "error", Severity.WARN: "warning", Severity.INFO: "notice"}
    lines = []
    for f in report.ranked():
        if f.severity == Severity.OK:
            continue
        detail = "; ".join(f"{k}={format_value(v, 80)}" for k, v in list(f.evidence.items())[:4])
        if f.recipes:
            detail += f"; fix: {', '.join(f.recipes)}"
        message = f"{f.title} ({detail})" if detail else f.title
        lines.append(f"::{level[f.severity]} title={_gh(f.probe)}::{_gh(message)}")
    counts = _counts(report)
    lines.append(f"ehrdebug: {counts[Severity.FAIL]} fail, {counts[Severity.WARN]} warn, {counts[Severity.INFO]} info")
    return "\n".join(lines) + "\n"


def _gh(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A").replace("::", ": :")


def render_junit(report: Report, *, fail_on: Severity = Severity.FAIL) -> str:
    """JUnit XML with one testcase per probe; a probe fails when any of its findings reaches ``fail_on``."""
    by_probe: dict[str, list[Finding]] = {}
    for f in report.findings:
        by_probe.setdefault(f.probe, []).append(f)
    failures = sum(1 for fs in by_probe.values() if any(f.severity >= fail_on for f in fs))
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f"<testsuites><testsuite name={quoteattr('ehrdebug: ' + report.subject)} tests=\"{len(by_probe)}\" failures=\"{failures}\">",
    ]
    for probe, fs in by_probe.items():
        worst = max(f.severity for f in fs)
        out.append(f"  <testcase classname=\"ehrdebug\" name={quoteattr(probe)}>")
        body = "\n".join(_finding_plain(f) for f in fs)
        if worst >= fail_on:
            title = "; ".join(f.title for f in fs if f.severity >= fail_on)
            out.append(f"    <failure message={quoteattr(title)}>{escape(body)}</failure>")
        else:
            out.append(f"    <system-out>{escape(body)}</system-out>")
        out.append("  </testcase>")
    out.append("</testsuite></testsuites>")
    return "\n".join(out) + "\n"


def _finding_plain(f: Finding) -> str:
    parts = [f"[{f.severity.label}] {f.title}"]
    parts += [f"{k}: {format_value(v)}" for k, v in f.evidence.items()]
    parts += [f"e.g. {_example_line(e)}" for e in f.examples[:5]]
    if f.recipes:
        parts.append("fix: " + ", ".join(f.recipes))
    return "\n".join(parts)


def _counts(report: Report) -> dict[Severity, int]:
    counts = {s: 0 for s in Severity}
    for f in report.findings:
        counts[f.severity] += 1
    return counts
