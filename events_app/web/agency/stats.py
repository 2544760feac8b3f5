"""The « Bilan » page: an agency's figures (events_app.stats) as charts, tables and CSV.

The charts are drawn server-side by pygal (a maintained SVG charting library: axes, scales and
legends are its work, not ours) and put inline in the page. Each is one image for assistive
technologies (role="img" and a name that states what it shows); beside it, a visible table
holds the same numbers and a sentence sums them up, so nothing is only in the drawing.

pygal writes a small configuration <script> and a <style> into every chart. The script only
serves its optional tooltips, which we do not load: it is removed, as the page's Content
Security Policy would refuse it anyway (and so is the one style attribute of the hidden
tooltip box, made an SVG attribute). The style is kept, allowed by a nonce in this page's
own policy (style-src 'self' 'nonce-…'), the rest of the policy being the site's.
"""

from __future__ import annotations

import math
import re
import secrets
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import pygal
from markupsafe import Markup
from pygal.style import Style
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from events_app.errors import InvalidInput
from events_app.models import AgencyStaff
from events_app.stats import AgencyStats, Figures, agency_stats, month_label, percent, stats_csv
from events_app.vocab import EVENT_TYPES
from events_app.web.agency.session import NO_STORE, _render, _staff_only, _who
from events_app.web.common import in_transaction
from events_app.web.schemas import stats_days
from events_app.web.security import SECURITY_HEADERS

# pygal appends to sys.meta_path a finder for its optional map plugins (pygal.maps.*, unused
# here) written in the pre-3.4 protocol, without find_spec: Python then raises an ImportWarning
# at every later import that reaches it (an optional module that is absent), which turns into
# errors wherever warnings are errors. Without the plugins it has nothing to find: out it goes.
sys.meta_path[:] = [
    finder for finder in sys.meta_path if not isinstance(finder, pygal.PluginImportFixer)
]

# Dark text on white and colours that stay apart for most colour vision deficiencies
# (Okabe-Ito), with the site's own font.
CHART_STYLE = Style(
    background="#ffffff",
    plot_background="#ffffff",
    foreground="#1f2933",
    foreground_strong="#111111",
    foreground_subtle="#52606d",
    opacity="1",
    opacity_hover="1",
    transition="none",
    colors=("#0072B2", "#009E73", "#D55E00", "#CC79A7", "#E69F00"),
    font_family="system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif",
    label_font_size=13,
    major_label_font_size=13,
    legend_font_size=14,
    title_font_size=16,
    value_font_size=12,
)
PRESENCE_STYLE = Style(**{**CHART_STYLE.to_dict(), "colors": ("#009E73", "#D55E00")})
_SCRIPT = re.compile(r"<script\b.*?</script>", re.DOTALL)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    summary: str
    svg: Markup


def _svg(chart: pygal.graph.graph.Graph, *, label: str, nonce: str) -> Markup:
    out = chart.render(is_unicode=True, disable_xml_declaration=True)
    out = _COMMENT.sub("", _SCRIPT.sub("", out))
    out = out.replace('<style type="text/css">', f'<style nonce="{nonce}">')
    # The hidden tooltip box, as an SVG attribute: a style attribute is inline style to the CSP.
    out = out.replace('style="opacity: 0"', 'opacity="0"')
    safe_label = label.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    return Markup(  # noqa: S704 - pygal's own SVG, with our escaped label
        out.replace("<svg ", f'<svg role="img" aria-label="{safe_label}" focusable="false" ', 1)
    )


def _base(**options: object) -> dict[str, object]:
    return {
        "style": CHART_STYLE,
        "js": [],
        # Narrow enough that the labels stay legible once scaled down to a phone.
        "width": 560,
        "height": 340,
        "legend_at_bottom": True,
        "legend_at_bottom_columns": 3,
        "print_values": False,
        "show_y_guides": True,
        "truncate_label": -1,
        "x_label_rotation": 0,
        "margin": 16,
        **options,
    }


def _people(count: int, word: str = "personne") -> str:
    return f"{count} {word}{'s' if count > 1 else ''}"


def _count_axis(highest: int) -> dict[str, object]:
    """Whole numbers on a count axis (pygal would put 0.1 steps under a count of 1)."""
    step = max(1, math.ceil(highest / 5))
    return {
        "y_labels": list(range(0, max(highest, 1) + step, step)),
        "value_formatter": lambda value: f"{value:.0f}",
    }


def _months_chart(stats: AgencyStats, nonce: str) -> Chart:
    months = stats.by_month
    highest = max((f.registrations for _, f in months), default=0)
    chart = pygal.Bar(
        **_base(
            y_title="Personnes",
            x_label_rotation=-30 if len(months) > 6 else 0,
            **_count_axis(highest),
        )
    )
    chart.x_labels = [month_label(month) for month, _ in months]
    chart.add("Inscrits", [f.registrations for _, f in months])
    chart.add("Présents", [f.attended for _, f in months])
    chart.add("Absents", [f.no_shows for _, f in months])
    busiest = max(months, key=lambda item: item[1].registrations, default=None)
    summary = (
        f"{_people(stats.totals.registrations)} inscrite"
        f"{'s' if stats.totals.registrations > 1 else ''} sur {len(months)} mois, dont "
        f"{stats.totals.attended} présente{'s' if stats.totals.attended > 1 else ''} et "
        f"{stats.totals.no_shows} absente{'s' if stats.totals.no_shows > 1 else ''}."
    )
    if busiest is not None and busiest[1].registrations:
        summary += (
            f" Le mois le plus chargé est {month_label(busiest[0])}, avec "
            f"{_people(busiest[1].registrations, 'inscrit')}."
        )
    title = "Inscriptions et présence par mois"
    return Chart("mois", title, summary, _svg(chart, label=f"{title}. {summary}", nonce=nonce))


