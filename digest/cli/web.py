"""`digest serve`: the web app (public pages and the editor's desk)."""

from __future__ import annotations

import logging

import click

from digest.cli.context import Context, pass_context


@click.command()
@click.option("--host", metavar="ADDRESS", help="Address to listen on (default: [web] host).")
@click.option("--port", type=int, metavar="PORT", help="Port to listen on (default: [web] port).")
@pass_context
def serve(ctx: Context, host: str | None, port: int | None) -> None:
    """Serve the subscriber pages, the archive, the feeds and the editor's desk.

    Put it behind a reverse proxy that terminates HTTPS (see docs/web.md); X-Forwarded-For
    is trusted from the addresses in FORWARDED_ALLOW_IPS (default 127.0.0.1).
    """
    import uvicorn

    from digest.web import create_app

    settings = ctx.settings
    app = create_app(settings, factory=ctx.factory)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
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
