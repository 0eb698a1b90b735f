"""`digest serve`: the web app (public pages and the editor's desk)."""

from __future__ import annotations

import click

from digest.cli.context import Context, pass_context
from digest.pipeline import logfmt


@click.command()
@click.option("--host", metavar="ADDRESS", help="Address to listen on (default: [web] host).")
@click.option("--port", type=int, metavar="PORT", help="Port to listen on (default: [web] port).")
@click.option(
    "--log-format",
    type=click.Choice(logfmt.FORMATS),
    default="text",
    show_default=True,
    help="text: one key=value line per event (logfmt); json: one JSON object per line.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
@pass_context
def serve(
    ctx: Context, host: str | None, port: int | None, log_format: str, log_level: str
) -> None:
    """Serve the subscriber pages, the archive, the feeds and the editor's desk.

    Put it behind a reverse proxy that terminates HTTPS (see docs/web.md); X-Forwarded-For
    is trusted from the addresses in FORWARDED_ALLOW_IPS (default 127.0.0.1).
    """
    import uvicorn

    from digest.web import create_app

    settings = ctx.settings
    # The same lines as the scheduler's (with syslog priorities under journald), uvicorn's
    # own included: it logs through the root logger with log_config=None. Configured before
    # the app is made, so what making it says (secrets in the file) is in that format too.
    logfmt.configure(log_format, log_level)
    app = create_app(settings, factory=ctx.factory, mailroom=True)
    chosen_host = host or settings.web.host
    chosen_port = port if port is not None else settings.web.port
    click.echo(f"serving {settings.publication.title} on http://{chosen_host}:{chosen_port}/")
    uvicorn.run(
        app,
        host=chosen_host,
        port=chosen_port,
        # Our AccessLog middleware logs requests with the tokens in their paths redacted;
        # uvicorn's own access log would print them.
        access_log=False,
        proxy_headers=True,
        server_header=False,
        log_config=None,
    )
