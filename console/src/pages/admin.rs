//! Administration (系统管理): accounts — created, changed, disabled — their roles and units
//! checked against the organisation dispatch runs; the audit of sign-ins and changes. For
//! administrators only; every change is audited.

use std::{collections::BTreeMap, net::SocketAddr};

use askama::Template;
use axum::{
    extract::{ConnectInfo, Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use jiesu_kit::auth::Role;
use jiesu_proto::v1::GetOrganisationRequest;
use serde::Deserialize;

use super::{App, AppState, Chrome, client, message_page, now_ms, render};
use crate::{
    accounts::{self, Account, Draft, FieldErrors, Known, staff_roles},
    session::Staff,
    view::Clock,
};

struct AccountLine {
    username: String,
    name: String,
    roles: String,
    place: String,
    state: String,
}

struct RoleBox {
    key: &'static str,
    name: &'static str,
    checked: bool,
}

#[derive(Template)]
#[template(path = "accounts.html")]
struct AccountsPage {
    chrome: Chrome,
    done: String,
    accounts: Vec<AccountLine>,
    editing: bool,
    disabled: bool,
    username: String,
    name: String,
    roles: Vec<RoleBox>,
    unit: String,
    leader: String,
    units: Vec<(String, String)>,
    leaders: Vec<(String, String)>,
    errors: FieldErrors,
}

fn forbidden() -> Response {
    message_page(StatusCode::FORBIDDEN, "无权访问", "账号管理仅限系统管理员。")
}

/// The organisation as dispatch runs it: what an account may name, and the pickers' options.
#[derive(Default)]
struct Org {
    known: Known,
    /// (id, shown)
    units: Vec<(String, String)>,
    leaders: Vec<(String, String)>,
}

/// Reads the organisation once per request, as the administrator.
async fn organisation(app: &App, staff: &Staff) -> Org {
    let caller = app.services.as_person(&staff.account);
    match caller.dispatch().get_organisation(caller.req(GetOrganisationRequest {})).await {
        Ok(org) => {
            let org = org.into_inner();
            let units: Vec<(String, String)> = org.units.iter().map(|u| (u.id.clone(), format!("{}（{}）", u.name, u.id))).collect();
            let leaders: Vec<(String, String)> =
                org.leaders.iter().map(|l| (l.id.clone(), format!("{} {}（{}）", l.name, l.title, l.id))).collect();
            let known =
                Known { units: units.iter().map(|u| u.0.clone()).collect(), leaders: leaders.iter().map(|l| l.0.clone()).collect() };
            Org { known, units, leaders }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the organisation for the accounts page");
            Org::default()
        }
    }
}

fn line(a: &Account, now: i64, clock: &Clock) -> AccountLine {
    let place = match (&a.unit, &a.leader) {
        (Some(u), _) => u.clone(),
        (None, Some(l)) => l.clone(),
        _ => String::new(),
    };
    let state = if a.disabled {
        "已停用".to_string()
    } else if let Some(until) = a.locked_at(now) {
        format!("锁定至 {}", clock.full(Some(&jiesu_kit::time::millis_to_proto(until))))
    } else {
        let via = match (a.password_hash.is_some(), a.oidc_subject.is_some()) {
            (true, true) => "密码、统一认证",
            (false, true) => "统一认证",
            (true, false) => "密码",
            (false, false) => "待统一认证关联",
        };
        format!("正常（{via}）")
    };
    AccountLine { username: a.username.clone(), name: a.name.clone(), roles: a.roles_zh(), place, state }
}

async fn page(app: &App, staff: &Staff, org: Org, draft: &Draft, editing: Option<&Account>, errors: FieldErrors, done: String) -> Response {
    let clock = Clock::new(&app.district.timezone);
    let now = now_ms();
    let accounts = match app.store.accounts().await {
        Ok(list) => list.iter().map(|a| line(a, now, &clock)).collect(),
        Err(_) => return message_page(StatusCode::SERVICE_UNAVAILABLE, "系统繁忙", "暂时无法读取账号。"),
    };
    let roles =
        staff_roles().map(|r| RoleBox { key: r.key(), name: r.name_zh(), checked: draft.roles.iter().any(|k| k == r.key()) }).collect();
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    render(
        status,
        &AccountsPage {
            chrome: Chrome::of(app, staff, "admin"),
            done,
            accounts,
            editing: editing.is_some(),
            disabled: editing.is_some_and(|a| a.disabled),
            username: draft.username.clone(),
            name: draft.name.clone(),
            roles,
            unit: draft.unit.clone(),
            leader: draft.leader.clone(),
            units: org.units,
            leaders: org.leaders,
            errors,
        },
    )
}

#[derive(Deserialize, Default)]
pub struct DoneQuery {
    #[serde(default)]
    done: String,
}

fn done_text(code: &str, username: &str) -> String {
    match code {
        "created" => format!("已创建账号 {username}。"),
        "updated" => format!("已保存账号 {username}；其登录已失效，需重新登录。"),
        "disabled" => format!("已停用账号 {username}。"),
        "enabled" => format!("已启用账号 {username}。"),
        _ => String::new(),
    }
}

pub async fn list(staff: Staff, State(app): AppState, Query(q): Query<DoneQuery>) -> Response {
    if !staff.account.has(Role::Administrator) {
        return forbidden();
    }
    let (code, who) = q.done.split_once(':').unwrap_or_default();
    let org = organisation(&app, &staff).await;
    page(&app, &staff, org, &Draft::default(), None, FieldErrors::new(), done_text(code, who)).await
}

pub async fn edit(staff: Staff, State(app): AppState, Path(username): Path<String>, Query(q): Query<DoneQuery>) -> Response {
    if !staff.account.has(Role::Administrator) {
        return forbidden();
    }
    let Ok(Some(account)) = app.store.account(&username).await else {
        return message_page(StatusCode::NOT_FOUND, "没有这个账号", "没有这个账号。");
    };
    let draft = Draft {
        username: account.username.clone(),
        name: account.name.clone(),
        roles: account.roles.iter().map(|r| r.key().to_string()).collect(),
        unit: account.unit.clone().unwrap_or_default(),
        leader: account.leader.clone().unwrap_or_default(),
        password: String::new(),
    };
    let (code, who) = q.done.split_once(':').unwrap_or_default();
    let org = organisation(&app, &staff).await;
    page(&app, &staff, org, &draft, Some(&account), FieldErrors::new(), done_text(code, who)).await
}

/// An HTML form's fields: `roles` repeats, the rest once.
fn draft_of(form: &[(String, String)]) -> (Draft, String) {
    let one = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();
    let draft = Draft {
        username: one("username"),
        name: one("name"),
        roles: form.iter().filter(|(k, _)| k == "roles").map(|(_, v)| v.clone()).collect(),
        unit: one("unit"),
        leader: one("leader"),
        password: one("password"),
    };
    (draft, one("csrf"))
}

/// Why an account form is not taken.
enum Denied {
    NotAdministrator,
    Csrf,
}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        match self {
            Denied::NotAdministrator => forbidden(),
            Denied::Csrf => crate::session::Refused::Csrf.into_response(),
        }
    }
}

