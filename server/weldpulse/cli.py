"""The `weldpulse` command: manage projects, sites and keys, and run the server with Envoy."""

import argparse
import json
import logging
import sys
from typing import Any

from weldpulse.config import Settings
from weldpulse.storage import accounts
from weldpulse.storage import engines as db


def _print(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, default=str))
    else:
        for name, value in result.items():
            print(f"{name}: {' '.join(value) if isinstance(value, list) else value}")


def _metadata() -> Any:
    # The CLI only opens the metadata store, so it works while the server
    # holds the single-process events file.
    meta, _ = db.open_stores(Settings.from_env().metadata_url, None)
    return meta


def projects_create(args: argparse.Namespace) -> dict[str, Any]:
    with _metadata().begin() as conn:
        return {"id": accounts.create_project(conn, args.name, args.plan)}


def _site(site: dict[str, Any]) -> dict[str, Any]:
    """A site as GET /v1/sites shows it."""
    shown = {k: site[k] for k in accounts.SITE_FIELDS}
    shown["created_at"] = site["created_at"].strftime("%Y-%m-%dT%H:%M:%SZ")
    return shown


def sites_create(args: argparse.Namespace) -> dict[str, Any]:
    with _metadata().begin() as conn:
        return _site(
            accounts.create_site(conn, args.project, args.domain, args.name, args.timezone)
        )


def sites_update(args: argparse.Namespace) -> dict[str, Any]:
    if args.name is None and args.timezone is None:
        raise ValueError("nothing to change: give --name and/or --timezone")
    with _metadata().begin() as conn:
        return _site(accounts.update_site(conn, args.site_id, args.name, args.timezone))


def keys_create(args: argparse.Namespace) -> dict[str, Any]:
    with _metadata().begin() as conn:
        return accounts.create_api_key(
            conn, args.project, args.scope or ["stats:read"], site_id=args.site
        )


def share(args: argparse.Namespace) -> dict[str, Any]:
    """A stats:read key limited to the site, in a dashboard link.

    The key travels in the URL fragment, which browsers never send to a server.
    """
    with _metadata().begin() as conn:
        project_id = accounts.site_project(conn, args.site)
        if project_id is None:
            raise ValueError(f"no site {args.site}")
        key = accounts.create_api_key(conn, project_id, ["stats:read"], site_id=args.site)
    base = args.base_url.rstrip("/")
    return {"id": key["id"], "site_id": args.site, "url": f"{base}/dashboard/#key={key['key']}"}


def keys_revoke(args: argparse.Namespace) -> dict[str, Any]:
    with _metadata().begin() as conn:
        revoked = conn.execute(accounts.revoke_api_key_stmt(args.key_id)).rowcount
    if not revoked:
        raise ValueError(f"no active key {args.key_id}")
    return {"id": args.key_id, "revoked": True}


def up(args: argparse.Namespace) -> dict[str, Any]:
    from weldpulse.app import Running, wait_for_signal
    from weldpulse.envoy import Envoy
    from weldpulse.ingest.processes import IngestProcesses
    from weldpulse.observability import configure_logging

    configure_logging()
    settings = Settings.from_env()
    running = Running(settings)  # first: it migrates the stores and owns the events store
    ingest = IngestProcesses(settings.ingest.processes, settings.ingest.log_path)
    try:
        ingest.start()
        envoy = Envoy(
            running.port,
            settings.http_port,
            trusted_hops=settings.ingest.trusted_hops,
            limits=settings.edge,
            ingest_ports=ingest.ports,
        ).start()
    except RuntimeError:
        ingest.stop()
        running.server.stop(grace=0)
        raise
    extra = f", {len(ingest.ports)} ingest-only processes" if ingest.ports else ""
    print(
        f"weldpulse: gRPC on {settings.host}:{running.port}{extra}, JSON on "
        f"http://{settings.host}:{envoy.http_port}/v1/ (Ctrl-C stops)",
        flush=True,
    )
    wait_for_signal()
    # The servers first, gracefully, so calls in flight through Envoy still finish;
    # the ingest-only ones before the main one, which stores what they logged.
    ingest.stop()
    running.stop()
    envoy.stop()
    return {"stopped": True}


TIMEZONE_HELP = "IANA time zone of the site's local days, e.g. Europe/Berlin"


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="weldpulse", description=__doc__)
    groups = top.add_subparsers(dest="group", required=True)

    projects = groups.add_parser("projects", help="manage projects").add_subparsers(
        dest="command", required=True
    )
    p = projects.add_parser("create", help="create a project")
    p.add_argument("--name", required=True)
    p.add_argument("--plan", choices=accounts.PLANS, default="pro")
    p.set_defaults(run=projects_create)

    site_cmds = groups.add_parser("sites", help="manage sites").add_subparsers(
        dest="command", required=True
    )
    p = site_cmds.add_parser("create", help="add a site to a project")
    p.add_argument("--project", required=True, help="project id")
    p.add_argument("--domain", required=True)
    p.add_argument("--name", help="display name (default: the domain)")
    p.add_argument("--timezone", default="UTC", help=TIMEZONE_HELP + " (default: UTC)")
    p.set_defaults(run=sites_create)
    p = site_cmds.add_parser("update", help="change a site's name or time zone")
    p.add_argument("site_id")
    p.add_argument("--name", help="new display name")
    p.add_argument("--timezone", help=TIMEZONE_HELP)
    p.set_defaults(run=sites_update)

    key_cmds = groups.add_parser("keys", help="manage API keys").add_subparsers(
        dest="command", required=True
    )
    p = key_cmds.add_parser("create", help="create an API key (its secret is shown only once)")
    p.add_argument("--project", required=True, help="project id")
    p.add_argument("--scope", action="append", choices=accounts.SCOPES, help="repeatable")
    p.add_argument("--site", help="site id: limit the key to this one site of the project")
    p.set_defaults(run=keys_create)
    p = key_cmds.add_parser("revoke", help="revoke an API key at once")
    p.add_argument("key_id")
    p.set_defaults(run=keys_revoke)

    share_cmd = groups.add_parser(
        "share",
        help="make a read-only key limited to one site and print a dashboard link carrying it",
    )
    share_cmd.add_argument("--site", required=True, help="site id")
    share_cmd.add_argument(
        "--base-url",
        default="http://127.0.0.1:8080",
        help="where the dashboard is served (default: http://127.0.0.1:8080)",
    )
    share_cmd.set_defaults(run=share)

    p = groups.add_parser("up", help="run the gRPC server and Envoy in the foreground")
    p.set_defaults(run=up)
    commands = [share_cmd]
    for sub in (projects, site_cmds, key_cmds):
        commands.extend(sub.choices.values())
    for command in commands:
        command.add_argument("--json", action="store_true", help="print results as JSON")
    return top


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = parser().parse_args(argv)
    try:
        result = args.run(args)
    except ValueError as err:
        print(f"weldpulse: {err}", file=sys.stderr)
        return 1
    if args.group != "up":
        _print(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
