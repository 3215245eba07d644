#!/usr/bin/env python3
"""Builds the seed corpora of the fuzz targets from the outside conformance suites.

Usage: python3 fuzz/seed.py [CORPORA_DIR]   (default: ../shared/corpora beside the checkout,
or $DMARC_CORPORA). Writes fuzz/corpus/<target>/ (not in git); the committed inputs that once
crashed a target live in fuzz/regressions/<target>/ and are copied in as seeds too.
"""
import hashlib
import os
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CORPORA = Path(
    sys.argv[1] if len(sys.argv) > 1 else os.environ.get("DMARC_CORPORA", ROOT.parent / "shared" / "corpora")
)
OUT = HERE / "corpus"
MAX_SEED = 256 * 1024


def files(*patterns):
    for pattern in patterns:
        yield from sorted(p for p in CORPORA.glob(pattern) if p.is_file())


def put(target, data):
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    if not data or len(data) > MAX_SEED:
        return
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


def texts():
    for p in files("**/*.yml", "**/*.yaml", "**/*.json", "**/*.txt", "**/*.zone"):
        try:
            yield p.read_text("utf-8", "replace")
        except OSError:
            pass


def header_fields(raw, name):
    """The values of every `name:` field of a message's header block (folded lines joined)."""
    head = raw.split(b"\n\n", 1)[0].replace(b"\r\n", b"\n")
    out, cur = [], None
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t") and cur is not None:
            cur += b"\r\n" + line
            continue
        if cur is not None:
            out.append(cur)
            cur = None
        k, _, v = line.partition(b":")
        if k.strip().lower() == name.lower():
            cur = v
    if cur is not None:
        out.append(cur)
    return out


def main():
    if not CORPORA.is_dir():
        sys.exit(f"seed.py: corpora not found at {CORPORA} (set DMARC_CORPORA)")
    all_text = list(texts())
    for t in all_text:
        for m in re.findall(r"v=DMARC1[^\"'\n]*", t):
            put("dmarc_record", m)
            put("tag_list", m)
        for m in re.findall(r"v=spf1[^\"'\n]*", t):
            put("spf_record", m)
        for m in re.findall(r"[^\s\"']*%\{[^\s\"']*", t):
            put("spf_macro", m)
        for m in re.findall(r"v=DKIM1[^\"'\n]*", t):
            put("dkim_key", m)
            put("tag_list", m)
        for m in re.findall(r"(?:ARC-)?Authentication-Results:\s*([^\n]*(?:\n[ \t][^\n]*)*)", t):
            put("auth_results", m)
        for m in re.findall(r"mailto:[^\s\"',;]+", t):
            put("dmarc_record", "v=DMARC1; p=none; rua=" + m)
    messages = list(files("mail-bench/messages/*.eml"))[:40] + list(
        files("dkim-*/**/*.eml", "dkim-dkimpy/data/*", "dmarc-authheaders/messages/*", "arc-mail-auth/*.txt")
    )
    for p in messages:
        raw = p.read_bytes()
        put("message_from", raw)
        for v in header_fields(raw, b"DKIM-Signature"):
            put("dkim_signature", v)
            put("tag_list", v)
        for v in header_fields(raw, b"Authentication-Results"):
            put("auth_results", v)
        for v in header_fields(raw, b"ARC-Seal") + header_fields(raw, b"ARC-Message-Signature"):
            put("tag_list", v)
    for p in files("reports-*/**/*"):
        raw = p.read_bytes()
        name = p.name.lower()
        put("containers", raw)
        if name.endswith(".xml"):
            put("aggregate_xml", raw)
        elif name.endswith(".json"):
            put("tls_rpt", raw)
        elif name.endswith(".eml") or "arf" in str(p).lower():
            put("failure_report", raw)
    for p in files("dmarc-xsd/*.xml"):
        put("aggregate_xml", p.read_bytes())
    for p in list(files("mail-bench/zone.txt")) + sorted((ROOT / "examples").glob("*.zone")):
        put("zone_file", p.read_bytes())
    # Inputs that once crashed a target are seeds for ever.
    reg = HERE / "regressions"
    if reg.is_dir():
        for d in sorted(reg.iterdir()):
            for p in sorted(d.iterdir()):
                put(d.name, p.read_bytes())
    for d in sorted(x for x in OUT.iterdir() if x.is_dir()):
        print(f"{d.name}: {len(list(d.iterdir()))} seeds")


if __name__ == "__main__":
    main()
