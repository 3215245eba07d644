#!/usr/bin/env python3
"""Our outgoing reports read by parsedmarc (PyPI), an independent reader, beside our own
`dmarc report parse --json`.

The mail-bench corpus goes through `dmarc verify --batch --record`, then `dmarc report
send --dry-run` (aggregate reports, and failure reports with `[failure] enabled`) writes
every report message as it would be sent. For every message, parsedmarc must read it as
the same kind of report, and agree with our reader on:

  * aggregate: org_name, policy domain, the period, and every record (source IP, count,
    disposition, DMARC's DKIM and SPF results, header_from), so also the total count;
  * failure: source IP, reported domain, Auth-Failure, Delivery-Result, the arrival time,
    and that only the headers of the message were sent.

Usage: parsedmarc_compare.py DMARC_BIN [CORPORA_DIR]
"""

import collections
import datetime
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

try:
    import parsedmarc
except ImportError:
    sys.exit(
        "parsedmarc is not installed: pip install parsedmarc (scripts/test.sh does this "
        "when run as root)"
    )


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr}\n{r.stdout}")
    return r.stdout


def utc(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime(
        "%Y-%m-%d %H:%M:%S"
    )


def ours(dmarc, path):
    lines = [l for l in run([dmarc, "report", "parse", "--json", path]).splitlines() if l]
    if len(lines) != 1:
        sys.exit(f"{path}: dmarc report parse found {len(lines)} reports")
    return json.loads(lines[0])


def compare_aggregate(path, theirs, mine, problems):
    meta = theirs["report_metadata"]
    want = {
        "org_name": mine["org_name"],
        "domain": mine["policy_published"]["domain"],
        "begin": utc(mine["begin"]),
        "end": utc(mine["end"]),
    }
    got = {
        "org_name": meta["org_name"],
        "domain": theirs["policy_published"]["domain"],
        "begin": meta["begin_date"],
        "end": meta["end_date"],
    }
    if got != want:
        problems.append(f"{path}: metadata: parsedmarc {got}, ours {want}")

    def rows_of(records, pick):
        c = collections.Counter()
        for r in records:
            c[pick(r)] += 1
        return c

    theirs_rows = rows_of(
        theirs["records"],
        lambda r: (
            r["source"]["ip_address"],
            r["count"],
            r["policy_evaluated"]["disposition"],
            r["policy_evaluated"]["dkim"],
            r["policy_evaluated"]["spf"],
            r["identifiers"]["header_from"],
        ),
    )
    mine_rows = rows_of(
        mine["records"],
        lambda r: (
            r["source_ip"],
            r["count"],
            r["disposition"],
            r["dkim"],
            r["spf"],
            r["header_from"],
        ),
    )
    if theirs_rows != mine_rows:
        problems.append(
            f"{path}: records differ: only parsedmarc {dict(theirs_rows - mine_rows)}, "
            f"only ours {dict(mine_rows - theirs_rows)}"
        )
    return sum(r["count"] for r in theirs["records"])


def compare_failure(path, theirs, mine, problems):
    want = {
        "source_ip": mine["source_ip"],
        "reported_domain": mine["reported_domain"][0],
        "auth_failure": [mine["auth_failure"]],
        "delivery_result": mine["delivery_result"],
        "arrival": utc(mine["arrival_timestamp"]),
        "headers_only": not mine["original_body_included"],
    }
    got = {
        "source_ip": theirs["source"]["ip_address"],
        "reported_domain": theirs["reported_domain"],
        "auth_failure": theirs["auth_failure"],
        "delivery_result": theirs["delivery_result"],
        "arrival": theirs["arrival_date_utc"],
        "headers_only": theirs["sample_headers_only"],
    }
    if got != want:
        problems.append(f"{path}: parsedmarc {got}, ours {want}")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    dmarc = os.path.abspath(sys.argv[1])
    corpora = sys.argv[2] if len(sys.argv) > 2 else os.environ.get(
        "DMARC_CORPORA", os.path.join(os.path.dirname(__file__), "../../shared/corpora")
    )
    bench = os.path.join(corpora, "mail-bench")
    with tempfile.TemporaryDirectory() as d:
        db = os.path.join(d, "obs.sqlite3")
        zone = os.path.join(bench, "zone.txt")
        run([dmarc, "verify", "--batch", os.path.join(bench, "cases.jsonl"), "--record",
             "--queue-failures", "--db", db, "--dns-zone", zone])
        config = os.path.join(d, "reports.toml")
        with open(config, "w") as f:
            f.write('[organization]\nname = "Test Receiver"\nemail = "dmarc@receiver.example"\n'
                    "[failure]\nenabled = true\nmax_age = 604800\nper_domain_per_hour = 1000\n")
        out = os.path.join(d, "out")
        now = str(int(time.time()) + 2 * 86400)
        run([dmarc, "report", "send", "--dry-run", "--out", out, "--db", db, "--dns-zone",
             zone, "--config", config, "--now", now])
        problems = []
        kinds = collections.Counter()
        messages = 0
        for path in sorted(glob.glob(os.path.join(out, "*.eml"))):
            mine = ours(dmarc, path)
            parsed = parsedmarc.parse_report_file(path, offline=True)
            kind = parsed["report_type"]
            kinds[kind] += 1
            if kind == "aggregate" and mine["kind"] == "aggregate":
                messages += compare_aggregate(path, parsed["report"], mine, problems)
            elif kind in ("failure", "forensic") and mine["kind"] == "failure":
                compare_failure(path, parsed["report"], mine, problems)
            else:
                problems.append(f"{path}: parsedmarc reads a {kind} report, ours a {mine['kind']}")
        if kinds["aggregate"] == 0 or kinds["failure"] + kinds["forensic"] == 0:
            problems.append(f"expected aggregate and failure reports, found {dict(kinds)}")
        for p in problems:
            print(p)
        if problems:
            sys.exit(f"parsedmarc_compare: {len(problems)} disagreements")
        print(
            f"parsedmarc_compare: parsedmarc {parsedmarc.__version__} agrees on "
            f"{kinds['aggregate']} aggregate report messages ({messages} messages counted) "
            f"and {kinds['failure'] + kinds['forensic']} failure reports"
        )


if __name__ == "__main__":
    main()
