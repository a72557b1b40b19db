//! The console's database: accounts, sessions, pending identity-platform sign-ins, and the audit
//! of sign-ins and administration. SQLite by default, PostgreSQL in production, as every service.

use jiesu_kit::{Db, auth::Role, with_pool, with_tx};
use sha2::{Digest, Sha256};

use crate::{
    Error,
    accounts::{Account, Checked},
};

/// The console's database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
}

/// A session as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub username: String,
    pub csrf: String,
    pub via: String,
    pub created_at: i64,
    pub last_seen: i64,
    pub expires_at: i64,
}

/// One line of the audit.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub client: String,
}

#[derive(sqlx::FromRow)]
struct AccountRow {
    username: String,
    name: String,
    roles: String,
    unit: Option<String>,
    leader: Option<String>,
    password_hash: Option<String>,
    oidc_subject: Option<String>,
    disabled: bool,
    failures: i64,
    locked_until: Option<i64>,
}

impl From<AccountRow> for Account {
    fn from(r: AccountRow) -> Self {
        Account {
            username: r.username,
            name: r.name,
            roles: r.roles.split(',').filter_map(Role::from_key).collect(),
            unit: r.unit,
            leader: r.leader,
            password_hash: r.password_hash,
            oidc_subject: r.oidc_subject,
            disabled: r.disabled,
            failures: u32::try_from(r.failures).unwrap_or(u32::MAX),
            locked_until: r.locked_until,
        }
    }
}

const ACCOUNT_COLUMNS: &str = "username, name, roles, unit, leader, password_hash, oidc_subject, disabled, failures, locked_until";

