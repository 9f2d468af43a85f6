"""`verify app`: the web UI (Gradio) over the bundled models and a gallery folder."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from verify.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "app",
        help="serve the web UI: verify, enroll, identify, batch, gallery",
        description="Serve the web UI on http://HOST:PORT (127.0.0.1 by default; never shared publicly).",
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1; 0.0.0.0 = all)")
    p.add_argument("--port", type=int, default=7860, help="TCP port (default 7860)")
    p.add_argument(
        "--gallery",
        type=Path,
        default=None,
        metavar="DIR",
        help="gallery folder, one sub-gallery per modality (default galleries/demo)",
    )
    p.add_argument("--face-model", default=None, metavar="DIR", help="face model directory (default: the bundled one)")
    p.add_argument(
        "--signature-model", default=None, metavar="DIR", help="signature model directory (default: the bundled one)"
    )
    p.add_argument(
        "--auth",
        default=os.environ.get("VERIFY_APP_AUTH"),
        metavar="USER:PASSWORD",
        help="require this login for the page and the API (default: $VERIFY_APP_AUTH, which keeps it out of ps)",
    )
    p.add_argument(
        "--admin-folders",
        type=Path,
        default=None,
        metavar="ROOT",
        help="let batch jobs read images from folders under this root",
    )
    p.add_argument("--no-demo", action="store_true", help="do not enroll the demo identities into an empty gallery")
    p.add_argument("--concurrency", type=int, default=2, help="requests processed at once (default 2)")
    p.add_argument("--max-upload-mb", type=int, default=100, help="largest upload accepted, in MB (default 100)")
    p.set_defaults(func=run)


def parse_auth(text: str | None) -> tuple[str, str] | None:
    """'user:password' -> (user, password); None -> None."""
    if text is None:
        return None
    user, sep, password = text.partition(":")
    if not sep or not user or not password:
        raise ConfigError("--auth must be USER:PASSWORD, both non-empty")
    return user, password


def run(args: argparse.Namespace) -> int:
    auth = parse_auth(args.auth)
    if args.concurrency < 1 or args.max_upload_mb < 1:
        raise ConfigError("--concurrency and --max-upload-mb must be at least 1")
    if args.admin_folders is not None and not args.admin_folders.is_dir():
        raise ConfigError(f"--admin-folders {args.admin_folders}: no such folder")
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before Gradio is imported: it must not phone home
    from app.demo import default_gallery_root, seed_demo_gallery
    from app.service import VerifyService
    from app.ui import build_app, launch_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("faiss.loader", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    demo = args.gallery is None  # the demo gallery follows model updates: re-embedded from its stored images
    gallery = default_gallery_root() if demo else args.gallery
    service = VerifyService(
        gallery, args.face_model, args.signature_model, admin_root=args.admin_folders, reembed_on_mismatch=demo
    )
    if not args.no_demo:
        seed_demo_gallery(service)
    print(f"verify app: gallery {gallery}; serving on http://{args.host}:{args.port}", flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1") and auth is None:
        print("verify app: warning: reachable from the network without a login; consider --auth", flush=True)
    launch_app(
        build_app(service), args.host, args.port, auth, concurrency=args.concurrency, max_upload_mb=args.max_upload_mb
    )
    return 0