/// An administrator's account form: the draft, once the person is an administrator and the
/// form's CSRF token is their session's.
fn admin_draft(staff: &Staff, body: &axum::body::Bytes) -> Result<Draft, Denied> {
    if !staff.account.has(Role::Administrator) {
        return Err(Denied::NotAdministrator);
    }
    let (draft, csrf) = draft_of(&serde_urlencoded::from_bytes::<Vec<(String, String)>>(body).unwrap_or_default());
    staff.check_csrf(&csrf).map_err(|_| Denied::Csrf)?;
    Ok(draft)
}

/// What the audit says of an account's new roles and unit.
fn audit_detail(checked: &accounts::Checked, password_reset: bool) -> String {
    let roles: Vec<&str> = checked.roles.iter().map(|r| r.key()).collect();
    let reset = if password_reset { " password reset" } else { "" };
    format!("roles={} unit={}{reset}", roles.join(","), checked.unit.as_deref().unwrap_or_default())
}

async fn hash(password: Option<String>) -> Result<Option<String>, String> {
    match password {
        None => Ok(None),
        Some(p) => tokio::task::spawn_blocking(move || accounts::hash_password(&p))
            .await
            .map_err(|e| e.to_string())?
            .map(Some)
            .map_err(|e| e.to_string()),
    }
}

pub async fn create(
    staff: Staff,
    State(app): AppState,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let mut draft = match admin_draft(&staff, &body) {
        Ok(d) => d,
        Err(denied) => return denied.into_response(),
    };
    let org = organisation(&app, &staff).await;
    let checked = match accounts::check_draft(&draft, &org.known) {
        Ok(c) => c,
        Err(errors) => {
            draft.password.clear();
            return page(&app, &staff, org, &draft, None, errors, String::new()).await;
        }
    };
    let Ok(hash) = hash(checked.password.clone()).await else {
        return message_page(StatusCode::INTERNAL_SERVER_ERROR, "系统出错", "无法保存密码。");
    };
    match app.store.create_account(&checked, hash.as_deref(), now_ms()).await {
        Ok(true) => {
            let detail = audit_detail(&checked, false);
            let _ = app
                .store
                .audit(now_ms(), &staff.account.username, "account_created", &checked.username, &detail, &client(&app, addr, &headers))
                .await;
            Redirect::to(&format!("/admin/accounts?done=created:{}", checked.username)).into_response()
        }
        Ok(false) => {
            draft.password.clear();
            let errors = FieldErrors::from([("username", format!("用户名 {} 已被使用", checked.username))]);
            page(&app, &staff, org, &draft, None, errors, String::new()).await
        }
        Err(_) => message_page(StatusCode::SERVICE_UNAVAILABLE, "系统繁忙", "暂时无法保存账号。"),
    }
}

