//! Fresh PostgreSQL databases for tests, on the server at `JIESU_TEST_PG_URL` (default the
//! machine's local one). The PostgreSQL tests need it: they fail, never skip, without it.

/// Which database engine a test runs the services on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where the tests find PostgreSQL: `JIESU_TEST_PG_URL`, default the machine's local server.
pub fn postgres_admin_url() -> String {
    std::env::var("JIESU_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// The URL of `database` on the test server.
pub fn pg_url(database: &str) -> String {
    let admin = postgres_admin_url();
    match admin.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{database}"),
        None => format!("{admin}/{database}"),
    }
}

/// Runs one statement as the test server's administrator (`CREATE DATABASE …`).
pub async fn pg_admin(statement: &str) -> Result<(), String> {
    use sqlx::Connection;
    let admin = postgres_admin_url();
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .map_err(|e| format!("PostgreSQL is needed for this test at {admin} (set JIESU_TEST_PG_URL): {e}"))?;
    sqlx::query(sqlx::AssertSqlSafe(statement.to_string())).execute(&mut conn).await.map_err(|e| format!("{statement}: {e}"))?;
    Ok(())
}

/// Drops `name` if it exists, closing whatever is still connected to it.
pub async fn drop_pg_database(name: &str) -> Result<(), String> {
    pg_admin(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await
}

/// A database of a test's own, dropped with this guard.
pub struct PgDatabase {
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    pub async fn create(name: &str) -> Self {
        pg_admin(&format!("CREATE DATABASE \"{name}\"")).await.unwrap_or_else(|e| panic!("{e}"));
        Self { name: name.to_string(), url: pg_url(name) }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        // Drop runs outside async code: a thread of its own with a small runtime.
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            rt.block_on(drop_pg_database(&name))
        })
        .join();
    }
}
