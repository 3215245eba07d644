#!/usr/bin/env python3
"""Records milter frames between a real MTA and a milter, for the test fixtures in
crates/milter/tests/fixtures/frames/ (how they were made: README.md there).

  milter-capture.py proxy --listen PORT --milter HOST:PORT --out DIR
      Accept milter connections on 127.0.0.1:PORT, relay each to the milter, and write
      every frame of connection N to DIR/NNN.frames, one per line: "> HEX" from the MTA,
      "< HEX" from the milter (the whole frame, length included). Runs until killed.

  milter-capture.py send --smtp HOST:PORT --case JSON --message FILE [--rset]
      Send one message through an SMTP server that allows XCLIENT, as the client of the
      case (its ip, helo, mail_from), to user@receiver.example. With --rset, first start
      a transaction and abandon it with RSET (the MTA aborts the milter's message).
      Prints the server's reply to the end of data.
"""
import argparse
import json
import os
import smtplib
import socket
import struct
import sys
import threading


def relay(src, dst, log, lock, mark):
    buf = b""
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
            buf += data
            while len(buf) >= 4:
                (n,) = struct.unpack(">I", buf[:4])
                if len(buf) < 4 + n:
                    break
                frame, buf = buf[: 4 + n], buf[4 + n :]
                with lock:
                    log.write(f"{mark} {frame.hex()}\n")
                    log.flush()
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def proxy(args):
    host, port = args.milter.rsplit(":", 1)
    os.makedirs(args.out, exist_ok=True)
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", args.listen))
    ls.listen(16)
    n = 0
    while True:
        mta, _ = ls.accept()
        n += 1
        milter = socket.create_connection((host, int(port)))
        log = open(os.path.join(args.out, f"{n:03}.frames"), "w")
        lock = threading.Lock()
        a = threading.Thread(target=relay, args=(mta, milter, log, lock, ">"), daemon=True)
        b = threading.Thread(target=relay, args=(milter, mta, log, lock, "<"), daemon=True)
        a.start()
        b.start()


def send(args):
    case = json.loads(args.case)
    host, port = args.smtp.rsplit(":", 1)
    with open(args.message, "rb") as f:
        data = f.read()
    s = smtplib.SMTP(host, int(port), timeout=60)
    s.ehlo("capture.client")
    code, msg = s.docmd("XCLIENT", f"ADDR={case['ip']} NAME=[UNAVAILABLE] HELO={case['helo']}")
    if code != 220:
        sys.exit(f"XCLIENT refused: {code} {msg!r}")
    s.ehlo_resp = None
    s.ehlo(case["helo"])
    if args.rset:
        s.mail(case["mail_from"])
        s.rcpt("user@receiver.example")
        s.rset()
    s.mail(case["mail_from"])
    code, msg = s.rcpt("user@receiver.example")
    if code != 250:
        sys.exit(f"RCPT refused: {code} {msg!r}")
    code, msg = s.data(data)
    print(code, msg.decode(errors="replace"))
    s.quit()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    pp = sub.add_parser("proxy")
    pp.add_argument("--listen", type=int, required=True)
    pp.add_argument("--milter", required=True)
    pp.add_argument("--out", required=True)
    ps = sub.add_parser("send")
    ps.add_argument("--smtp", required=True)
    ps.add_argument("--case", required=True)
    ps.add_argument("--message", required=True)
    ps.add_argument("--rset", action="store_true")
    args = p.parse_args()
    proxy(args) if args.cmd == "proxy" else send(args)


if __name__ == "__main__":
    main()