pub async fn update(
    staff: Staff,
    State(app): AppState,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(username): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let mut draft = match admin_draft(&staff, &body) {
        Ok(d) => d,
        Err(denied) => return denied.into_response(),
    };
    let Ok(Some(account)) = app.store.account(&username).await else {
        return message_page(StatusCode::NOT_FOUND, "没有这个账号", "没有这个账号。");
    };
    draft.username = account.username.clone();
    let org = organisation(&app, &staff).await;
    let mut checked = accounts::check_draft(&draft, &org.known);
    // Administrators may not lock themselves out of administration.
    if let Ok(c) = &checked
        && account.username == staff.account.username
        && !c.roles.contains(&Role::Administrator)
    {
        checked = Err(BTreeMap::from([("roles", "不能取消自己的系统管理员角色".to_string())]));
    }
    let checked = match checked {
        Ok(c) => c,
        Err(errors) => {
            draft.password.clear();
            return page(&app, &staff, org, &draft, Some(&account), errors, String::new()).await;
        }
    };
    let Ok(hash) = hash(checked.password.clone()).await else {
        return message_page(StatusCode::INTERNAL_SERVER_ERROR, "系统出错", "无法保存密码。");
    };
    match app.store.update_account(&checked, hash.as_deref(), now_ms()).await {
        Ok(_) => {
            let detail = audit_detail(&checked, hash.is_some());
            let _ = app
                .store
                .audit(now_ms(), &staff.account.username, "account_updated", &checked.username, &detail, &client(&app, addr, &headers))
                .await;
            Redirect::to(&format!("/admin/accounts/{}?done=updated:{}", checked.username, checked.username)).into_response()
        }
        Err(_) => message_page(StatusCode::SERVICE_UNAVAILABLE, "系统繁忙", "暂时无法保存账号。"),
    }
}

#[derive(Deserialize)]
pub struct DisabledForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    disabled: String,
}

pub async fn set_disabled(
    staff: Staff,
    State(app): AppState,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(username): Path<String>,
    axum::Form(f): axum::Form<DisabledForm>,
) -> Response {
    if !staff.account.has(Role::Administrator) {
        return forbidden();
    }
    if let Err(refused) = staff.check_csrf(&f.csrf) {
        return refused.into_response();
    }
    let disabled = f.disabled == "true";
    if disabled && username == staff.account.username {
        return message_page(StatusCode::UNPROCESSABLE_ENTITY, "不能停用自己", "系统管理员不能停用自己的账号。");
    }
    match app.store.set_disabled(&username, disabled, now_ms()).await {
        Ok(true) => {
            let action = if disabled { "account_disabled" } else { "account_enabled" };
            let _ = app.store.audit(now_ms(), &staff.account.username, action, &username, "", &client(&app, addr, &headers)).await;
            let done = if disabled { "disabled" } else { "enabled" };
            Redirect::to(&format!("/admin/accounts/{username}?done={done}:{username}")).into_response()
        }
        Ok(false) => message_page(StatusCode::NOT_FOUND, "没有这个账号", "没有这个账号。"),
        Err(_) => message_page(StatusCode::SERVICE_UNAVAILABLE, "系统繁忙", "暂时无法保存账号。"),
    }
}

struct AuditLine {
    at: String,
    actor: String,
    action: &'static str,
    target: String,
    detail: String,
    client: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    chrome: Chrome,
    lines: Vec<AuditLine>,
}

fn action_zh(action: &str) -> &'static str {
    match action {
        "signin" => "登录",
        "signin_refused" => "登录被拒",
        "signout" => "退出",
        "account_created" => "创建账号",
        "account_updated" => "修改账号",
        "account_disabled" => "停用账号",
        "account_enabled" => "启用账号",
        _ => "其他",
    }
}

pub async fn audit(staff: Staff, State(app): AppState) -> Response {
    if !staff.account.has(Role::Administrator) && !staff.account.has(Role::Auditor) {
        return message_page(StatusCode::FORBIDDEN, "无权访问", "日志仅限系统管理员和审计员查看。");
    }
    let clock = Clock::new(&app.district.timezone);
    let rows = app.store.audit_log(500).await.unwrap_or_default();
    let lines = rows
        .into_iter()
        .map(|r| AuditLine {
            at: clock.full(Some(&jiesu_kit::time::millis_to_proto(r.at))),
            actor: r.actor,
            action: action_zh(&r.action),
            target: r.target,
            detail: r.detail,
            client: r.client,
        })
        .collect();
    render(StatusCode::OK, &AuditPage { chrome: Chrome::of(&app, &staff, "admin"), lines })
}
