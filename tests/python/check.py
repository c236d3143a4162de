# Debian's own python3, unmodified, with its standard library packed from the host (tests/glibc.rs):
# modules written in Python and in C (json, re, hashlib, zlib), threads, a child process through
# subprocess (fork and exec, or posix_spawn), files in /tmp. One line per check, "python: WHAT:
# ok" or "python: WHAT: FAIL"; exit status 0 iff all passed.
import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import zlib

failed = False


def check(what, ok):
    global failed
    print(f"python: {what}: {'ok' if ok else 'FAIL'}", flush=True)
    failed = failed or not ok


check("json round trip", json.loads(json.dumps({"a": [1, 2, None]})) == {"a": [1, 2, None]})
check("re", re.sub(r"(\d+)", r"<\1>", "a1b22") == "a<1>b<22>")
check("hashlib sha256", hashlib.sha256(b"lde").hexdigest().startswith("aeb35b1a"))
check("zlib round trip", zlib.decompress(zlib.compress(b"x" * 10000)) == b"x" * 10000)

results = []
threads = [threading.Thread(target=lambda i=i: results.append(i * i)) for i in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
check("4 threads", sorted(results) == [0, 1, 4, 9])

out = subprocess.run(["echo", "from a child"], capture_output=True, text=True)
check("subprocess", out.returncode == 0 and out.stdout == "from a child\n")

path = "/tmp/python-check.txt"
with open(path, "w") as f:
    f.write("written\n")
with open(path) as f:
    check("a file in /tmp", f.read() == "written\n")
os.remove(path)
check("os.listdir", "tmp" in os.listdir("/"))
sys.exit(1 if failed else 0)
