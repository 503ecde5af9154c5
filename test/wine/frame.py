#!/usr/bin/env python3
"""Native-messaging framing for the Wine test: `frame.py write JSON...` writes
frames to stdout; `frame.py read` reads frames from stdin and prints each as
one line of JSON."""
import json, struct, sys

if sys.argv[1] == "write":
    for m in sys.argv[2:]:
        b = m.encode()
        sys.stdout.buffer.write(struct.pack("<I", len(b)) + b)
    sys.stdout.buffer.flush()
else:
    data = sys.stdin.buffer.read()
    while len(data) >= 4:
        (n,) = struct.unpack("<I", data[:4])
        print(data[4:4 + n].decode())
        data = data[4 + n:]
