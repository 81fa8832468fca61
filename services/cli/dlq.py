"""``seymour dlq list|show|replay|purge``: the dead-letter queue, by reason, for an operator to act on."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from services.common.bus.dead_letters import DeadLetter, Decision, Walk, walk
from services.common.settings import Settings


def register(subparsers: Any) -> None:
    """Add ``dlq`` and its sub-commands."""
    dlq = subparsers.add_parser("dlq", help="dead letters: list by reason, show, replay, purge")
    actions = dlq.add_subparsers(dest="action", required=True)

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--broker", default=None, help="AMQP URL (default: SEYMOUR_BROKER_URL)")
        parser.add_argument("--reason", default=None, help="only messages that died for this reason")
        parser.add_argument("--queue", default=None, help="only messages that died in this queue")
        parser.add_argument("--id", dest="message_id", default=None, help="only the message with this id")

    listing = actions.add_parser("list", help="counts by reason and queue, and the messages")
    common(listing)
    listing.add_argument(
        "--limit", type=int, default=50, help="messages to list (default 50; counts are full)"
    )
    listing.add_argument("--json", action="store_true", help="print JSON")
    show = actions.add_parser("show", help="one message in full: headers and body")
    show.add_argument("id", help="message id (a run's id for run messages)")
    show.add_argument("--broker", default=None, help="AMQP URL (default: SEYMOUR_BROKER_URL)")
    replay = actions.add_parser("replay", help="send matching messages back to where they died from")
    common(replay)
    purge = actions.add_parser("purge", help="delete matching messages for good")
    common(purge)
    purge.add_argument("--all", action="store_true", help="purge every dead letter (no filter given)")
    for parser in (listing, show, replay, purge):
        parser.set_defaults(func=_run)


def matches(letter: DeadLetter, args: argparse.Namespace) -> bool:
    """Whether the filters on the command line select ``letter``."""
    reason = getattr(args, "reason", None)
    queue = getattr(args, "queue", None)
    message_id = getattr(args, "message_id", None) or getattr(args, "id", None)
    return (
        (reason is None or letter.reason == reason)
        and (queue is None or letter.queue == queue)
        and (message_id is None or letter.message_id == message_id)
    )


def _broker(args: argparse.Namespace) -> str | None:
    url = args.broker or Settings().broker_url
    return None if url.startswith("memory://") else url


def _run(args: argparse.Namespace) -> int:
    url = _broker(args)
    if url is None:
        print("seymour dlq: give --broker or SEYMOUR_BROKER_URL (an amqp:// URL)", file=sys.stderr)
        return 2
    filtered = any(getattr(args, name, None) for name in ("reason", "queue", "message_id"))
    if args.action == "purge" and not (filtered or args.all):
        print("seymour dlq purge: give a filter (--reason, --queue, --id) or --all", file=sys.stderr)
        return 2
    action = {"list": "keep", "show": "keep", "replay": "replay", "purge": "drop"}[args.action]
    limit = getattr(args, "limit", None)

    def decide(letter: DeadLetter) -> Decision:
        return action if matches(letter, args) else "keep"  # type: ignore[return-value]

    def collect(letter: DeadLetter) -> bool:
        return matches(letter, args)

    result = asyncio.run(walk(url, decide, collect=collect))
    if args.action == "show":
        return _show(result)
    if args.action == "list":
        _list(result, limit, as_json=args.json)
        return 0
    done = result.replayed if args.action == "replay" else result.dropped
    verb = "replayed" if args.action == "replay" else "purged"
    print(f"{verb} {done} of {result.seen} dead letters ({result.kept} kept)")
    return 0


def _list(result: Walk, limit: int | None, *, as_json: bool) -> None:
    letters = result.letters[:limit] if limit is not None else result.letters
    if as_json:
        document = {
            "total": result.seen,
            "by_reason": dict(result.by_reason),
            "by_queue": dict(result.by_queue),
            "messages": [letter.summary() for letter in letters],
        }
        print(json.dumps(document, indent=2))
        return
    print(f"{result.seen} dead letters")
    for title, counts in (("reason", result.by_reason), ("queue", result.by_queue)):
        for name, number in counts.most_common():
            print(f"  {title:<6} {name:<32} {number}")
    for letter in letters:
        line = letter.summary()
        print(
            f"{line['message_id'] or '-':<38} {line['kind'] or '-':<16} {line['reason']:<15} "
            f"{line['queue']:<24} {line['dead_at'] or '-'}"
        )


def _show(result: Walk) -> int:
    if not result.letters:
        print("no such dead letter", file=sys.stderr)
        return 1
    letter = result.letters[0]
    print(json.dumps(letter.summary(), indent=2))
    headers = {key: str(value) for key, value in letter.headers.items()}
    print(json.dumps(headers, indent=2))
    print(letter.body.decode(errors="replace"))
    return 0
