//! The service's own database, SQLite or PostgreSQL, chosen once from the URL.
//!
//! SQL text is shared between the backends (`$1` placeholders, BIGINT milliseconds, TEXT ids);
//! [`with_tx!`](crate::with_tx) and [`with_pool!`](crate::with_pool) run one piece of generic
//! sqlx code against whichever backend is in use. Migrations are per backend. Not sqlx's `Any`
//! driver: it loses UUIDs, time types and checked queries.

use std::{str::FromStr, time::Duration};

use sqlx::{
    migrate::Migrator,
    postgres::{PgPool, PgPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous},
};

use crate::Error;

/// A service's migrations, one directory per backend:
/// `Migrations { sqlite: &sqlx::migrate!("migrations/sqlite"), postgres: &… }`.
/// The migrations of the calling crate, `migrations/sqlite` and `migrations/postgres` beside its
/// `Cargo.toml`: `Host::start(&config, &jiesu_kit::migrations!(), clock)`.
#[macro_export]
macro_rules! migrations {
    () => {
        $crate::db::Migrations { sqlite: sqlx::migrate!("migrations/sqlite"), postgres: sqlx::migrate!("migrations/postgres") }
    };
}

pub struct Migrations {
    pub sqlite: Migrator,
    pub postgres: Migrator,
}

/// Which database engine a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The clause that locks the rows a read selects before the same transaction writes them:
    /// nothing on SQLite (one writer, `BEGIN IMMEDIATE`: the transaction is already exclusive),
    /// ` FOR UPDATE` on PostgreSQL — ` SKIP LOCKED` too when several workers claim rows.
    pub fn lock_clause(self, skip_locked: bool) -> &'static str {
        match (self, skip_locked) {
            (Backend::Sqlite, _) => "",
            (Backend::Postgres, false) => " FOR UPDATE",
            (Backend::Postgres, true) => " FOR UPDATE SKIP LOCKED",
        }
    }

    pub fn of(url: &str) -> Result<Self, Error> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Backend::Postgres)
        } else {
            Err(Error::Config(format!(
                "database_url must start with sqlite: or postgres:, not {:?}",
                url.split(':').next().unwrap_or_default()
            )))
        }
    }
}

/// A connected database. Cheap to clone.
#[derive(Debug, Clone)]
pub enum Db {
    /// One writer connection (SQLite allows one writer; queuing in the pool beats SQLITE_BUSY)
    /// and a pool of readers, all in WAL mode.
    Sqlite {
        writer: SqlitePool,
        reader: SqlitePool,
    },
    Postgres(PgPool),
}

/// A write transaction on either backend.
pub enum Tx {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

/// Runs the same sqlx code on the connection inside a [`Tx`], whichever backend it is.
///
/// ```text
/// with_tx!(tx, conn => sqlx::query("DELETE FROM t WHERE id = $1").bind(id).execute(conn).await.map(|r| r.rows_affected()))?;
/// ```
#[macro_export]
macro_rules! with_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        match $tx {
            $crate::db::Tx::Sqlite(t) => {
                let $conn = &mut **t;
                $crate::db::database_result($body)
            }
            $crate::db::Tx::Postgres(t) => {
                let $conn = &mut **t;
                $crate::db::database_result($body)
            }
        }
    };
}

/// Runs the same sqlx code on the read pool of a [`Db`], whichever backend it is.
#[macro_export]
macro_rules! with_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite { reader, .. } => {
                let $pool = reader;
                $crate::db::database_result($body)
            }
            $crate::db::Db::Postgres(p) => {
                let $pool = p;
                $crate::db::database_result($body)
            }
        }
    };
}

