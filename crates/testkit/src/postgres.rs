//! PostgreSQL for the tests: the server named by `DMARC_TEST_POSTGRES` (the throwaway one
//! `scripts/test.sh` starts), with a schema of each test's own so that tests run at once
//! on one database.

/// The server's URL (`postgres://user@host:port/database`), or `None` when
/// `DMARC_TEST_POSTGRES` is not set.
pub fn url() -> Option<String> {
    std::env::var("DMARC_TEST_POSTGRES").ok()
}

/// The server's URL; panics, saying how to get a server, when `DMARC_TEST_POSTGRES` is
/// not set (a test that needs PostgreSQL never passes without it).
pub fn required_url() -> String {
    url().unwrap_or_else(|| {
        panic!(
            "DMARC_TEST_POSTGRES is not set: this test needs a PostgreSQL server. Run \
             `bash scripts/test.sh` (it starts a throwaway one), or start one yourself and set \
             DMARC_TEST_POSTGRES=postgres://user@127.0.0.1:5432/database"
        )
    })
}

/// `url` with the search path of every connection set to `schema`.
pub fn schema_url(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20search_path%3D{schema}")
}

/// `schema` on the server at `url`, dropped with everything in it and created empty; the
/// URL whose connections use it ([`schema_url`]).
pub fn fresh_schema(url: &str, schema: &str) -> String {
    run(
        url,
        &format!(
            "SET client_min_messages = warning; DROP SCHEMA IF EXISTS {schema} CASCADE; \
             CREATE SCHEMA {schema}"
        ),
    );
    schema_url(url, schema)
}

/// Drops `schema` with everything in it.
pub fn drop_schema(url: &str, schema: &str) {
    run(
        url,
        &format!("SET client_min_messages = warning; DROP SCHEMA IF EXISTS {schema} CASCADE"),
    );
}

/// A connection to the server at `url` (for a test's own SQL).
pub fn connect(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls)
        .unwrap_or_else(|e| panic!("cannot connect to PostgreSQL at {url}: {e}"))
}

fn run(url: &str, sql: &str) {
    connect(url)
        .batch_execute(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}
