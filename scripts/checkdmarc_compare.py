#!/usr/bin/env python3
"""`dmarc check` side by side with checkdmarc (PyPI) on the same domains, both asking the
same zone served by `zone-server` on loopback.

For every domain:
  * the SPF DNS-lookup count and void-lookup count must be equal;
  * every problem checkdmarc reports for SPF, DMARC, MX and TLS-RPT must be found by
    `dmarc check` too (each checkdmarc message is mapped to the finding codes that say
    the same thing; a message with no mapping fails the comparison);
  * except for the disagreements listed in DISAGREEMENTS, each with the RFC section that
    says why; a listed disagreement that no longer occurs also fails (the list must stay
    true). crates/owner/CHECKDMARC.md explains each one.

MTA-STS and BIMI are left out: checkdmarc fetches their files over HTTPS with the system
resolver, which a loopback test cannot serve.

Usage: checkdmarc_compare.py DMARC_BIN ZONE_SERVER_BIN ZONE_FILE [DOMAIN...]
(without domains: every `; case` domain of the zone file).
"""

import json
import re
import subprocess
import sys
import time

try:
    import dns.nameserver
    from checkdmarc.dmarc import check_dmarc
    from checkdmarc.smtp import check_mx
    from checkdmarc.smtp_tls_reporting import check_smtp_tls_reporting
    from checkdmarc.spf import check_spf
except ImportError:
    sys.exit(
        "checkdmarc is not installed: pip install checkdmarc (scripts/test.sh does this "
        "when run as root)"
    )

# checkdmarc message (regular expression) -> the finding codes of ours that report the
# same problem (any one of them must be present).
MAPPING = [
    (r"requires \d+/10 maximum DNS lookups", {"spf_too_many_lookups"}),
    (r"maximum void DNS lookups", {"spf_too_many_void_lookups"}),
    (r"The include target .* has no SPF record", {"spf_include_missing", "spf_split_glued"}),
    (r"multiple SPF TXT records", {"spf_multiple_records"}),
    (r"^An SPF record does not exist", {"spf_missing"}),
    (r"^The domain does not exist\.$", {"spf_missing", "spf_redirect_missing"}),
    (r"(Include|Redirect) loop", {"spf_loop"}),
    (r"ptr mechanism", {"spf_ptr"}),
    (r"An a mechanism points to|Error when processing .*does not exist", {"spf_a_no_address", "spf_mx_no_records"}),
    (r"An mx mechanism points to .* does not have any MX records", {"spf_mx_no_records"}),
    (r"The MX host .* does not have any A/AAAA records", {"spf_mx_host_no_address"}),
    (r"has more than 10 MX records", {"spf_too_many_mx"}),
    (r"redirect modifier was ignored", {"spf_redirect_ignored"}),
    (r"Any text after the all mechanism|multiple all mechanisms", {"spf_terms_after_all", "spf_redirect_ignored"}),
    (r"TXT records at exp value", {"spf_exp_missing"}),
    (r"bytes, over 512|recommends keeping answers under about", {"spf_record_long"}),
    (r"is not a valid IPv[46] value|Expected .* at position|is not a valid SPF term", {"spf_syntax"}),
    (r"All nameservers failed to answer", {"spf_dns_error", "dmarc_dns_error", "mx_dns_error", "tls_rpt_syntax"}),
    (r"^A DMARC record does not exist", {"dmarc_missing"}),
    (r"Multiple DMARC policy records", {"dmarc_multiple_records"}),
    (r"Unrelated TXT records were discovered", {"dmarc_version"}),
    (r"Tag p must have one of the following values", {"dmarc_no_usable_policy", "dmarc_syntax"}),
    (r"is not a valid \w+ tag value", {"dmarc_syntax"}),
    (r"^Error: Expected .* at position", {"dmarc_syntax", "dmarc_syntax_warning"}),
    (r"Unknown DMARC tag", {"dmarc_unknown_tag"}),
    (r"Support for the (pct|rf|ri) tag was removed", {"dmarc_historic_tag"}),
    (r"A p tag value of none", {"dmarc_policy_none"}),
    (r"An sp tag value of none|An np tag value of none", {"dmarc_subdomain_weaker", "dmarc_policy_none"}),
    (r"rua tag \(destination for aggregate reports\) not found", {"dmarc_no_rua"}),
    (r"does not indicate that it accepts DMARC reports", {"dmarc_rua_not_authorized", "dmarc_ruf_not_authorized"}),
    (r"Failed to retrieve MX records for the domain of ru[af] email address|does not have any MX records for the domain of", {"dmarc_report_no_mx"}),
    (r"might not send to more than two", {"dmarc_too_many_uris"}),
    (r"uses the \w+ scheme", {"dmarc_uri_scheme"}),
    (r"has no MX records; mail could still be delivered", {"mx_missing"}),
    (r"has a null MX record", {"mx_null"}),
    (r"null MX record \(0 \.\) alongside other MX records", {"mx_null_mixed"}),
    (r"does not have any A or AAAA DNS records|^The domain [0-9.]+ does not exist", {"mx_host_no_address"}),
    (r"which is a CNAME alias", {"mx_host_cname"}),
    (r"points at the IP address", {"mx_ip_literal"}),
    (r"does not have any reverse DNS \(PTR\) records", {"mx_host_no_ptr"}),
    (r"An SMTP TLS Reporting record does not exist", {"tls_rpt_missing"}),
    (r"Multiple SMTP TLS Reporting records", {"tls_rpt_multiple_records"}),
    (r"is not a valid SMTP TLS Reporting URI", {"tls_rpt_syntax"}),
]

