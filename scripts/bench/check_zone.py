#!/usr/bin/env python3
"""Writes the zone of the `dmarc check` benchmark: N domains (default 100) set up as real
ones are: DMARC with rua, SPF with includes of shared "provider" records (nested, as the
big providers' are), MX hosts with addresses and PTRs, a DKIM key, TLS-RPT; a few broken
in the usual ways. No MTA-STS or BIMI records (checkdmarc would fetch their files over
HTTPS). Usage: check_zone.py [N] > bench.zone; prints the domain names to stderr."""
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
ED = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
out = ["$ORIGIN bench.", "$TTL 300", "@ IN SOA ns.bench. hostmaster.bench. 1 3600 600 86400 300", "@ IN NS ns.bench.", "ns IN A 127.0.0.1"]
# Shared providers: includes nest two deep, like _spf.google.com -> _netblocks.
for p in range(5):
    nets = " ".join(f"ip4:198.{18 + p}.{i}.0/24" for i in range(6))
    out.append(f'_spf.provider{p}.bench. IN TXT "v=spf1 include:_nb1.provider{p}.bench. include:_nb2.provider{p}.bench. ~all"')
    out.append(f'_nb1.provider{p}.bench. IN TXT "v=spf1 {nets} ~all"')
    out.append(f'_nb2.provider{p}.bench. IN TXT "v=spf1 ip6:2001:db8:{p}::/48 a:out.provider{p}.bench. ~all"')
    out.append(f"out.provider{p}.bench. IN A 203.0.113.{p + 1}")
out.append("reports.bench. IN MX 10 mx.reports.bench.")
out.append("mx.reports.bench. IN A 192.0.2.200")
for i in range(n):
    d = f"d{i:03}.bench."
    out.append(f"{d} IN MX 10 mx1.{d}")
    out.append(f"{d} IN MX 20 mx2.{d}")
    out.append(f"mx1.{d} IN A 192.0.{2 + i // 250}.{i % 250 + 1}")
    out.append(f"mx2.{d} IN A 192.0.{2 + i // 250}.{i % 250 + 1}")
    out.append(f"{i % 250 + 1}.{2 + i // 250}.0.192.in-addr.arpa. IN PTR mx1.{d}")
    includes = " ".join(f"include:_spf.provider{(i + k) % 5}.bench." for k in range(1 + i % 3))
    tail = "-all" if i % 7 else "?all"
    out.append(f'{d} IN TXT "v=spf1 mx {includes} {tail}"')
    out.append(f'{d} IN TXT "google-site-verification=abc{i}"')
    policy = ["none", "quarantine", "reject"][i % 3]
    rua = f"mailto:dmarc@{d[:-1]}" if i % 5 else "mailto:dmarc@reports.bench"
    out.append(f'_dmarc.{d} IN TXT "v=DMARC1; p={policy}; rua={rua}"')
    out.append(f'selector1._domainkey.{d} IN TXT "v=DKIM1; k=ed25519; p={ED}"')
    out.append(f'_smtp._tls.{d} IN TXT "v=TLSRPTv1; rua=mailto:tls@{d[:-1]}"')
    print(d[:-1], file=sys.stderr)
print("\n".join(out))