/// What the database keeps of a secret: its SHA-256, so that a copy of the table opens nothing.
pub fn digest(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn roles_text(roles: &[Role]) -> String {
    roles.iter().map(|r| r.key()).collect::<Vec<_>>().join(",")
}

impl Store {
    pub async fn open(url: &str) -> Result<Self, Error> {
        Ok(Self { db: Db::connect(url, 8, &jiesu_kit::migrations!()).await? })
    }

    pub async fn close(&self) {
        self.db.close().await;
    }

    // ------------------------------------------------------------------ accounts

    pub async fn account(&self, username: &str) -> Result<Option<Account>, Error> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM console_accounts WHERE username = $1");
        let row: Option<AccountRow> =
            with_pool!(&self.db, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(username).fetch_optional(pool).await)?;
        Ok(row.map(Account::from))
    }

    pub async fn account_by_oidc(&self, subject: &str) -> Result<Option<Account>, Error> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM console_accounts WHERE oidc_subject = $1");
        let row: Option<AccountRow> =
            with_pool!(&self.db, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(subject).fetch_optional(pool).await)?;
        Ok(row.map(Account::from))
    }

    pub async fn accounts(&self) -> Result<Vec<Account>, Error> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM console_accounts ORDER BY username");
        let rows: Vec<AccountRow> = with_pool!(&self.db, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).fetch_all(pool).await)?;
        Ok(rows.into_iter().map(Account::from).collect())
    }

    pub async fn count_accounts(&self) -> Result<u64, Error> {
        let n: i64 = with_pool!(&self.db, pool => sqlx::query_scalar("SELECT COUNT(*) FROM console_accounts").fetch_one(pool).await)?;
        Ok(u64::try_from(n).unwrap_or_default())
    }

    /// Creates an account; `false` when the username is taken.
    pub async fn create_account(&self, a: &Checked, password_hash: Option<&str>, now: i64) -> Result<bool, Error> {
        let mut tx = self.db.begin().await?;
        let inserted = with_tx!(&mut tx, conn => sqlx::query(
            "INSERT INTO console_accounts (username, name, roles, unit, leader, password_hash, oidc_subject, disabled, failures,
                 locked_until, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, NULL, FALSE, 0, NULL, $7, $7)
             ON CONFLICT (username) DO NOTHING")
            .bind(&a.username).bind(&a.name).bind(roles_text(&a.roles)).bind(&a.unit).bind(&a.leader).bind(password_hash).bind(now)
            .execute(conn).await.map(|r| r.rows_affected() == 1))?;
        tx.commit().await?;
        Ok(inserted)
    }

    /// Changes an account's name, roles, unit, leader, and its password when one is given; the
    /// account's sessions end, so the change holds at once. `false` when there is no such account.
    pub async fn update_account(&self, a: &Checked, password_hash: Option<&str>, now: i64) -> Result<bool, Error> {
        let mut tx = self.db.begin().await?;
        let updated = with_tx!(&mut tx, conn => sqlx::query(
            "UPDATE console_accounts SET name = $2, roles = $3, unit = $4, leader = $5,
                 password_hash = COALESCE($6, password_hash), updated_at = $7
             WHERE username = $1")
            .bind(&a.username).bind(&a.name).bind(roles_text(&a.roles)).bind(&a.unit).bind(&a.leader).bind(password_hash).bind(now)
            .execute(conn).await.map(|r| r.rows_affected() == 1))?;
        with_tx!(&mut tx, conn => sqlx::query("DELETE FROM console_sessions WHERE username = $1").bind(&a.username).execute(conn).await.map(|r| r.rows_affected()))?;
        tx.commit().await?;
        Ok(updated)
    }

    /// Disables or enables an account (a disabled one's sessions end); unlocking it too.
    pub async fn set_disabled(&self, username: &str, disabled: bool, now: i64) -> Result<bool, Error> {
        let mut tx = self.db.begin().await?;
        let updated = with_tx!(&mut tx, conn => sqlx::query(
            "UPDATE console_accounts SET disabled = $2, failures = 0, locked_until = NULL, updated_at = $3 WHERE username = $1")
            .bind(username).bind(disabled).bind(now).execute(conn).await.map(|r| r.rows_affected() == 1))?;
        if disabled {
            with_tx!(&mut tx, conn => sqlx::query("DELETE FROM console_sessions WHERE username = $1").bind(username).execute(conn).await.map(|r| r.rows_affected()))?;
        }
        tx.commit().await?;
        Ok(updated)
    }

    /// Stores the outcome of a sign-in attempt: failures in a row and the lock.
    pub async fn record_attempt(&self, username: &str, failures: u32, locked_until: Option<i64>) -> Result<(), Error> {
        let mut tx = self.db.begin().await?;
        with_tx!(&mut tx, conn => sqlx::query("UPDATE console_accounts SET failures = $2, locked_until = $3 WHERE username = $1")
            .bind(username).bind(i64::from(failures)).bind(locked_until).execute(conn).await.map(|r| r.rows_affected()))?;
        tx.commit().await?;
        Ok(())
    }

    /// Links an account to the identity platform's subject.
    pub async fn link_oidc(&self, username: &str, subject: &str, now: i64) -> Result<(), Error> {
        let mut tx = self.db.begin().await?;
        with_tx!(&mut tx, conn => sqlx::query("UPDATE console_accounts SET oidc_subject = $2, updated_at = $3 WHERE username = $1")
            .bind(username).bind(subject).bind(now).execute(conn).await.map(|r| r.rows_affected()))?;
        tx.commit().await?;
        Ok(())
    }

    // ------------------------------------------------------------------ sessions

    /// Opens a session for `username`; the cookie's value is `id`, the table keeps its digest.
    pub async fn create_session(&self, id: &str, username: &str, csrf: &str, via: &str, now: i64, expires_at: i64) -> Result<(), Error> {
        let mut tx = self.db.begin().await?;
        with_tx!(&mut tx, conn => sqlx::query(
            "INSERT INTO console_sessions (id_hash, username, csrf, via, created_at, last_seen, expires_at)
             VALUES ($1, $2, $3, $4, $5, $5, $6)")
            .bind(digest(id)).bind(username).bind(csrf).bind(via).bind(now).bind(expires_at).execute(conn).await.map(|r| r.rows_affected()))?;
        // Sessions that ended long ago go as new ones come.
        with_tx!(&mut tx, conn => sqlx::query("DELETE FROM console_sessions WHERE expires_at < $1").bind(now).execute(conn).await.map(|r| r.rows_affected()))?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn session(&self, id: &str) -> Result<Option<SessionRow>, Error> {
        with_pool!(&self.db, pool => sqlx::query_as(
            "SELECT username, csrf, via, created_at, last_seen, expires_at FROM console_sessions WHERE id_hash = $1")
            .bind(digest(id)).fetch_optional(pool).await)
        .map_err(Error::from)
    }

    /// Marks a session as used now.
    pub async fn touch_session(&self, id: &str, now: i64) -> Result<(), Error> {
        let mut tx = self.db.begin().await?;
        with_tx!(&mut tx, conn => sqlx::query("UPDATE console_sessions SET last_seen = $2 WHERE id_hash = $1 AND last_seen < $2")
            .bind(digest(id)).bind(now).execute(conn).await.map(|r| r.rows_affected()))?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn end_session(&self, id: &str) -> Result<(), Error> {
        let mut tx = self.db.begin().await?;
        with_tx!(&mut tx, conn => sqlx::query("DELETE FROM console_sessions WHERE id_hash = $1").bind(digest(id)).execute(conn).await.map(|r| r.rows_affected()))?;
        tx.commit().await?;
        Ok(())
    }

    // ------------------------------------------------------------------ identity platform

    pub async fn put_oidc_pending(&self, state: &str, verifier: &str, nonce: &str, now: i64) -> Result<(), Error> {
        let mut tx = self.db.begin().await?;
        with_tx!(&mut tx, conn => sqlx::query("DELETE FROM console_oidc_pending WHERE created_at < $1").bind(now - 600_000).execute(conn).await.map(|r| r.rows_affected()))?;
        with_tx!(&mut tx, conn => sqlx::query(
            "INSERT INTO console_oidc_pending (state_hash, verifier, nonce, created_at) VALUES ($1, $2, $3, $4)")
            .bind(digest(state)).bind(verifier).bind(nonce).bind(now).execute(conn).await.map(|r| r.rows_affected()))?;
        tx.commit().await?;
        Ok(())
    }

    /// Takes (and forgets) the pending sign-in of `state`, if it is younger than ten minutes:
    /// its PKCE verifier and nonce. A state is good once.
    pub async fn take_oidc_pending(&self, state: &str, now: i64) -> Result<Option<(String, String)>, Error> {
        let mut tx = self.db.begin().await?;
        let row: Option<(String, String, i64)> = with_tx!(&mut tx, conn => sqlx::query_as(
            "DELETE FROM console_oidc_pending WHERE state_hash = $1 RETURNING verifier, nonce, created_at")
            .bind(digest(state)).fetch_optional(conn).await)?;
        tx.commit().await?;
        Ok(row.filter(|(_, _, at)| now - at < 600_000).map(|(v, n, _)| (v, n)))
    }

    // ------------------------------------------------------------------ audit

    pub async fn audit(&self, at: i64, actor: &str, action: &str, target: &str, detail: &str, client: &str) -> Result<(), Error> {
        let mut tx = self.db.begin().await?;
        with_tx!(&mut tx, conn => sqlx::query(
            "INSERT INTO console_audit (at, actor, action, target, detail, client) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(at).bind(actor).bind(action).bind(target).bind(detail).bind(client).execute(conn).await.map(|r| r.rows_affected()))?;
        tx.commit().await?;
        Ok(())
    }

    /// The latest lines of the audit, newest first.
    pub async fn audit_log(&self, limit: u32) -> Result<Vec<AuditRow>, Error> {
        with_pool!(&self.db, pool => sqlx::query_as(
            "SELECT at, actor, action, target, detail, client FROM console_audit ORDER BY at DESC, id DESC LIMIT $1")
            .bind(i64::from(limit)).fetch_all(pool).await)
        .map_err(Error::from)
    }
}
