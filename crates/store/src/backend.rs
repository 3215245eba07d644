//! The two database connections behind one small interface: portable SQL with `?`
//! placeholders in, rows of [`Cell`]s out.
//!
//! The dialect shim is deliberately tiny: `?` placeholders become `$1, $2 ...` for
//! PostgreSQL, and the migration text may use `{id}` (an auto-numbered primary key),
//! `{blob}` (a byte string column) and `{without_rowid}` (SQLite's clustered-primary-key
//! tables, which halve the B-tree writes of the record tables; nothing in PostgreSQL),
//! the only things the two databases spell differently. Everything else (`ON CONFLICT ... DO NOTHING RETURNING`, `CAST(... AS
//! BIGINT)`, `COALESCE`, integer division) is written once and runs on both.

use std::collections::HashMap;

use crate::StoreError;

/// A parameter value. Every integer column is `BIGINT`, so one integer type suffices.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Val<'a> {
    Null,
    I64(i64),
    Text(&'a str),
    Bytes(&'a [u8]),
}

impl<'a> From<i64> for Val<'a> {
    fn from(v: i64) -> Self {
        Val::I64(v)
    }
}

impl<'a> From<&'a str> for Val<'a> {
    fn from(v: &'a str) -> Self {
        Val::Text(v)
    }
}

impl<'a> From<&'a String> for Val<'a> {
    fn from(v: &'a String) -> Self {
        Val::Text(v)
    }
}

impl<'a> From<Option<&'a str>> for Val<'a> {
    fn from(v: Option<&'a str>) -> Self {
        v.map_or(Val::Null, Val::Text)
    }
}

impl<'a> From<Option<i64>> for Val<'a> {
    fn from(v: Option<i64>) -> Self {
        v.map_or(Val::Null, Val::I64)
    }
}

/// A value read back.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Null,
    I64(i64),
    Text(String),
    Bytes(Vec<u8>),
}

impl Cell {
    pub(crate) fn i64(&self) -> i64 {
        match self {
            Cell::I64(v) => *v,
            Cell::Text(t) => t.parse().unwrap_or(0),
            _ => 0,
        }
    }

    pub(crate) fn text(&self) -> String {
        match self {
            Cell::Text(t) => t.clone(),
            Cell::I64(v) => v.to_string(),
            Cell::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
            Cell::Null => String::new(),
        }
    }

    pub(crate) fn bytes(self) -> Option<Vec<u8>> {
        match self {
            Cell::Bytes(b) => Some(b),
            Cell::Text(t) => Some(t.into_bytes()),
            _ => None,
        }
    }
}

/// Typed reading of one result row: a cell of the wrong type is an error naming the column,
/// never a silent zero (the queries are ours, so a mismatch is a bug or a damaged database).
pub(crate) struct Row<'a> {
    cells: &'a [Cell],
    query: &'static str,
}

