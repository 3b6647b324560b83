"""Voila, with the guard of scripts/zmq_poll_fix.py installed: ``python scripts/serve_voila.py
ARGS`` is ``voila ARGS``, except that a lost ZeroMQ wake-up cannot leave a learner's page at
"Executing 1 of 2" for good. ``scripts/classroom.sh`` runs it."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import zmq_poll_fix  # noqa: E402

if __name__ == "__main__":
    zmq_poll_fix.install()
    from voila.app import main

    sys.argv[0] = "voila"
    sys.exit(main())
