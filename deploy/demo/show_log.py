"""Print an agent's JSON log lines (``warden agent run`` writes them on stderr) for the demo.

    python show_log.py NODE LOGFILE [REGEX]

One line per record: ``NODE  level  message  (the fields that matter)``; with REGEX, only
records whose message matches it. Lines that are not JSON are printed as they are.
"""

from __future__ import annotations

import json
import re
import sys

FIELDS = ("version", "model", "stage", "seq", "violations", "pending", "unproved", "during")


def main(argv: list[str]) -> int:
    """Entry point (see the module docstring)."""
    node, path = argv[1], argv[2]
    pattern = re.compile(argv[3]) if len(argv) > 3 else None
    with open(path, encoding="utf-8") as f:
        for raw in f:
            try:
                rec = json.loads(raw)
            except ValueError:
                print(f"  {node}  {raw.rstrip()}")
                continue
            msg = str(rec.get("msg", ""))
            if pattern is not None and not pattern.search(msg):
                continue
            extra = ", ".join(f"{k}={rec[k]}" for k in FIELDS if k in rec and rec[k] is not None)
            tail = f"  ({extra})" if extra else ""
            print(f"  {node:<7} {rec.get('level', ''):<7} {msg}{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
