"""The /stats chart: questions, answers and 👍/👎 per day as a PNG (matplotlib, headless Agg backend).

Example::

    >>> from bot.telegram.charts import activity_chart
    >>> png = activity_chart({"2026-11-24": {"questions": 5, "answered": 4, "up": 2, "down": 1}})
    >>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True
"""

from __future__ import annotations

import io
from datetime import date, timedelta

from bot import admin_texts

SERIES = ("questions", "answered", "up", "down", "passage_up", "passage_down")
COLORS = {"questions": "#1351b4", "answered": "#168821", "up": "#2670e8", "down": "#e52207"}  # gov.br palette


def fill_days(days: dict[str, dict[str, int]], *, first: date, last: date) -> dict[str, dict[str, int]]:
    """Every day from ``first`` to ``last``, with zeros where nothing happened (a chart needs the gaps)."""
    filled = {}
    day = first
    while day <= last:
        key = day.isoformat()
        filled[key] = {name: int(days.get(key, {}).get(name, 0)) for name in SERIES}
        day += timedelta(days=1)
    return filled


def activity_chart(days: dict[str, dict[str, int]]) -> bytes:
    """A bar chart of questions and answers with 👍/👎 lines, one group per day; PNG bytes."""
    import matplotlib

    matplotlib.use("Agg", force=False)  # no display on a server; imported lazily so the bot starts fast
    from matplotlib.figure import Figure

    labels = [f"{k[8:10]}/{k[5:7]}" for k in days]
    x = list(range(len(labels)))
    figure = Figure(figsize=(8, 4), dpi=100)  # Figure, not pyplot: no global state shared between threads
    axes = figure.subplots()
    width = 0.4
    axes.bar([i - width / 2 for i in x], [d["questions"] for d in days.values()], width,
             label=admin_texts.CHART_LABELS["questions"], color=COLORS["questions"])
    axes.bar([i + width / 2 for i in x], [d["answered"] for d in days.values()], width,
             label=admin_texts.CHART_LABELS["answered"], color=COLORS["answered"])
    for name in ("up", "down"):
        axes.plot(x, [d[name] for d in days.values()], marker="o", label=admin_texts.CHART_LABELS[name],
                  color=COLORS[name])
    axes.set_xticks(x, labels, rotation=45 if len(labels) > 10 else 0)
    axes.set_title(admin_texts.CHART_TITLE)
    axes.yaxis.get_major_locator().set_params(integer=True)
    axes.legend(loc="upper left", fontsize="small")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
