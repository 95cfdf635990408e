"""The Veil app: one device's web UI, served on 127.0.0.1 by the device process itself.

Keys and plaintext stay in this process; the page talks only to it (HTML pages, a few POST
endpoints and a server-sent event stream), behind a per-launch key (see security.py).
"""

from veil.web.server import AppSpec, RunningApp, build_app, serve_apps

__all__ = ["AppSpec", "RunningApp", "build_app", "serve_apps"]
