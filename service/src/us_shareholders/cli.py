"""``us-shareholders``: run an instance, query holders, preview the digest, create topics, demo.

Every option also reads the environment variable ``USH_<OPTION>`` (e.g. ``--http-port`` and
``USH_HTTP_PORT``); a flag wins over the variable. A bad value stops with a message naming the
variable.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import httpx

from streamtable.errors import ConfigError, StreamTableError
from us_shareholders import logs
from us_shareholders.config import ServiceSettings
from us_shareholders.holder_pages import HolderListingError, all_holders

# Options that map one-to-one onto settings (flag --x-y <-> USH_X_Y <-> settings.x_y): every
# setting but ``kafka`` (a JSON object, its own flag), so that a new setting has its flag too.
SETTINGS_FLAGS = tuple(name for name in ServiceSettings.model_fields if name != "kafka")


def _settings(args: argparse.Namespace) -> ServiceSettings:
    overrides = {k: v for k in SETTINGS_FLAGS if (v := getattr(args, k, None)) is not None}
    if getattr(args, "kafka", None):
        overrides["kafka"] = args.kafka
    return ServiceSettings(**overrides)


def _kafka_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError("--kafka", f"not JSON ({exc.msg} at character {exc.pos})") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="us-shareholders", description=__doc__)
    common = argparse.ArgumentParser(add_help=False)
    for name in SETTINGS_FLAGS:
        description = ServiceSettings.model_fields[name].description
        common.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            default=None,
            help=None if description is None else description.split(". ")[0].rstrip("."),
        )
    common.add_argument("--kafka", default=None, help="librdkafka settings as a JSON object")
    common.add_argument("--log-level", default=os.environ.get("USH_LOG_LEVEL", "INFO"))
    common.add_argument(
        "--log-format",
        default=os.environ.get("USH_LOG_FORMAT", "auto"),
        help="json, text or auto (JSON unless stderr is a terminal)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", parents=[common], help="run an instance: processing, HTTP, delivery")
    holders = sub.add_parser("holders", parents=[common], help="list US holders (or one)")
    holders.add_argument("client", nargs="?")
    holders.add_argument("--url", default=None, help="an instance (default: this host's)")
    digest = sub.add_parser("digest", parents=[common], help="preview this week's digest")
    digest.add_argument("--dry-run", action="store_true", required=True)
    digest.add_argument("--out", default=None, help="also write each email as .eml here")
    topics = sub.add_parser("topics", parents=[common], help="manage the service's topics")
    topics.add_argument("action", choices=["create"])
    topics.add_argument("--partitions", type=int, default=4)
    demo = sub.add_parser("demo", parents=[common], help="a self-contained demo")
    demo.add_argument("--keep-running", action="store_true")
    demo.add_argument("--clients", type=int, default=1000)
    demo.add_argument("--positions", type=int, default=5000)
    return parser


def _cmd_run(settings: ServiceSettings) -> int:
    from us_shareholders.service import Service

    return Service(settings).run()


def _cmd_holders(settings: ServiceSettings, client: str | None, url: str | None) -> int:
    base = url or f"http://{settings.application_server}"
    if client is None:  # every page, following next_cursor
        try:
            listed = all_holders(lambda path: httpx.get(base + path, timeout=30))
        except HolderListingError as exc:
            print(f"us-shareholders: {exc}", file=sys.stderr)
            return 1
        print(json.dumps(listed, indent=2))
        return 0
    reply = httpx.get(f"{base}/holders/{quote(client, safe='')}", timeout=30)
    if reply.status_code == 404:
        print(f"{client} holds no US stock", file=sys.stderr)
        return 1
    reply.raise_for_status()
    print(json.dumps(reply.json(), indent=2))
    return 0


def _cmd_topics(settings: ServiceSettings, partitions: int) -> int:
    from us_shareholders.kafka_topics import create_topics, service_topics

    topics = service_topics(
        settings.positions_topic,
        settings.clients_topic,
        settings.instruments_topic,
        settings.application_id,
        partitions,
    )
    created = create_topics(settings.client_config(), topics)
    for name in topics:
        print(f"{name}: {'created' if name in created else 'exists'}")
    return 0


def _cmd_digest(settings: ServiceSettings, out: str | None) -> int:
    from us_shareholders.preview import preview_digest

    emails = preview_digest(settings, out)
    print(f"{len(emails)} emails would be sent", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        logs.configure(args.log_level, args.log_format)
        if args.kafka:
            args.kafka = _kafka_json(args.kafka)
        settings = _settings(args)
        command: Any = args.command
        if command == "run":
            return _cmd_run(settings)
        if command == "holders":
            return _cmd_holders(settings, args.client, args.url)
        if command == "topics":
            return _cmd_topics(settings, args.partitions)
        if command == "digest":
            return _cmd_digest(settings, args.out)
        from us_shareholders.demo import run_demo

        return run_demo(settings, args)
    except ConfigError as exc:
        print(f"us-shareholders: configuration error: {exc}", file=sys.stderr)
        return 2
    except (StreamTableError, httpx.HTTPError) as exc:
        print(f"us-shareholders: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