impl Db {
    /// Connects and brings the schema up to date: the kit's tables, then the service's.
    pub async fn connect(url: &str, max_connections: u32, migrations: &Migrations) -> Result<Self, Error> {
        let db = match Backend::of(url)? {
            Backend::Sqlite => {
                let opts = SqliteConnectOptions::from_str(url)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    // Case data: an acknowledged write survives power loss.
                    .synchronous(SqliteSynchronous::Full)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true);
                if let Some(dir) = opts.get_filename().parent()
                    && !dir.as_os_str().is_empty()
                {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| Error::Config(format!("cannot create the database directory {}: {e}", dir.display())))?;
                }
                let writer =
                    SqlitePoolOptions::new().max_connections(1).acquire_timeout(Duration::from_secs(30)).connect_with(opts.clone()).await?;
                Self::migrate_sqlite(&writer, migrations).await?;
                let reader = SqlitePoolOptions::new().max_connections(4).connect_with(opts.read_only(true)).await?;
                Db::Sqlite { writer, reader }
            }
            Backend::Postgres => {
                let pool = PgPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect(url)
                    .await
                    .map_err(|e| explain_postgres(url, e))?;
                let mut kit = sqlx::migrate!("migrations/postgres");
                kit.dangerous_set_table_name(KIT_MIGRATIONS_TABLE);
                kit.run(&pool).await?;
                migrations.postgres.run(&pool).await?;
                Db::Postgres(pool)
            }
        };
        Ok(db)
    }

    async fn migrate_sqlite(writer: &SqlitePool, migrations: &Migrations) -> Result<(), Error> {
        let mut kit = sqlx::migrate!("migrations/sqlite");
        kit.dangerous_set_table_name(KIT_MIGRATIONS_TABLE);
        kit.run(writer).await?;
        migrations.sqlite.run(writer).await?;
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite { .. } => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Begins a write transaction. On SQLite it is `BEGIN IMMEDIATE`: a deferred transaction
    /// that reads and then writes gets SQLITE_BUSY at once, bypassing the busy timeout.
    pub async fn begin(&self) -> Result<Tx, Error> {
        Ok(match self {
            Db::Sqlite { writer, .. } => Tx::Sqlite(writer.begin_with("BEGIN IMMEDIATE").await?),
            Db::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    /// A cheap round trip, for `/readyz`.
    pub async fn ping(&self) -> Result<(), Error> {
        crate::with_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite { writer, reader } => {
                reader.close().await;
                writer.close().await;
            }
            Db::Postgres(p) => p.close().await,
        }
    }
}

impl Tx {
    pub async fn commit(self) -> Result<(), Error> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }

    pub async fn rollback(self) -> Result<(), Error> {
        match self {
            Tx::Sqlite(t) => t.rollback().await?,
            Tx::Postgres(t) => t.rollback().await?,
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        match self {
            Tx::Sqlite(_) => Backend::Sqlite,
            Tx::Postgres(_) => Backend::Postgres,
        }
    }
}

const KIT_MIGRATIONS_TABLE: &str = "_jiesu_kit_migrations";

/// A PostgreSQL connection failure an operator can act on, said as what to do.
fn explain_postgres(url: &str, e: sqlx::Error) -> Error {
    let code = match &e {
        sqlx::Error::Database(d) => d.code().map(|c| c.to_string()),
        _ => None,
    };
    let (user, database) = postgres_names(url);
    let advice = match code.as_deref() {
        // invalid_authorization_specification: no such role (or it may not log in).
        Some("28000") => format!(
            "the role {user:?} does not exist or may not log in: create it, e.g. `createuser {user}` (docs/operations.md, \"PostgreSQL\")"
        ),
        Some("28P01") => format!("the password of role {user:?} was refused: check the database URL"),
        // invalid_catalog_name: no such database.
        Some("3D000") => format!(
            "the database {database:?} does not exist: create it owned by the service's role, e.g. `createdb -O {user} {database}` (docs/operations.md, \"PostgreSQL\")"
        ),
        _ => return Error::Database(e),
    };
    Error::Config(format!("cannot connect to PostgreSQL at {}: {advice}", crate::config::redact_url(url)))
}

/// The role and database a PostgreSQL URL names (`postgres://user[:pw]@host/db`).
fn postgres_names(url: &str) -> (String, String) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let (userinfo, hostpath) = rest.split_once('@').unwrap_or(("", rest));
    let user = userinfo.split(':').next().filter(|u| !u.is_empty()).unwrap_or("postgres").to_string();
    let path = hostpath.split_once('/').map_or("", |(_, p)| p);
    let database = path.split(['?', '#']).next().filter(|d| !d.is_empty()).unwrap_or(&user).to_string();
    (user, database)
}

impl Db {
    /// The rows of one case, by id or number: `select` is the service's own `SELECT … FROM
    /// table` (never user input), `then` what follows the `WHERE` (`ORDER BY …`, or nothing).
    /// Read from the read pool.
    pub async fn rows_of_case<R>(&self, select: &str, key: &crate::CaseKey, then: &str) -> Result<Vec<R>, Error>
    where
        R: Send + Unpin + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
    {
        let (column, value) = key.column_and_value();
        let sql = format!("{select} WHERE {column} = $1 {then}");
        crate::with_pool!(self, pool => sqlx::query_as::<_, R>(sqlx::AssertSqlSafe(sql)).bind(value).fetch_all(pool).await)
    }
}

/// What [`with_tx!`] and [`with_pool!`] return: the database's error as the kit's, so a
/// service's error reaches it through its one `Kit` variant.
#[doc(hidden)]
pub fn database_result<T>(result: Result<T, sqlx::Error>) -> Result<T, crate::Error> {
    result.map_err(crate::Error::Database)
}

/// True when the error is a unique-constraint violation (a duplicate key).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_urls_name_their_role_and_database() {
        assert_eq!(postgres_names("postgres://jiesu:pw@db:5432/jiesu_dispatch?sslmode=require"), ("jiesu".into(), "jiesu_dispatch".into()));
        assert_eq!(postgres_names("postgres://db/x"), ("postgres".into(), "x".into()));
        assert_eq!(postgres_names("postgresql://u@h"), ("u".into(), "u".into()));
    }
}