def _rate_value(rate: float | None) -> float | None:
    return None if rate is None else round(rate * 100, 1)


def _types_chart(stats: AgencyStats, nonce: str) -> Chart:
    rows = [(kind, f) for kind, f in stats.by_type if f.fill_rate is not None]
    chart = pygal.HorizontalBar(
        **_base(
            show_legend=False,
            range=(0, 100),
            x_title="Taux de remplissage (%)",
            value_formatter=lambda value: f"{value:.1f}".replace(".", ",") + "\u202f%",
            print_values=True,
            height=max(220, 70 + 48 * len(rows)),
        )
    )
    chart.x_labels = [EVENT_TYPES.get(kind, kind) for kind, _ in rows]
    chart.add("Taux de remplissage", [_rate_value(f.fill_rate) for _, f in rows])
    if rows:
        best = max(rows, key=lambda item: item[1].fill_rate or 0)
        worst = min(rows, key=lambda item: item[1].fill_rate or 0)
        summary = (
            f"Taux de remplissage d’ensemble\u00a0: {percent(stats.totals.fill_rate)}. Le plus "
            f"haut\u00a0: {EVENT_TYPES.get(best[0], best[0])} ({percent(best[1].fill_rate)})"
            f"\u00a0; le plus bas\u00a0: {EVENT_TYPES.get(worst[0], worst[0])} "
            f"({percent(worst[1].fill_rate)})."
        )
    else:
        summary = "Aucun événement à places limitées sur la période."
    title = "Taux de remplissage par type d’événement"
    return Chart(
        "remplissage", title, summary, _svg(chart, label=f"{title}. {summary}", nonce=nonce)
    )


def _no_shows_chart(stats: AgencyStats, nonce: str) -> Chart:
    rows = stats.by_type
    highest = max((f.attended + f.no_shows for _, f in rows), default=0)
    chart = pygal.StackedBar(
        # The same colours for present and absent as in the monthly chart.
        **_base(
            y_title="Personnes",
            style=PRESENCE_STYLE,
            margin_bottom=32,
            **_count_axis(highest),
        )
    )
    chart.x_labels = [EVENT_TYPES.get(kind, kind) for kind, _ in rows]
    chart.add("Présents", [f.attended for _, f in rows])
    chart.add("Absents", [f.no_shows for _, f in rows])
    expected = stats.totals.attended + stats.totals.no_shows
    share = None if expected == 0 else stats.totals.no_shows / expected
    summary = (
        f"{_people(stats.totals.no_shows, 'absent')} pour {_people(expected)} attendue"
        f"{'s' if expected > 1 else ''} aux événements terminés, soit {percent(share)}."
    )
    title = "Présents et absents par type d’événement"
    return Chart("absents", title, summary, _svg(chart, label=f"{title}. {summary}", nonce=nonce))


def build_charts(stats: AgencyStats, nonce: str) -> list[Chart]:
    if stats.totals.events == 0:
        return []
    return [
        _months_chart(stats, nonce),
        _types_chart(stats, nonce),
        _no_shows_chart(stats, nonce),
    ]


def _csp_with_style_nonce(nonce: str) -> str:
    policy = next(value for name, value in SECURITY_HEADERS if name == b"content-security-policy")
    return policy.decode().replace("style-src 'self'", f"style-src 'self' 'nonce-{nonce}'", 1)


def _days(request: Request) -> tuple[date | None, date | None, dict[str, str]]:
    try:
        date_from, date_to = stats_days(request.query_params)
    except InvalidInput as exc:
        return None, None, {exc.field or "from": exc.message}
    return date_from, date_to, {}


@_staff_only
async def stats_page(request: Request) -> Response:
    who = _who(request)
    date_from, date_to, errors = _days(request)

    def work(db: Session) -> tuple[AgencyStaff, AgencyStats]:
        staff = who.staff(db)
        return staff, agency_stats(
            db, agency_id=staff.agency_id, date_from=date_from, date_to=date_to
        )

    staff, stats = await in_transaction(request, work)
    nonce = secrets.token_urlsafe(16)
    response = _render(
        request,
        "stats/show.html",
        {
            "staff": staff,
            "stats": stats,
            "charts": build_charts(stats, nonce),
            "rows": _table_rows(stats),
            "errors": errors,
            "form": {
                "from": request.query_params.get("from", "")[:10],
                "to": request.query_params.get("to", "")[:10],
            },
            "csv_query": request.url.query if not errors else "",
            "nav": "stats",
            "percent": percent,
            "month_label": month_label,
        },
        status_code=400 if errors else 200,
    )
    response.headers["Content-Security-Policy"] = _csp_with_style_nonce(nonce)
    return response


@dataclass(frozen=True)
class _Row:
    label: str
    figures: Figures


def _table_rows(stats: AgencyStats) -> dict[str, Sequence[_Row]]:
    return {
        "by_month": [_Row(month_label(month), f) for month, f in stats.by_month],
        "by_type": [_Row(EVENT_TYPES.get(kind, kind), f) for kind, f in stats.by_type],
    }


@_staff_only
async def stats_csv_export(request: Request) -> Response:
    who = _who(request)
    date_from, date_to, errors = _days(request)
    if errors:
        raise InvalidInput(*next(iter(errors.items())))

    def work(db: Session) -> bytes:
        staff = who.staff(db)
        return stats_csv(
            agency_stats(db, agency_id=staff.agency_id, date_from=date_from, date_to=date_to)
        )

    body = await in_transaction(request, work)
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="bilan.csv"', **NO_STORE},
    )