# (domain, what) -> why we differ, with the RFC section. `what` is "dns_lookups",
# "void_lookups" or "message:<regex>" for a checkdmarc message we deliberately do not
# report. See crates/owner/CHECKDMARC.md.
DISAGREEMENTS = {
    ("spf-ptr.test", "void_lookups"): (
        "checkdmarc counts a void lookup when the ptr target has no A/AAAA record; "
        "RFC 7208 §5.5 ptr asks for the client's PTR names and their addresses, never the "
        "target's own addresses, so the target's lack of A records is no void lookup"
    ),
}


def run_ours(dmarc_bin, addr, domains):
    out = subprocess.run(
        [dmarc_bin, "check", "--json", "--no-fetch", "--jobs", "8", "--dns-timeout", "5", "--nameserver", addr, *domains],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if out.returncode not in (0, 1):
        sys.exit(f"dmarc check failed ({out.returncode}): {out.stderr}")
    return {r["domain"]: r for r in map(json.loads, out.stdout.splitlines())}


def run_theirs(addr, domains):
    ip, port = addr.rsplit(":", 1)
    ns = [dns.nameserver.Do53Nameserver(ip, int(port))]
    results = {}
    for d in domains:
        results[d] = {
            "spf": check_spf(d, nameservers=ns, timeout=5),
            "dmarc": check_dmarc(d, nameservers=ns, timeout=5),
            "mx": check_mx(d, nameservers=ns, timeout=5),
            "tls_rpt": check_smtp_tls_reporting(d, nameservers=ns, timeout=5),
        }
    return results


def messages(result):
    for area in ("spf", "dmarc", "mx", "tls_rpt"):
        r = result[area]
        if r.get("error"):
            yield area, r["error"]
        for w in r.get("warnings", []):
            yield area, w


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    dmarc_bin, server_bin, zone = sys.argv[1:4]
    domains = sys.argv[4:]
    if not domains:
        with open(zone) as f:
            domains = sorted({l.split()[3] for l in f if l.startswith("; case ")})
    server = subprocess.Popen(
        [server_bin, "--zone", zone, "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        addr = server.stdout.readline().strip()
        if not addr:
            sys.exit("zone-server did not start")
        t0 = time.monotonic()
        ours = run_ours(dmarc_bin, addr, domains)
        t1 = time.monotonic()
        theirs = run_theirs(addr, domains)
        t2 = time.monotonic()
    finally:
        server.terminate()
        server.wait(timeout=10)

    failures = []
    seen_disagreements = set()
    compared_counts = 0
    compared_messages = 0
    for d in domains:
        o, t = ours[d], theirs[d]
        codes = {f["code"] for f in o["findings"]}
        for key, theirs_key in (("dns_lookups", "dns_lookups"), ("void_lookups", "void_dns_lookups")):
            theirs_n = t["spf"].get(theirs_key)
            if theirs_n is None or o["spf"]["record"] is None:
                continue
            compared_counts += 1
            if theirs_n != o["spf"][key]:
                if (d, key) in DISAGREEMENTS:
                    seen_disagreements.add((d, key))
                else:
                    failures.append(f"{d}: SPF {key}: checkdmarc {theirs_n}, dmarc check {o['spf'][key]}")
        for area, msg in messages(t):
            compared_messages += 1
            wanted = [codes_ for pattern, codes_ in MAPPING if re.search(pattern, msg)]
            listed = [k for k in DISAGREEMENTS if k[0] == d and k[1].startswith("message:") and re.search(k[1][8:], msg)]
            if listed:
                seen_disagreements.update(listed)
                continue
            if not wanted:
                failures.append(f"{d}: checkdmarc {area}: no mapping for {msg!r}")
            elif not any(w & codes for w in wanted):
                failures.append(f"{d}: checkdmarc {area} reports {msg!r}; dmarc check has none of {sorted(set().union(*wanted))} (it has {sorted(codes)})")
    for k in DISAGREEMENTS:
        if k not in seen_disagreements:
            failures.append(f"listed disagreement no longer occurs (remove it): {k}")
    print(
        f"checkdmarc comparison: {len(domains)} domains, {compared_counts} SPF counts and "
        f"{compared_messages} checkdmarc messages compared, {len(seen_disagreements)} listed "
        f"disagreement(s); dmarc check {t1 - t0:.2f} s, checkdmarc {t2 - t1:.2f} s"
    )
    for d in sorted(seen_disagreements):
        print(f"  disagreement {d}: {DISAGREEMENTS[d]}")
    if failures:
        print("FAILED:")
        for f in failures:
            print("  " + f)
        sys.exit(1)


if __name__ == "__main__":
    main()
