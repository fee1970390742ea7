"""A terminal plot of one or more step-indexed curves (textual-plotext), drawn from downsampled copies."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual_plotext import PlotextPlot

from ehrdebug.tui.model import downsample

COLORS = ["cyan", "orange", "green", "magenta", "red", "blue", "yellow", "white"]


@dataclass
class Curve:
    label: str
    steps: list[float]
    values: list[float]
    color: str = ""


class CurvePlot(PlotextPlot):
    """Call ``set_curves`` with full series; only ~2 points per column are ever handed to plotext, and
    the widget repaints only when the curves or its size change."""

    DEFAULT_CSS = """
    CurvePlot { height: 1fr; min-height: 6; }
    """

    def __init__(self, title: str = "", *, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, classes=classes)
        self.title = title
        self._curves: list[Curve] = []
        self._log_y = False
        self._built_for: tuple[int, int, int, str] | None = None
        self._cached: Text | None = None
        self._version = 0
        self.builds = 0  # plots built so far (what following a run must not do on every tick)

    def set_curves(self, curves: list[Curve], title: str | None = None, log_y: bool | None = None) -> None:
        self._curves = curves
        if title is not None:
            self.title = title
        if log_y is not None:
            self._log_y = log_y
        self._version += 1
        self.refresh()

    @property
    def curves(self) -> list[Curve]:
        return self._curves

    def render(self) -> Text:
        """Build the plot only when data, size or theme changed; repaints reuse the cached text."""
        width, height = self.size.width, self.size.height
        theme = self._get_plotext_theme_name(self.app.theme)
        key = (width, height, self._version, theme)
        if key != self._built_for or self._cached is None:
            self._draw(max(width, 10))
            self.plt.plotsize(width, height)
            self.plt._set_size(width, height)
            self.plt.theme(theme)
            self._cached = Text.from_ansi(self.plt.build())
            self._built_for = key
            self.builds += 1
        return self._cached

    def _draw(self, width: int) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(self.title)
        buckets = max(8, width - 12)
        drawn = 0
        for i, curve in enumerate(self._curves):
            xs, ys = downsample(curve.steps, curve.values, buckets)
            if self._log_y:
                pairs = [(x, y) for x, y in zip(xs, ys, strict=False) if y > 0]
                xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
            if not xs:
                continue
            color = curve.color or COLORS[i % len(COLORS)]
            if len(xs) == 1:
                plt.scatter(xs, ys, label=curve.label, color=color, marker="dot")
            else:
                plt.plot(xs, ys, label=curve.label, color=color, marker="braille")
            drawn += 1
        if self._log_y and drawn:
            plt.yscale("log")
        if not drawn:
            plt.text("no data yet", 0.5, 0.5, alignment="center")
            plt.xlim(0, 1)
            plt.ylim(0, 1)
