#!/usr/bin/env python3
"""checkdmarc's check_domains (what its command line runs) on the given domains, asking
the name server at IP:PORT (the command line takes only port 53), JSON to stdout.
Usage: checkdmarc_run.py IP:PORT DOMAIN..."""
import sys

import dns.nameserver
import checkdmarc

ip, port = sys.argv[1].rsplit(":", 1)
ns = [dns.nameserver.Do53Nameserver(ip, int(port))]
results = checkdmarc.check_domains(sys.argv[2:], nameservers=ns, timeout=2.0)
print(checkdmarc.results_to_json(results))
