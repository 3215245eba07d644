#!/usr/bin/env python3
"""Validates the ARC chain of messages with dkimpy (PyPI), for the agreement test of
`dmarc arc verify` (crates/dmarc/tests/arc_cli.rs).

Usage: arc_dkimpy_verify.py ZONE.json FILE...

ZONE.json maps DNS names to TXT values (the character-strings joined). Prints one line per
file: FILE, a tab, and the chain validation status (none, pass or fail). dkimpy reports "no
result" for a chain whose newest seal says cv=fail; RFC 8617 §5.2 makes that "fail".
"""
import json
import sys

import dkim


def main():
    zone = {k.rstrip(".").lower(): v for k, v in json.load(open(sys.argv[1])).items()}

    def dnsfunc(name, timeout=5):
        value = zone.get(name.decode().rstrip(".").lower())
        return value.encode() if value is not None else None

    for path in sys.argv[2:]:
        msg = open(path, "rb").read()
        cv, _results, reason = dkim.arc_verify(msg, dnsfunc=dnsfunc)
        cv = (cv or b"fail").decode().lower()
        print(f"{path}\t{cv}")
        print(f"{path}: {cv}: {reason}", file=sys.stderr)


if __name__ == "__main__":
    main()
