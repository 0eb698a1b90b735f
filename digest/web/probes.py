"""What monitors ask the web app: `/healthz`, `/readyz` and `/metrics`.

    /healthz   the process answers (for a supervisor or load balancer: restart me if not);
               it does not look at the database, so a database outage does not restart it
    /readyz    200 "ready" when the database answers, the templates load and the
               scheduler is alive (its last job finished within 15 minutes, once a
               scheduler ran with this database); else 503 naming what is not ready
    /metrics   Prometheus text format, when prometheus-client is installed
               (`pip install 'digest[metrics]'`); else 404 saying so

Nothing here changes anything; each probe opens one short database session.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from digest.config import Settings
from digest.store import runs
from digest.store.models import Delivery, DeliveryState, Issue, IssueStatus, Source

JOBS_TABLE = "apscheduler_jobs"
SCHEDULER_QUIET = timedelta(minutes=15)
TEMPLATES = ("email/issue.mjml.jinja", "web/home.html.jinja", "web/message.html.jinja")
SEND_RATE_WINDOW = timedelta(minutes=5)


async def healthz(request: Request) -> Response:
    """The process answers."""
    return PlainTextResponse("ok\n", headers={"cache-control": "no-store"})


def readiness(settings: Settings, factory: sessionmaker[Session], now: datetime) -> list[str]:
    """What is not ready, in words; empty when all is."""
    problems: list[str] = []
    engine: sa.Engine = factory.kw["bind"]
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        problems.append(f"database: {first[0] if first else type(exc).__name__}")
        return problems  # the scheduler check needs the database too
    try:
        from digest.pipeline import environment

        env = environment(settings)
        for name in TEMPLATES:
            env.get_template(name)
    except Exception as exc:
        problems.append(f"templates: {exc!r}")
    try:
        if sa.inspect(engine).has_table(JOBS_TABLE):
            with factory() as session:
                last = runs.last_finished(session)
            if last is None or now - last > SCHEDULER_QUIET:
                when = f"{last:%Y-%m-%d %H:%M} UTC" if last else "never"
                problems.append(f"scheduler: no job finished since {when}")
    except sa.exc.SQLAlchemyError as exc:
        problems.append(f"scheduler: cannot be read ({type(exc).__name__})")
    return problems


async def readyz(request: Request) -> Response:
    """200 when the database, the templates and the scheduler are fine, else 503."""
    site = request.app.state.site
    problems = await run_in_threadpool(readiness, site.settings, site.factory, site.clock())
    headers = {"cache-control": "no-store"}
    if problems:
        return PlainTextResponse("\n".join(problems) + "\n", status_code=503, headers=headers)
    return PlainTextResponse("ready\n", headers=headers)


def metrics_available() -> bool:
    """Whether prometheus-client is installed."""
    return importlib.util.find_spec("prometheus_client") is not None


class DigestCollector:
    """Gauges read from the database at each scrape (no state kept in the process)."""

    def __init__(self, factory: sessionmaker[Session], clock: Any) -> None:
        self.factory, self.clock = factory, clock

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        now: datetime = self.clock()
        with self.factory() as session:
            issues = GaugeMetricFamily("digest_issues", "Issues by state.", labels=["state"])
            counts = dict(
                session.execute(
                    sa.select(Issue.status, sa.func.count()).group_by(Issue.status)
                ).all()
            )
            for state in IssueStatus:
                issues.add_metric([state.value], float(counts.get(state, 0)))
            yield issues

            paused = GaugeMetricFamily(
                "digest_issues_paused", "Issues paused, by who can end it.", labels=["kind"]
            )
            kinds = dict(
                session.execute(
                    sa.select(Issue.paused_kind, sa.func.count())
                    .where(Issue.paused_reason.is_not(None))
                    .group_by(Issue.paused_kind)
                ).all()
            )
            for kind in ("relay", "operator"):
                paused.add_metric([kind], float(kinds.get(kind, 0)))
            yield paused

            rows = GaugeMetricFamily(
                "digest_deliveries", "Delivery rows by state.", labels=["state"]
            )
            by_state = dict(
                session.execute(
                    sa.select(Delivery.state, sa.func.count()).group_by(Delivery.state)
                ).all()
            )
            for delivery_state in DeliveryState:
                rows.add_metric([delivery_state.value], float(by_state.get(delivery_state, 0)))
            yield rows

            recent = session.scalar(
                sa.select(sa.func.count()).where(
                    Delivery.state == DeliveryState.SENT,
                    Delivery.sent_at >= now - SEND_RATE_WINDOW,
                )
            )
            yield GaugeMetricFamily(
                "digest_send_rate",
                "Messages sent per second over the last 5 minutes.",
                value=float(recent or 0) / SEND_RATE_WINDOW.total_seconds(),
            )

            failures = GaugeMetricFamily(
                "digest_source_failures",
                "Consecutive failed fetches per source.",
                labels=["source"],
            )
            last_success: datetime | None = None
            for source in session.scalars(sa.select(Source).where(Source.active.is_(True))):
                failures.add_metric([source.name], float(source.consecutive_failures))
                if source.last_success_at and (
                    last_success is None or source.last_success_at > last_success
                ):
                    last_success = source.last_success_at
            yield failures
            yield GaugeMetricFamily(
                "digest_last_collect_success_timestamp_seconds",
                "When a source was last fetched successfully (Unix time; 0: never).",
                value=last_success.timestamp() if last_success else 0.0,
            )

            finished = runs.last_finished(session)
            yield GaugeMetricFamily(
                "digest_scheduler_lag_seconds",
                "Seconds since a scheduler job last finished (-1: never).",
                value=(now - finished).total_seconds() if finished else -1.0,
            )


async def metrics(request: Request) -> Response:
    """The Prometheus text exposition, or 404 when prometheus-client is not installed."""
    if not metrics_available():
        return PlainTextResponse(
            "metrics need prometheus-client: pip install 'digest[metrics]'\n", status_code=404
        )
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    site = request.app.state.site
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DigestCollector(site.factory, site.clock))
    body = await run_in_threadpool(generate_latest, registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"cache-control": "no-store"})
