"""A consumer process for redelivery tests: records each event id it handles in a file.

Usage: python bus_consumer.py HOST PORT OUT_FILE BLOCK_FIRST(0|1) [LEDGER_FILE MAX_ATTEMPTS]
With BLOCK_FIRST=1 it hangs inside the handler of the first message (to be SIGKILLed there).
With LEDGER_FILE the bus counts attempts per message there (see stopline.shared.ledger).
"""

import sys
import threading
import time

from stopline.shared.bus import Bus
from stopline.shared.config import SiteConfig

host, port, out, block_first = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
ledger, attempts = (sys.argv[5], int(sys.argv[6])) if len(sys.argv) > 6 else (None, 20)
site = SiteConfig.model_validate({"site": "test", "mqtt": {"host": host, "port": port,
                                                            "consumer": {"max_attempts": attempts}}})
bus = Bus(site, "consumer", "one", ledger=ledger)


def handle(env, topic):
    with open(out, "a") as f:
        f.write(f"start {env.message.event_id}\n")
    if block_first:
        time.sleep(3600)
    with open(out, "a") as f:
        f.write(f"done {env.message.event_id}\n")


bus.subscribe("stopline/test/+/violation/candidate", handle, group="consumers")
bus.start(wait_s=10)
print("ready", flush=True)
threading.Event().wait()