impl<'a> Row<'a> {
    pub(crate) fn new(cells: &'a [Cell], query: &'static str) -> Row<'a> {
        Row { cells, query }
    }

    fn cell(&self, i: usize) -> Result<&'a Cell, StoreError> {
        self.cells.get(i).ok_or_else(|| {
            StoreError::Data(format!(
                "{}: the row has {} column(s), column {i} was asked for",
                self.query,
                self.cells.len()
            ))
        })
    }

    fn mismatch(&self, i: usize, want: &str, got: &Cell) -> StoreError {
        let found = match got {
            Cell::Null => "NULL".to_string(),
            Cell::I64(v) => format!("the integer {v}"),
            Cell::Text(t) => format!("the text {:?}", t.chars().take(40).collect::<String>()),
            Cell::Bytes(b) => format!("{} bytes", b.len()),
        };
        StoreError::Data(format!(
            "{}: column {i} should be {want} but is {found}",
            self.query
        ))
    }

    /// A non-NULL integer.
    pub(crate) fn int(&self, i: usize) -> Result<i64, StoreError> {
        match self.cell(i)? {
            Cell::I64(v) => Ok(*v),
            c => Err(self.mismatch(i, "an integer", c)),
        }
    }

    /// An integer or NULL.
    pub(crate) fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        match self.cell(i)? {
            Cell::Null => Ok(None),
            Cell::I64(v) => Ok(Some(*v)),
            c => Err(self.mismatch(i, "an integer or NULL", c)),
        }
    }

    /// A non-NULL text.
    pub(crate) fn text(&self, i: usize) -> Result<String, StoreError> {
        match self.cell(i)? {
            Cell::Text(t) => Ok(t.clone()),
            c => Err(self.mismatch(i, "text", c)),
        }
    }

    /// A non-NULL text, borrowed.
    pub(crate) fn str(&self, i: usize) -> Result<&'a str, StoreError> {
        match self.cell(i)? {
            Cell::Text(t) => Ok(t),
            c => Err(self.mismatch(i, "text", c)),
        }
    }

    /// A text or NULL, borrowed.
    pub(crate) fn opt_str(&self, i: usize) -> Result<Option<&'a str>, StoreError> {
        match self.cell(i)? {
            Cell::Null => Ok(None),
            Cell::Text(t) => Ok(Some(t)),
            c => Err(self.mismatch(i, "text or NULL", c)),
        }
    }

    /// A non-negative integer (a count).
    pub(crate) fn count(&self, i: usize) -> Result<u64, StoreError> {
        let v = self.int(i)?;
        u64::try_from(v).map_err(|_| {
            StoreError::Data(format!(
                "{}: column {i} should be a count but is {v}",
                self.query
            ))
        })
    }

    /// A non-NULL blob (or text, as bytes).
    pub(crate) fn bytes(&self, i: usize) -> Result<Vec<u8>, StoreError> {
        match self.cell(i)? {
            Cell::Bytes(b) => Ok(b.clone()),
            Cell::Text(t) => Ok(t.as_bytes().to_vec()),
            c => Err(self.mismatch(i, "bytes", c)),
        }
    }

    /// A text or NULL.
    pub(crate) fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        match self.cell(i)? {
            Cell::Null => Ok(None),
            Cell::Text(t) => Ok(Some(t.clone())),
            c => Err(self.mismatch(i, "text or NULL", c)),
        }
    }
}

/// Which database a [`crate::Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite (embedded, bundled with this crate).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

pub(crate) enum Db {
    Sqlite(rusqlite::Connection),
    Postgres(Box<Pg>),
}

/// A connection, with the depth of the transactions open on it: [`Conn::begin`] inside an
/// open transaction starts a savepoint, so that a writer run inside a batch of reports
/// (see [`crate::Store::begin_batch`]) stays atomic on its own.
pub(crate) struct Conn {
    db: Db,
    depth: u32,
}

impl From<Db> for Conn {
    fn from(db: Db) -> Conn {
        Conn { db, depth: 0 }
    }
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.db {
            Db::Sqlite(c) => write!(f, "Sqlite({:?})", c.path()),
            Db::Postgres(_) => f.write_str("Postgres"),
        }
    }
}

pub(crate) struct Pg {
    pub(crate) client: postgres::Client,
    stmts: HashMap<String, postgres::Statement>,
}

impl Pg {
    pub(crate) fn new(client: postgres::Client) -> Pg {
        Pg {
            client,
            stmts: HashMap::new(),
        }
    }

    fn statement(&mut self, sql: &str) -> Result<postgres::Statement, StoreError> {
        if let Some(s) = self.stmts.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(&pg_placeholders(sql))?;
        self.stmts.insert(sql.to_string(), s.clone());
        Ok(s)
    }
}

/// `?` -> `$n` (our SQL never has `?` inside a string literal).
fn pg_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// Replaces the dialect tokens of migration text.
pub(crate) fn dialect_sql(sql: &str, d: Dialect) -> String {
    match d {
        Dialect::Sqlite => sql
            .replace("{id}", "INTEGER PRIMARY KEY")
            .replace("{blob}", "BLOB")
            .replace("{without_rowid}", "WITHOUT ROWID"),
        Dialect::Postgres => sql
            .replace(
                "{id}",
                "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
            )
            .replace("{blob}", "BYTEA")
            .replace("{without_rowid}", ""),
    }
}

impl rusqlite::ToSql for Val<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match *self {
            Val::Null => ValueRef::Null,
            Val::I64(v) => ValueRef::Integer(v),
            Val::Text(t) => ValueRef::Text(t.as_bytes()),
            Val::Bytes(b) => ValueRef::Blob(b),
        }))
    }
}

