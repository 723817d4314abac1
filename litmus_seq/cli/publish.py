"""``litmus-seq publish``: the outbox of ``--publish`` (posts a server did not take in time).

Without options it lists what waits; ``--retry`` sends it, oldest first, each post to the URL it
was meant for, and removes each one the server took. Exit 0 when the outbox is empty afterwards,
1 when posts still wait (the server is still unreachable).
"""

from __future__ import annotations

from collections import Counter

import click

from litmus_seq.errors import LitmusError

__all__ = ["publish"]


@click.command()
@click.option("--retry", is_flag=True, help="Send the waiting posts now (oldest first).")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              metavar="SECONDS", help="Give up on one post after SECONDS.")
@click.option("--data-dir", metavar="DIR",
              help="Where the stores live (default: $LITMUS_DATA_DIR, litmus.yaml, ./data).")
def publish(retry: bool, timeout_s: float, data_dir: str | None) -> int:
    """List or send again the --publish posts kept in the outbox."""
    from litmus_seq.cli.results import resolve_data_dir
    from litmus_seq.reporters.publish import Outbox

    outbox = Outbox(resolve_data_dir(data_dir) / "outbox" / "publish")
    entries = outbox.entries()
    if not retry:
        urls: Counter[str] = Counter()
        for path in entries:
            try:
                urls[Outbox.read(path)[0]] += 1
            except (OSError, ValueError, KeyError):
                urls["(unreadable)"] += 1
        click.echo(f"{len(entries)} post{'s' if len(entries) != 1 else ''} waiting in {outbox.folder}")
        for url, n in urls.most_common():
            click.echo(f"  {n:>6}  {url}")
        return 0
    if not entries:
        click.echo(f"nothing to send: {outbox.folder} is empty")
        return 0
    if not outbox.claim():
        raise LitmusError(f"{outbox.folder}: another litmus-seq process is sending these posts; try again later")
    try:
        sent, reasons = outbox.send(timeout_s)
    finally:
        outbox.release()
    left = len(outbox.entries())
    line = f"sent {sent} of {len(entries)} posts"
    if left:
        reason = reasons.most_common(1)[0][0] if reasons else "unknown"
        click.echo(f"{line}; {left} still waiting in {outbox.folder} ({reason})")
        return 1
    click.echo(line)
    return 0
