"""A consumer process for redelivery tests: records each event id it handles in a file.

Usage: python bus_consumer.py HOST PORT OUT_FILE BLOCK_FIRST(0|1)
With BLOCK_FIRST=1 it hangs inside the handler of the first message (to be SIGKILLed there).
"""

import sys
import threading
import time

from stopline.shared.bus import Bus
from stopline.shared.config import SiteConfig

host, port, out, block_first = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
site = SiteConfig.model_validate({"site": "test", "mqtt": {"host": host, "port": port}})
bus = Bus(site, "consumer", "one")


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