impl postgres::types::ToSql for Val<'_> {
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        use postgres::types::{IsNull, Type};
        match *self {
            Val::Null => Ok(IsNull::Yes),
            Val::I64(v) => {
                if *ty == Type::INT4 {
                    i32::try_from(v)?.to_sql(ty, out)
                } else {
                    v.to_sql(ty, out)
                }
            }
            // PostgreSQL text cannot hold NUL; hostile reports may contain it.
            Val::Text(t) if t.contains('\0') => t.replace('\0', "\u{FFFD}").to_sql(ty, out),
            Val::Text(t) => t.to_sql(ty, out),
            Val::Bytes(b) => b.to_sql(ty, out),
        }
    }

    fn accepts(_ty: &postgres::types::Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

fn sqlite_cell(v: rusqlite::types::ValueRef<'_>) -> Cell {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => Cell::Null,
        ValueRef::Integer(i) => Cell::I64(i),
        ValueRef::Real(f) => Cell::I64(f as i64),
        ValueRef::Text(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Cell::Bytes(b.to_vec()),
    }
}

fn pg_cell(row: &postgres::Row, i: usize) -> Result<Cell, StoreError> {
    use postgres::types::Type;
    let ty = row.columns().get(i).map(|c| c.type_().clone());
    let cell = match ty {
        Some(t) if t == Type::INT8 => row.try_get::<_, Option<i64>>(i)?.map(Cell::I64),
        Some(t) if t == Type::INT4 => row
            .try_get::<_, Option<i32>>(i)?
            .map(|v| Cell::I64(i64::from(v))),
        Some(t) if t == Type::INT2 => row
            .try_get::<_, Option<i16>>(i)?
            .map(|v| Cell::I64(i64::from(v))),
        Some(t) if t == Type::BYTEA => row.try_get::<_, Option<Vec<u8>>>(i)?.map(Cell::Bytes),
        Some(t) if t == Type::BOOL => row
            .try_get::<_, Option<bool>>(i)?
            .map(|v| Cell::I64(i64::from(v))),
        _ => row.try_get::<_, Option<String>>(i)?.map(Cell::Text),
    };
    Ok(cell.unwrap_or(Cell::Null))
}

impl Conn {
    pub(crate) fn dialect(&self) -> Dialect {
        match &self.db {
            Db::Sqlite(_) => Dialect::Sqlite,
            Db::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Runs statements without parameters (migrations, transaction control).
    pub(crate) fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        match &mut self.db {
            Db::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Db::Postgres(p) => Ok(p.client.batch_execute(sql)?),
        }
    }

    /// Executes one statement; returns the number of rows changed.
    pub(crate) fn exec(&mut self, sql: &str, params: &[Val<'_>]) -> Result<u64, StoreError> {
        match &mut self.db {
            Db::Sqlite(c) => {
                let mut st = c.prepare_cached(sql)?;
                Ok(st.execute(rusqlite::params_from_iter(params.iter()))? as u64)
            }
            Db::Postgres(p) => {
                let st = p.statement(sql)?;
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = params
                    .iter()
                    .map(|v| v as &(dyn postgres::types::ToSql + Sync))
                    .collect();
                Ok(p.client.execute(&st, &refs)?)
            }
        }
    }

    /// Runs one query and returns all its rows.
    pub(crate) fn query(
        &mut self,
        sql: &str,
        params: &[Val<'_>],
    ) -> Result<Vec<Vec<Cell>>, StoreError> {
        match &mut self.db {
            Db::Sqlite(c) => {
                let mut st = c.prepare_cached(sql)?;
                let n = st.column_count();
                let mut rows = st.query(rusqlite::params_from_iter(params.iter()))?;
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    let mut r = Vec::with_capacity(n);
                    for i in 0..n {
                        r.push(sqlite_cell(row.get_ref(i)?));
                    }
                    out.push(r);
                }
                Ok(out)
            }
            Db::Postgres(p) => {
                let st = p.statement(sql)?;
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = params
                    .iter()
                    .map(|v| v as &(dyn postgres::types::ToSql + Sync))
                    .collect();
                let rows = p.client.query(&st, &refs)?;
                let mut out = Vec::with_capacity(rows.len());
                for row in &rows {
                    let mut r = Vec::with_capacity(row.len());
                    for i in 0..row.len() {
                        r.push(pg_cell(row, i)?);
                    }
                    out.push(r);
                }
                Ok(out)
            }
        }
    }

    /// Runs one query and hands each row to `f` as it comes, without collecting the rows
    /// (for scans of millions of rows; text is borrowed, not copied). The cells are those
    /// [`Row`] decodes.
    pub(crate) fn for_each(
        &mut self,
        sql: &str,
        params: &[Val<'_>],
        mut f: impl FnMut(&[Cell]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut cells: Vec<Cell> = Vec::new();
        match &mut self.db {
            Db::Sqlite(c) => {
                let mut st = c.prepare_cached(sql)?;
                let n = st.column_count();
                let mut rows = st.query(rusqlite::params_from_iter(params.iter()))?;
                while let Some(row) = rows.next()? {
                    cells.resize(n, Cell::Null);
                    for (i, cell) in cells.iter_mut().enumerate() {
                        use rusqlite::types::ValueRef;
                        match row.get_ref(i)? {
                            // Reuse the buffer of the previous row's text.
                            ValueRef::Text(t) => {
                                let t = String::from_utf8_lossy(t);
                                match cell {
                                    Cell::Text(buf) => {
                                        buf.clear();
                                        buf.push_str(&t);
                                    }
                                    other => *other = Cell::Text(t.into_owned()),
                                }
                            }
                            v => *cell = sqlite_cell(v),
                        }
                    }
                    f(&cells)?;
                }
                Ok(())
            }
            Db::Postgres(p) => {
                use postgres::fallible_iterator::FallibleIterator;
                let st = p.statement(sql)?;
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = params
                    .iter()
                    .map(|v| v as &(dyn postgres::types::ToSql + Sync))
                    .collect();
                let mut it = p.client.query_raw(&st, refs)?;
                while let Some(row) = it.next()? {
                    cells.clear();
                    for i in 0..row.len() {
                        cells.push(pg_cell(&row, i)?);
                    }
                    f(&cells)?;
                }
                Ok(())
            }
        }
    }

    /// The first column of the first row, if any.
    pub(crate) fn query_one(
        &mut self,
        sql: &str,
        params: &[Val<'_>],
    ) -> Result<Option<Cell>, StoreError> {
        Ok(self
            .query(sql, params)?
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next()))
    }

    /// Starts a transaction, or a savepoint inside the open one.
    pub(crate) fn begin(&mut self) -> Result<(), StoreError> {
        let sql = match (&self.db, self.depth) {
            (Db::Sqlite(_), 0) => "BEGIN IMMEDIATE",
            (Db::Postgres(_), 0) => "BEGIN",
            _ => "SAVEPOINT nested",
        };
        self.batch(sql)?;
        self.depth += 1;
        Ok(())
    }

    /// Commits the transaction (or releases the savepoint) that [`Conn::begin`] started
    /// last; a failed commit is rolled back.
    pub(crate) fn commit(&mut self) -> Result<(), StoreError> {
        let sql = if self.depth > 1 {
            "RELEASE SAVEPOINT nested"
        } else {
            "COMMIT"
        };
        match self.batch(sql) {
            Ok(()) => {
                self.depth = self.depth.saturating_sub(1);
                Ok(())
            }
            Err(e) => {
                self.rollback();
                Err(e)
            }
        }
    }

    /// Rolls back the transaction (or the savepoint) that [`Conn::begin`] started last.
    pub(crate) fn rollback(&mut self) {
        let sql = if self.depth > 1 {
            "ROLLBACK TO SAVEPOINT nested; RELEASE SAVEPOINT nested"
        } else {
            "ROLLBACK"
        };
        // A failed rollback leaves nothing more to undo: the connection reports the
        // original error.
        let _ = self.batch(sql);
        self.depth = self.depth.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::{Cell, Row};

    #[test]
    fn typed_rows_fail_loudly() {
        let cells = vec![Cell::I64(3), Cell::Text("x".into()), Cell::Null];
        let row = Row::new(&cells, "q");
        assert_eq!(row.int(0).unwrap(), 3);
        assert_eq!(row.text(1).unwrap(), "x");
        assert_eq!(row.opt_text(2).unwrap(), None);
        let e = row.int(1).unwrap_err().to_string();
        assert!(
            e.contains("column 1 should be an integer but is the text \"x\""),
            "{e}"
        );
        assert!(
            row.text(0)
                .unwrap_err()
                .to_string()
                .contains("the integer 3")
        );
        assert!(row.int(2).unwrap_err().to_string().contains("NULL"));
        assert!(row.int(7).unwrap_err().to_string().contains("3 column(s)"));
    }

    #[test]
    fn placeholders() {
        assert_eq!(
            super::pg_placeholders("SELECT a FROM t WHERE b = ? AND c = ?"),
            "SELECT a FROM t WHERE b = $1 AND c = $2"
        );
    }
}
