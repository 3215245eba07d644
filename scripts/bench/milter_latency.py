#!/usr/bin/env python3
"""Per-message SMTP latency through Postfix, for scripts/bench/milter.sh.

Sends the mail-bench messages one after another over one SMTP connection per message,
each with XCLIENT (the case's client IP and HELO, so every filter sees what the corpus
says), and times each transaction from MAIL FROM to the reply to the final dot: what a
milter adds shows there (its SPF, DKIM, ARC and DMARC work, and its round trips with
Postfix). Prints one JSON object: messages, replies by code, p50/p90/p99/max in ms.

    milter_latency.py HOST:PORT CORPUS_DIR [--rounds N] [--limit N]
"""

import argparse
import json
import socket
import sys
import time


def reply(f):
    lines = []
    while True:
        line = f.readline()
        if not line:
            raise ConnectionError("connection closed")
        line = line.decode("ascii", "replace").rstrip("\r\n")
        lines.append(line)
        if len(line) < 4 or line[3] != "-":
            return "\n".join(lines)


def command(sock, f, line):
    sock.sendall(line.encode() + b"\r\n")
    return reply(f)


def stuffed(msg):
    out = bytearray()
    for line in msg.splitlines(keepends=True):
        if line.startswith(b"."):
            out += b"."
        out += line
    if not out.endswith(b"\r\n"):
        out += b"\r\n"
    return bytes(out) + b".\r\n"


def send(addr, case, data):
    host, port = addr.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=60) as s:
        f = s.makefile("rb")
        reply(f)
        r = command(s, f, "EHLO bench.test")
        assert "XCLIENT" in r, r
        r = command(s, f, f"XCLIENT ADDR={case['ip']} NAME=[UNAVAILABLE] HELO={case['helo']}")
        assert r.startswith("220"), r
        command(s, f, f"EHLO {case['helo']}")
        start = time.perf_counter()
        r = command(s, f, f"MAIL FROM:<{case['mail_from']}>")
        assert r.startswith("250"), r
        r = command(s, f, "RCPT TO:<user@receiver.example>")
        assert r.startswith("250"), r
        r = command(s, f, "DATA")
        assert r.startswith("354"), r
        s.sendall(data)
        r = reply(f)
        elapsed = time.perf_counter() - start
        command(s, f, "QUIT")
        return elapsed, r[:3]


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("smtp")
    ap.add_argument("corpus")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--limit", type=int, default=0)
    a = ap.parse_args()
    cases = [json.loads(l) for l in open(f"{a.corpus}/cases.jsonl")]
    if a.limit:
        cases = cases[: a.limit]
    data = [stuffed(open(f"{a.corpus}/{c['file']}", "rb").read()) for c in cases]
    times, codes = [], {}
    for _ in range(a.rounds):
        for c, d in zip(cases, data):
            t, code = send(a.smtp, c, d)
            times.append(t * 1000)
            codes[code] = codes.get(code, 0) + 1
    times.sort()
    print(
        json.dumps(
            {
                "messages": len(times),
                "replies": codes,
                "p50_ms": round(percentile(times, 50), 3),
                "p90_ms": round(percentile(times, 90), 3),
                "p99_ms": round(percentile(times, 99), 3),
                "max_ms": round(times[-1], 3),
            }
        )
    )


if __name__ == "__main__":
    sys.exit(main())
