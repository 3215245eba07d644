#!/usr/bin/env bash
# Fails when the sans-I/O protocol crate (dmarc-proto) depends, through its normal
# dependencies, on a crate that does I/O: an async runtime, a resolver, sockets, HTTP,
# a database or a file-system walker. The protocol core receives DNS answers through its
# `Lookup` trait and time through `Clock`; everything that touches the world lives above it.
set -euo pipefail
cd "$(dirname "$0")/.."

banned='^(tokio|tokio-[a-z-]+|async-std|smol|mio|hickory-[a-z-]+|trust-dns-[a-z-]+|socket2|hyper|hyper-[a-z-]+|reqwest|h2|rustls|native-tls|openssl|rusqlite|postgres|tokio-postgres|sqlx|walkdir|notify|libc)$'

status=0
for crate in dmarc-proto; do
  deps=$(cargo tree -p "$crate" -e normal --prefix none --format '{p}' --locked | awk '{print $1}' | sort -u)
  bad=$(printf '%s\n' "$deps" | grep -E "$banned" || true)
  if [ -n "$bad" ]; then
    echo "check-deps: $crate must stay free of I/O, but its normal dependencies include:" >&2
    printf '  %s\n' $bad >&2
    echo "  (see ARCHITECTURE.md: the protocol core is sans-I/O; move the I/O to a crate above it)" >&2
    status=1
  fi
done
[ "$status" -eq 0 ] && echo "check-deps: dmarc-proto has no I/O dependencies"
exit "$status"
