"""Multiplies a generated benchmark store four times in SQL (BENCHMARKS.md, the dashboard):
each report with a new id and report id, its rows, results, reasons and per-report sums.

    cd DIR && python3 .../scripts/bench_serve_copy.py      # works on DIR/bench.sqlite3
"""
import sqlite3, time
db = sqlite3.connect("bench.sqlite3")
cols = lambda t: [r[1] for r in db.execute(f"PRAGMA table_info({t})")]
t0 = time.time()
base = db.execute("SELECT MAX(id) FROM aggregate_reports").fetchone()[0]
for k in (1, 2, 3):
    off = k * 100000
    c = cols("aggregate_reports")
    sel = ", ".join(f"id + {off}" if x == "id" else (f"report_id || '-c{k}'" if x == "report_id" else x) for x in c)
    db.execute(f"INSERT INTO aggregate_reports ({', '.join(c)}) SELECT {sel} FROM aggregate_reports WHERE id <= {base}")
    for t in ("aggregate_records", "aggregate_dkim", "aggregate_spf", "aggregate_reasons", "aggregate_report_sums"):
        c = cols(t)
        sel = ", ".join(f"report + {off}" if x == "report" else x for x in c)
        db.execute(f"INSERT INTO {t} ({', '.join(c)}) SELECT {sel} FROM {t} WHERE report <= {base}")
    db.commit()
    print(k, time.time() - t0, flush=True)
print(db.execute("SELECT COUNT(*), SUM(record_count) FROM aggregate_reports").fetchone())
