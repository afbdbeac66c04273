"""Runs only the gRPC server on WELDPULSE_METADATA_URL / WELDPULSE_EVENTS_URL; prints its port.

Tests use it when they must kill the server process itself.
"""

import os
import threading

from weldpulse import db
from weldpulse.app import build_server

meta, events = db.open_stores(
    os.environ["WELDPULSE_METADATA_URL"], os.environ["WELDPULSE_EVENTS_URL"]
)
assert events is not None
server, port = build_server(meta, events)
print(port, flush=True)
threading.Event().wait()
