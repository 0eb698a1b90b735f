"""Run the publication's scheduler in the foreground (the same as `digest schedule`).

    python schedule.py [--config digest.toml] [--log-format text|json] [--log-level info]

The configuration comes from --config, else $DIGEST_CONFIG, else ./digest.toml. Every job
and all the logic live in `digest.pipeline.scheduler`; this file only wires them up.
SIGTERM or Ctrl-C stop it gracefully.
"""

from __future__ import annotations

import argparse
import sys

from digest import config
from digest.errors import DigestError
from digest.pipeline import logfmt
from digest.pipeline.scheduler import build_scheduler, serve


def main(argv: list[str]) -> int:
    """Parse the options, build the scheduler and run it until it is told to stop."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", help="configuration file (default: $DIGEST_CONFIG, ./digest.toml)"
    )
    parser.add_argument("--log-format", choices=logfmt.FORMATS, default="text")
    parser.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], default="info"
    )
    options = parser.parse_args(argv)
    try:
        settings = config.load(options.config)
        logfmt.configure(options.log_format, options.log_level)
        serve(build_scheduler(settings))
    except DigestError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
