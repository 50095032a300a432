"""A small static file server for the static buildpack: serves the document root named in
.static-server/root on $PORT, never dotfiles, and stops cleanly on SIGTERM."""
import functools
import http.server
import os
import signal
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
APP = os.path.dirname(HERE)


class Handler(http.server.SimpleHTTPRequestHandler):
    def send_head(self):
        parts = [p for p in self.path.split("?", 1)[0].split("/") if p]
        if any(p.startswith(".") for p in parts):
            self.send_error(404, "Not found")
            return None
        return super().send_head()

    def log_message(self, fmt, *args):
        sys.stdout.write("%s %s\n" % (self.address_string(), fmt % args))
        sys.stdout.flush()


def main():
    with open(os.path.join(HERE, "root")) as f:
        root = os.path.join(APP, f.read().strip())
    port = int(os.environ.get("PORT", "5000"))
    handler = functools.partial(Handler, directory=root)
    server = http.server.ThreadingHTTPServer(("0.0.0.0", port), handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("static server listening on port %d, serving %s" % (port, root), flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
