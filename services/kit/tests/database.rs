//! What an operator sees when PostgreSQL is not set up for a service (defect 22): what to do,
//! not PostgreSQL's internal source line. Against the real server at `JIESU_TEST_PG_URL`.

use jiesu_kit::{Db, Error};

fn admin_url() -> String {
    std::env::var("JIESU_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// The admin URL with another role and database.
fn url(role: &str, database: &str) -> String {
    let admin = admin_url();
    let (scheme, rest) = admin.split_once("://").expect("a URL");
    let host = rest.split_once('@').map_or(rest, |(_, h)| h);
    let host = host.split_once('/').map_or(host, |(h, _)| h);
    format!("{scheme}://{role}@{host}/{database}")
}

async fn connect_error(url: &str) -> String {
    let migrations = jiesu_kit::migrations!();
    match Db::connect(url, 2, &migrations).await {
        Ok(_) => panic!("connected to {url}"),
        Err(e @ Error::Config(_)) => e.to_string(),
        Err(other) => panic!("a raw error for {url}: {other}"),
    }
}

#[tokio::test]
async fn a_missing_database_or_role_is_reported_as_what_to_do() {
    let e = connect_error(&url("postgres", "jiesu_no_such_database")).await;
    assert!(e.contains("createdb -O postgres jiesu_no_such_database"), "{e}");
    assert!(e.contains("docs/operations.md"), "{e}");

    let e = connect_error(&url("jiesu_no_such_role", "test")).await;
    assert!(e.contains("createuser jiesu_no_such_role"), "{e}");
}
