#!/usr/bin/env python3
"""Slow connections against cyclecastd's API while an operator's curl is timed (bench/api_flood/run).

  flood.py PORT SLOW REQUESTS [--reopen] [--from ADDRESS]

Opens SLOW connections to 127.0.0.1:PORT: half send nothing, half send half a request header
and then one more header byte every second (a slow-header client). With --reopen, every one
the server closes is opened again at once (an attacker who keeps the pressure on). With
--from ADDRESS (e.g. 127.0.0.2) the slow connections come from there, the operator's from
127.0.0.1. Once all are open, times REQUESTS operator requests (`curl` GET /api/v1/cells, a fresh connection each,
0.5 s apart; curl's time_total) and prints one line per request, then a summary line:

  operator requests=R ok=K status=200:K p50_s=... max_s=... slow=N closed_by_server=C reopened=O
"""
import resource
import selectors
import socket
import subprocess
import sys
import threading
import time

HALF_HEADER = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


class Flood:
    def __init__(self, port, count, reopen, source):
        self.port, self.count, self.reopen, self.source = port, count, reopen, source
        self.selector = selectors.DefaultSelector()
        self.closed = 0
        self.reopened = 0
        self.lock = threading.Lock()
        self.stop = False

    def open_one(self, index):
        sock = socket.create_connection(("127.0.0.1", self.port), source_address=(self.source, 0))
        sock.setblocking(False)
        if index % 2 == 1:
            sock.send(HALF_HEADER)
        self.selector.register(sock, selectors.EVENT_READ, index)

    def open_all(self):
        for index in range(self.count):
            self.open_one(index)

    def run(self):
        """Watches for closes (and re-opens), and trickles a byte into the slow-header half."""
        next_trickle = time.monotonic() + 1
        while not self.stop:
            for key, _ in self.selector.select(timeout=0.2):
                try:
                    data = key.fileobj.recv(4096)
                except ConnectionError:
                    data = b""
                if data:
                    continue  # an answer (503): the close follows
                self.selector.unregister(key.fileobj)
                key.fileobj.close()
                with self.lock:
                    self.closed += 1
                if self.reopen and not self.stop:
                    self.open_one(key.data)
                    with self.lock:
                        self.reopened += 1
            if time.monotonic() >= next_trickle:
                next_trickle += 1
                for key in list(self.selector.get_map().values()):
                    if key.data % 2 == 1:
                        try:
                            key.fileobj.send(b"x")
                        except OSError:
                            pass


def operator_request(port):
    """(HTTP status, seconds from curl's start to the end of the answer)."""
    result = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{time_total}", "--max-time", "60",
         f"http://127.0.0.1:{port}/api/v1/cells"], capture_output=True, text=True)
    status, seconds = (result.stdout.split() + ["000", "0"])[:2]
    return status, float(seconds)


def main(argv):
    port, count, requests = int(argv[1]), int(argv[2]), int(argv[3])
    reopen = "--reopen" in argv[4:]
    source = argv[argv.index("--from") + 1] if "--from" in argv else "127.0.0.1"
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, count + 256)), hard))
    flood = Flood(port, count, reopen, source)
    flood.open_all()
    watcher = threading.Thread(target=flood.run)
    watcher.start()
    time.sleep(1)  # let the server accept (and shed) what it will
    results = []
    for i in range(requests):
        status, seconds = operator_request(port)
        results.append((status, seconds))
        print(f"request {i + 1}: HTTP {status} in {seconds:.3f} s", flush=True)
        time.sleep(0.5)
    flood.stop = True
    watcher.join()
    seconds = sorted(s for _, s in results)
    statuses = {}
    for status, _ in results:
        statuses[status] = statuses.get(status, 0) + 1
    ok = statuses.get("200", 0)
    status_text = ",".join(f"{k}:{v}" for k, v in sorted(statuses.items()))
    print(f"operator requests={requests} ok={ok} status={status_text} "
          f"p50_s={seconds[len(seconds) // 2]:.3f} max_s={seconds[-1]:.3f} slow={count} "
          f"closed_by_server={flood.closed} reopened={flood.reopened} from={source}")


if __name__ == "__main__":
    main(sys.argv)
