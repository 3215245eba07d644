#!/usr/bin/env python3
"""Writes a gzipped DMARC aggregate report with N records (default 1,000,000; about
225 MB of XML, under the parser's 256 MiB input limit) to stdout,
for memory measurements of `dmarc report parse` (BENCHMARKS.md). Deterministic; nothing
is committed.

    python3 scripts/bench/big_aggregate.py 1000000 > /tmp/big.xml.gz
"""
import gzip
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
out = gzip.GzipFile(fileobj=sys.stdout.buffer, mode="wb", compresslevel=6, mtime=0)
w = out.write
w(b"""<?xml version="1.0" encoding="UTF-8"?>
<feedback>
  <report_metadata>
    <org_name>big.example</org_name><email>dmarc@big.example</email>
    <report_id>big-1</report_id>
    <date_range><begin>1700000000</begin><end>1700086399</end></date_range>
  </report_metadata>
  <policy_published><domain>example.com</domain><adkim>r</adkim><aspf>r</aspf><p>reject</p><sp>none</sp><pct>100</pct></policy_published>
""")
for i in range(n):
    ip = b"10.%d.%d.%d" % ((i >> 16) & 255, (i >> 8) & 255, i & 255)
    ok = i % 3 != 0
    disp = b"none" if ok else b"reject"
    res = b"pass" if ok else b"fail"
    # One SPF result in one record of ten (a record without one is valid: RFC 9990 makes
    # <spf> optional); the rows stay short, like a large receiver's.
    auth = (b"<auth_results><spf><domain>b.example.com</domain><result>%s</result></spf></auth_results>" % res
            if i % 10 == 0 else b"<auth_results/>")
    w(b"<record><row><source_ip>%s</source_ip><count>%d</count><policy_evaluated>"
      b"<disposition>%s</disposition><dkim>%s</dkim><spf>%s</spf></policy_evaluated></row>"
      b"<identifiers><header_from>example.com</header_from></identifiers>%s</record>\n"
      % (ip, 1 + i % 7, disp, res, res, auth))
w(b"</feedback>\n")
out.close()
