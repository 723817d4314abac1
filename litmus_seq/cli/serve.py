"""``litmus-seq serve``: the operator page and the HTTP API of one station."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import click

__all__ = ["serve"]


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8400, show_default=True, type=int, help="Port to listen on.")
@click.option("--station", "station_ref", metavar="ID|FILE", help="Station the sequences run on (default: litmus.yaml's).")
@click.option("--data-dir", metavar="DIR", help="Where the stores live (default: $LITMUS_DATA_DIR, litmus.yaml, ./data).")
@click.option("--project", "project_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The project folder (default: the one holding the current folder).")
@click.option("--token", envvar="LITMUS_TOKEN", metavar="TOKEN",
              help="Required on every request (env LITMUS_TOKEN); needed to listen beyond loopback.")
@click.option("--public-read", is_flag=True, help="With a token: let reads through without it.")
@click.option("--serial-pattern", metavar="REGEX", help="What a DUT serial must look like (default: no spaces, 1-64 characters).")
def serve(host: str, port: int, station_ref: str | None, data_dir: str | None, project_dir: Path | None,
          token: str | None, public_read: bool, serial_pattern: str | None) -> int:
    """Serve the operator page at http://HOST:PORT/ and the HTTP API (docs at /docs).

    Operators scan a serial, start a sequence, answer prompts and see the verdict in the page.
    Listening on anything but loopback needs --token.
    """
    import uvicorn

    from litmus_seq.errors import ConfigError
    from litmus_seq.project import ProjectContext, find_root
    from litmus_seq.server.app import create_app
    from litmus_seq.server.station import Station

    if not _loopback(host) and not token:
        raise ConfigError(f"--host {host}: listening beyond loopback needs a token; give --token or set LITMUS_TOKEN")
    project = ProjectContext(find_root(project_dir or Path.cwd()))
    station = Station(project, project.data_dir(data_dir), station=station_ref, serial_pattern=serial_pattern)
    app = create_app(station, token=token, public_read=public_read)
    click.echo(f"litmus-seq station on http://{host}:{port}/ (project {project.root}, data {station.data_dir}); "
               "Ctrl-C to stop", err=True)
    uvicorn.run(app, host=host, port=port, log_level=os.environ.get("LITMUS_LOG_LEVEL", "warning"))
    return 0
