//! The console over HTTP as a browser, an outsider and an attacker use it: sign-in, lockout,
//! sessions, CSRF, who sees which queue and case, citizens' text as text; and its database on
//! both backends. The whole walk of a case in a real browser is in `browser.rs`.

mod support;

use std::time::Duration;

use jiesu_console::{accounts, store::Store};
use jiesu_kit::auth::Role;
use reqwest::StatusCode;
use support::{Desk, PASSWORD, client, field, sign_in};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_lockout_sessions_and_csrf() {
    let desk = Desk::start_with(|c| {
        c.set("console.max_failures", 3);
        c.set("console.lockout", "1h");
    })
    .await;
    desk.account("agent", "受理员小李", &[Role::CentreAgent], None, None).await;
    let http = client();

    // Every page but the sign-in sends a stranger there, and back afterwards.
    let r = http.get(desk.url("/case/DM1")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/signin?next=%2Fcase%2FDM1");
    assert_eq!(
        http.get(desk.url("/queues/manual")).header("x-jiesu-fragment", "1").send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );

    // The sign-in form is protected too: without its cookie's token, nothing is tried.
    let stranger = client();
    let r =
        stranger.post(desk.url("/signin")).form(&[("csrf", "guess"), ("username", "agent"), ("password", PASSWORD)]).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // A wrong password and an unknown user get the same answer.
    let wrong = sign_in(&desk, &http, "agent", "not-the-password").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.text().await.unwrap().contains("用户名或密码错误"));
    let unknown = sign_in(&desk, &http, "nobody", "not-the-password").await;
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    assert!(unknown.text().await.unwrap().contains("用户名或密码错误"));

    // Right password: in, with a session cookie script cannot read and other sites cannot send.
    let ok = sign_in(&desk, &http, "agent", PASSWORD).await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER, "{:?}", ok.text().await);
    let cookies: Vec<String> = ok.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect();
    let session = cookies.iter().find(|c| c.starts_with("jiesu_console=")).expect("a session cookie");
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Strict"), "{session}");
    let home = http.get(desk.url("/")).send().await.unwrap();
    assert_eq!(home.status(), StatusCode::OK);
    let page = home.text().await.unwrap();
    assert!(page.contains("待人工派单") && page.contains("受理员小李"), "{page}");
    let csrf = field(&page, "csrf");

    // A form without the session's token changes nothing.
    let forged = http.post(desk.url("/signout")).form(&[("csrf", "forged")]).send().await.unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(http.get(desk.url("/")).send().await.unwrap().status(), StatusCode::OK, "still signed in");

    // Sign-out ends the session on the server: the old cookie opens nothing.
    let old_cookie = session.split(';').next().unwrap().to_string();
    let out = http.post(desk.url("/signout")).form(&[("csrf", csrf.as_str())]).send().await.unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let replay = client().get(desk.url("/")).header("cookie", &old_cookie).send().await.unwrap();
    assert_eq!(replay.status(), StatusCode::SEE_OTHER, "a session ended is ended");

    // Three wrong passwords lock the account, and then even the right one is refused.
    for _ in 0..3 {
        sign_in(&desk, &http, "agent", "still-wrong-123").await;
    }
    let locked = sign_in(&desk, &http, "agent", PASSWORD).await;
    assert_eq!(locked.status(), StatusCode::FORBIDDEN);
    assert!(locked.text().await.unwrap().contains("账号已锁定"));
    let log = desk.console.store.audit_log(50).await.unwrap();
    assert!(log.iter().any(|l| l.action == "signin" && l.target == "agent"));
    assert!(log.iter().filter(|l| l.action == "signin_refused").count() >= 5);
    assert!(log.iter().all(|l| !l.detail.contains(PASSWORD)), "no password in the audit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ends_when_idle_and_a_disabled_account_is_out_at_once() {
    let desk = Desk::start_with(|c| c.set("console.idle_timeout", "2s")).await;
    desk.account("agent", "受理员小李", &[Role::CentreAgent], None, None).await;
    desk.account("boss", "管理员", &[Role::Administrator], None, None).await;
    let http = client();
    assert_eq!(sign_in(&desk, &http, "agent", PASSWORD).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(http.get(desk.url("/")).send().await.unwrap().status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(http.get(desk.url("/")).send().await.unwrap().status(), StatusCode::SEE_OTHER, "idle too long");

    assert_eq!(sign_in(&desk, &http, "agent", PASSWORD).await.status(), StatusCode::SEE_OTHER);
    desk.console.store.set_disabled("agent", true, 0).await.unwrap();
    assert_eq!(http.get(desk.url("/")).send().await.unwrap().status(), StatusCode::SEE_OTHER, "disabled: out");
    let again = sign_in(&desk, &http, "agent", PASSWORD).await;
    assert!(again.text().await.unwrap().contains("账号已停用"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_sees_its_own_and_is_refused_the_rest() {
    let desk = Desk::start().await;
    desk.account("agent", "受理员小李", &[Role::CentreAgent], None, None).await;
    desk.account("dongmen", "王五", &[Role::UnitHandler], Some("st-dongmen"), None).await;
    desk.account("xinan", "赵六", &[Role::UnitHandler], Some("st-xinan"), None).await;
    let no = desk
        .submit(
            "call-xss",
            "小区门口私装地锁<script>alert(1)</script>",
            "有人私装地锁<img src=x onerror=alert(1)>，占用公共车位。",
            "st-dongmen",
            "cm-lizhi",
        )
        .await;
    let case = desk.wait_case(&no, "the case to be dispatched", |c| !c.unit_id.is_empty()).await;
    let owner = case.unit_id.clone();

    // The centre sees it, its text as text.
    let agent = client();
    sign_in(&desk, &agent, "agent", PASSWORD).await;
    let page = agent.get(desk.url(&format!("/case/{no}"))).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline'; script"), "{csp}");
    let html = page.text().await.unwrap();
    let citizen = html.split("id=\"citizen-text\">").nth(1).and_then(|t| t.split("</div>").next()).unwrap_or_default();
    assert!(citizen.contains("&#60;img") && citizen.contains("onerror") && !citizen.contains('<'), "escaped: {citizen}");
    assert!(!html.contains("<img src=x") && !html.contains("<script>alert"), "never markup");
    assert!(html.contains("138****8000") && !html.contains("13800138000"), "the contact masked");

    // A unit that neither owns nor assists the case: the same answer as for no case at all.
    let other = if owner == "st-xinan" { "dongmen" } else { "xinan" };
    let unit = client();
    sign_in(&desk, &unit, other, PASSWORD).await;
    let refused = unit.get(desk.url(&format!("/case/{no}"))).send().await.unwrap();
    assert!(matches!(refused.status(), StatusCode::FORBIDDEN | StatusCode::NOT_FOUND));
    let text = refused.text().await.unwrap();
    assert!(text.contains("或你无权查看") && !text.contains("私装地锁"), "{text}");
    let missing = unit.get(desk.url("/case/DM19990101000001")).send().await.unwrap().text().await.unwrap();
    assert!(missing.contains("或你无权查看"));
    // Nor the centre's queues, nor administration.
    let q = unit.get(desk.url("/queues/manual")).header("x-jiesu-fragment", "1").send().await.unwrap();
    assert_eq!(q.status(), StatusCode::NOT_FOUND);
    let admin = unit.get(desk.url("/admin/accounts")).send().await.unwrap();
    assert_eq!(admin.status(), StatusCode::FORBIDDEN);
    // Nor an action on it, even with its own session's token.
    let home = unit.get(desk.url("/")).send().await.unwrap().text().await.unwrap();
    let csrf = field(&home, "csrf");
    let act = unit.post(desk.url(&format!("/case/{no}/act/accept"))).form(&[("csrf", csrf.as_str())]).send().await.unwrap();
    assert!(matches!(act.status(), StatusCode::FORBIDDEN | StatusCode::NOT_FOUND), "{}", act.status());
    assert!(act.text().await.unwrap().contains("无权查看"));
    let still = desk.wait_case(&no, "the case as it was", |_| true).await;
    assert_eq!(still.status, case.status, "nothing changed");

    // The owning unit reveals the contact only with a reason; intake records who and why.
    let owner_user = if owner == "st-xinan" { "xinan" } else { "dongmen" };
    let handler = client();
    sign_in(&desk, &handler, owner_user, PASSWORD).await;
    let home = handler.get(desk.url("/")).send().await.unwrap().text().await.unwrap();
    assert!(home.contains(&no), "the owner's queue lists it");
    let csrf = field(&home, "csrf");
    let no_reason =
        handler.post(desk.url(&format!("/case/{no}/reveal"))).form(&[("csrf", csrf.as_str()), ("purpose", " ")]).send().await.unwrap();
    assert_eq!(no_reason.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(no_reason.text().await.unwrap().contains("请填写查看事由"));
    let shown = handler
        .post(desk.url(&format!("/case/{no}/reveal")))
        .form(&[("csrf", csrf.as_str()), ("purpose", "联系群众核实地锁位置")])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(shown.contains("13800138000"), "{shown}");
}

/// The console's database on SQLite and on PostgreSQL: accounts, sessions, one-time sign-in
/// states, the audit.
async fn store_round_trip(store: &Store) {
    let checked = accounts::Checked {
        username: "wang.wu".into(),
        name: "王五".into(),
        roles: vec![Role::UnitHandler, Role::UnitHead],
        unit: Some("st-dongmen".into()),
        leader: None,
        password: None,
    };
    assert!(store.create_account(&checked, Some("$argon2id$x"), 1).await.unwrap());
    assert!(!store.create_account(&checked, None, 2).await.unwrap(), "a username is taken once");
    let a = store.account("wang.wu").await.unwrap().unwrap();
    assert_eq!(
        (a.roles.as_slice(), a.unit.as_deref(), a.password_hash.as_deref()),
        (&[Role::UnitHandler, Role::UnitHead][..], Some("st-dongmen"), Some("$argon2id$x"))
    );
    store.record_attempt("wang.wu", 2, Some(99)).await.unwrap();
    let a = store.account("wang.wu").await.unwrap().unwrap();
    assert_eq!((a.failures, a.locked_until), (2, Some(99)));
    store.create_session("cookie-value", "wang.wu", "csrf", "password", 10, 1000).await.unwrap();
    let s = store.session("cookie-value").await.unwrap().unwrap();
    assert_eq!((s.username.as_str(), s.csrf.as_str(), s.expires_at), ("wang.wu", "csrf", 1000));
    assert!(store.session("another").await.unwrap().is_none());
    // Changing an account ends its sessions.
    let renamed = accounts::Checked { name: "王小五".into(), ..checked.clone() };
    assert!(store.update_account(&renamed, None, 20).await.unwrap());
    assert!(store.session("cookie-value").await.unwrap().is_none());
    assert_eq!(
        store.account("wang.wu").await.unwrap().unwrap().password_hash.as_deref(),
        Some("$argon2id$x"),
        "no new password: the old one stays"
    );
    store.link_oidc("wang.wu", "sso|123", 30).await.unwrap();
    assert_eq!(store.account_by_oidc("sso|123").await.unwrap().unwrap().username, "wang.wu");
    store.put_oidc_pending("state-1", "verifier", "nonce", 100).await.unwrap();
    assert_eq!(store.take_oidc_pending("state-1", 200).await.unwrap(), Some(("verifier".into(), "nonce".into())));
    assert_eq!(store.take_oidc_pending("state-1", 200).await.unwrap(), None, "a state is good once");
    store.put_oidc_pending("state-2", "v", "n", 100).await.unwrap();
    assert_eq!(store.take_oidc_pending("state-2", 100 + 600_001).await.unwrap(), None, "ten minutes at most");
    store.audit(5, "admin", "account_created", "wang.wu", "roles=unit_handler", "127.0.0.1").await.unwrap();
    assert_eq!(store.audit_log(10).await.unwrap()[0].action, "account_created");
    assert!(store.set_disabled("wang.wu", true, 40).await.unwrap());
    assert!(store.account("wang.wu").await.unwrap().unwrap().disabled);
}

#[tokio::test]
async fn the_store_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}", dir.path().join("console.db").display())).await.unwrap();
    store_round_trip(&store).await;
}

#[tokio::test]
async fn the_store_on_postgres() {
    let name = jiesu_testkit::unique_name("console");
    jiesu_testkit::pg_admin(&format!("CREATE DATABASE \"{name}\"")).await.unwrap();
    let store = Store::open(&jiesu_testkit::pg_url(&name)).await.unwrap();
    store_round_trip(&store).await;
    store.close().await;
    let _ = jiesu_testkit::drop_pg_database(&name).await;
}
