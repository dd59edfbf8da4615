"""``stopline desk ...``: database set-up, users, cameras, registry import, tokens, purge, export."""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import secrets
import sys
from pathlib import Path

from stopline.shared.config import ConfigError, load_site

from .desk import Desk


def _desk(args: argparse.Namespace) -> Desk:
    if not logging.getLogger().isEnabledFor(logging.DEBUG):  # -v shows Alembic's own chatter
        logging.getLogger("alembic").setLevel(logging.WARNING)
    if args.config:
        site = load_site(args.config)
        if args.database_url:
            site.database.url = args.database_url
        if args.evidence_dir:
            site.services.violation_desk.evidence_dir = str(Path(args.evidence_dir).resolve())
        desk = Desk.from_site(site)
    else:
        url = args.database_url or os.environ.get("STOPLINE_DATABASE_URL")
        if not url:
            raise ConfigError("give --config SITE.yaml or --database-url (or STOPLINE_DATABASE_URL)")
        desk = Desk(url, args.evidence_dir or "stopline-evidence")
    desk.upgrade()
    return desk


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="site YAML (database URL, evidence folder)")
    p.add_argument("--database-url", help="overrides the site's database URL")
    p.add_argument("--evidence-dir", help="evidence folder when no --config is given")


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    desk = subparsers.add_parser("desk", help="violation desk administration")
    sub = desk.add_subparsers(dest="desk_command", metavar="DESK_COMMAND")

    for name in ("migrate", "init-db"):
        p = sub.add_parser(name, help="create or upgrade the database schema (Alembic, to the newest revision)")
        _common(p)
        p.set_defaults(func=cmd_init_db)

    p = sub.add_parser("add-user", help="create a user (or --replace to reset password/role)")
    _common(p)
    p.add_argument("username")
    p.add_argument("--role", choices=("reviewer", "supervisor", "admin"), default="reviewer")
    p.add_argument("--password", help="the password (visible in the process list: prefer --password-file)")
    p.add_argument("--password-file", help="read the password from this file (first line)")
    p.add_argument("--generate", action="store_true", help="generate a password and print it")
    p.add_argument("--replace", action="store_true", help="reset an existing user's password and role")
    p.set_defaults(func=cmd_add_user)

    p = sub.add_parser("add-camera", help="register a camera and its Ed25519 public key")
    _common(p)
    p.add_argument("--id", required=True, dest="camera_id")
    p.add_argument("--public-key", type=Path, help="PEM file")
    p.add_argument("--name", default="")
    p.set_defaults(func=cmd_add_camera)

    p = sub.add_parser("import-registry", help="upsert vehicles and owners from CSV")
    _common(p)
    p.add_argument("file", type=Path)
    p.set_defaults(func=cmd_import_registry)

    p = sub.add_parser("add-token", help="create a REST API bearer token for a user")
    _common(p)
    p.add_argument("username")
    p.add_argument("--name", default="api")
    p.set_defaults(func=cmd_add_token)

    p = sub.add_parser("purge", help="delete rejected violations older than N days")
    _common(p)
    p.add_argument("--days", type=int, help="default: services.violation_desk.retention_days")
    p.set_defaults(func=cmd_purge)

    p = sub.add_parser("export", help="approved violations as CSV or JSON")
    _common(p)
    p.add_argument("--format", choices=("csv", "json"), default="csv")
    p.add_argument("--out", type=Path, help="file to write (default: stdout)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("evidence-pdf", help="the printable evidence record of an approved violation")
    _common(p)
    p.add_argument("violation_id", type=int, metavar="ID")
    p.add_argument("--out", type=Path, help="PDF file to write (default: violation-ID.pdf)")
    p.set_defaults(func=cmd_evidence_pdf)

    desk.set_defaults(func=lambda a: (desk.print_help(), 1)[1])


def cmd_init_db(args: argparse.Namespace) -> int:
    from . import db

    d = _desk(args)
    print(f"database at revision {db.current_revision(d.engine)}")
    d.close()
    return 0


def _read_password(args: argparse.Namespace) -> tuple[str, bool]:
    if args.generate:
        return secrets.token_urlsafe(12), True
    if args.password:
        return args.password, False
    if args.password_file:
        try:
            return Path(args.password_file).read_text(encoding="utf-8").splitlines()[0], False
        except (OSError, IndexError) as e:
            raise ConfigError(f"{args.password_file}: cannot read a password: {e}") from None
    if os.environ.get("STOPLINE_PASSWORD"):
        return os.environ["STOPLINE_PASSWORD"], False
    if not sys.stdin.isatty():
        raise ConfigError("no password: use --password-file, --generate or STOPLINE_PASSWORD")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise ConfigError("passwords differ")
    return first, False


def cmd_add_user(args: argparse.Namespace) -> int:
    from .users import UserError, add_user

    password, generated = _read_password(args)
    d = _desk(args)
    try:
        add_user(d, args.username, password, args.role, replace=args.replace)
    except UserError as e:
        print(f"stopline desk add-user: {e}", file=sys.stderr)
        return 1
    finally:
        d.close()
    print(f"user {args.username} ({args.role})" + (f" password: {password}" if generated else ""))
    return 0


def cmd_add_camera(args: argparse.Namespace) -> int:
    from .cameras import CameraError, add_camera

    d = _desk(args)
    try:
        key_id = add_camera(d, args.camera_id, args.public_key, args.name)
    except CameraError as e:
        print(f"stopline desk add-camera: {e}", file=sys.stderr)
        return 1
    finally:
        d.close()
    print(f"camera {args.camera_id}" + (f" key {key_id}" if key_id else " (no key: its events show as unverified)"))
    return 0


def cmd_import_registry(args: argparse.Namespace) -> int:
    from .registry import RegistryError, import_registry

    d = _desk(args)
    try:
        report = import_registry(d, args.file, progress=lambda line: print(
            f"{args.file}: {line}", file=sys.stderr, flush=True))
    except RegistryError as e:
        print(f"stopline desk import-registry: {e}", file=sys.stderr)
        return 1
    finally:
        d.close()
    for line, reason in report.rejected:
        print(f"{args.file}:{line}: rejected: {reason}", file=sys.stderr)
    print(f"{args.file}: {report.summary()}")
    return 0 if not report.rejected else 3


def cmd_add_token(args: argparse.Namespace) -> int:
    from .users import UserError, create_token

    d = _desk(args)
    try:
        token = create_token(d, args.username, args.name)
    except UserError as e:
        print(f"stopline desk add-token: {e}", file=sys.stderr)
        return 1
    finally:
        d.close()
    print(token)
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    from .retention import purge_rejected

    d = _desk(args)
    days = args.days if args.days is not None else d.retention_days
    if days is None:
        d.close()
        raise ConfigError("no --days and no services.violation_desk.retention_days")
    try:
        report = purge_rejected(d, days)
    finally:
        d.close()
    print(f"purged {report.violations} rejected violations and {report.files} evidence files")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from . import export

    d = _desk(args)
    out = open(args.out, "w", encoding="utf-8", newline="") if args.out else sys.stdout
    try:
        with d.session() as s:
            chunks = export.to_csv(export.approved(s)) if args.format == "csv" else export.to_json(export.approved(s))
            for chunk in chunks:
                out.write(chunk)
    finally:
        if args.out:
            out.close()
        d.close()
    return 0


def cmd_evidence_pdf(args: argparse.Namespace) -> int:
    import time

    from .evidence_pdf import EvidencePdfError, evidence_pdf

    d = _desk(args)
    try:
        start = time.perf_counter()
        data = evidence_pdf(d, args.violation_id)
    except EvidencePdfError as e:
        print(f"stopline desk evidence-pdf: {e}", file=sys.stderr)
        return 1
    finally:
        d.close()
    out = args.out or Path(f"violation-{args.violation_id}.pdf")
    out.write_bytes(data)
    print(f"{out}: {len(data)} bytes in {time.perf_counter() - start:.2f} s")
    return 0
