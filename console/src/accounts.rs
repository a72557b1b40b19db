//! Who may sign in (账号): the accounts, their roles and unit, and the rules of the password and
//! of the lockout — pure, tested here; the store keeps them, the pages apply them.

use std::collections::{BTreeMap, BTreeSet};

use argon2::{
    Argon2,
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
};
use jiesu_kit::auth::Role;

use crate::Error;

/// The roles a person may hold in the console: every role of Jiesu but the machines' (a channel's
/// producer, a service), which sign in nowhere.
pub fn staff_roles() -> impl Iterator<Item = Role> {
    Role::ALL.into_iter().filter(|r| !r.is_machine())
}

/// An account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub username: String,
    /// The person's name (王五): shown, and what the services record as the actor.
    pub name: String,
    pub roles: Vec<Role>,
    /// The unit a unit handler or head acts for.
    pub unit: Option<String>,
    /// The organisation's id of a leader (`leader-li`): the services know leaders by it.
    pub leader: Option<String>,
    /// argon2id, as a PHC string; `None` for an account that signs in only through the identity
    /// platform.
    pub password_hash: Option<String>,
    /// The identity platform's `sub`, once the person signed in there.
    pub oidc_subject: Option<String>,
    pub disabled: bool,
    /// Wrong passwords in a row.
    pub failures: u32,
    /// Locked until then (ms since the epoch).
    pub locked_until: Option<i64>,
}

impl Account {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// The subject of the person's tokens: a leader's organisation id (the services match
    /// escalated cases by it), else the username.
    pub fn token_subject(&self) -> &str {
        match (&self.leader, self.has(Role::Leader)) {
            (Some(leader), true) => leader,
            _ => &self.username,
        }
    }

    /// 受理派单员、督办员
    pub fn roles_zh(&self) -> String {
        self.roles.iter().map(|r| r.name_zh()).collect::<Vec<_>>().join("、")
    }

    /// Whether the person works in the service centre (the centre's queues are theirs).
    pub fn is_centre(&self) -> bool {
        self.has(Role::CentreAgent) || self.has(Role::CentreSupervisor)
    }

    /// Whether the person works for a handling unit.
    pub fn is_unit(&self) -> bool {
        (self.has(Role::UnitHandler) || self.has(Role::UnitHead)) && self.unit.is_some()
    }

    /// An account of `roles` and `unit`, for tests; a leader is the demo organisation's `leader-li`.
    #[cfg(test)]
    pub(crate) fn sample(roles: &[Role], unit: Option<&str>) -> Self {
        Account {
            username: "u".into(),
            name: "U".into(),
            roles: roles.to_vec(),
            unit: unit.map(str::to_string),
            leader: roles.contains(&Role::Leader).then(|| "leader-li".to_string()),
            password_hash: None,
            oidc_subject: None,
            disabled: false,
            failures: 0,
            locked_until: None,
        }
    }

    /// Locked now, and until when.
    pub fn locked_at(&self, now: i64) -> Option<i64> {
        self.locked_until.filter(|until| *until > now)
    }
}

/// An account as the administrator's form, or the command line, gives it.
#[derive(Debug, Clone, Default)]
pub struct Draft {
    pub username: String,
    pub name: String,
    pub roles: Vec<String>,
    pub unit: String,
    pub leader: String,
    /// Empty: keep the password (an edit), or none (identity platform only).
    pub password: String,
}

/// The units and leaders an account may name: the organisation as dispatch runs it.
#[derive(Debug, Clone, Default)]
pub struct Known {
    pub units: BTreeSet<String>,
    pub leaders: BTreeSet<String>,
}

/// What is wrong with a form, field by field, in Chinese: shown next to each field.
pub type FieldErrors = BTreeMap<&'static str, String>;

/// A draft that passed [`check_draft`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub username: String,
    pub name: String,
    pub roles: Vec<Role>,
    pub unit: Option<String>,
    pub leader: Option<String>,
    pub password: Option<String>,
}

/// Checks a draft against the organisation; every problem at once.
pub fn check_draft(draft: &Draft, known: &Known) -> Result<Checked, FieldErrors> {
    let mut errors = FieldErrors::new();
    let username = draft.username.trim().to_ascii_lowercase();
    if let Err(why) = check_username(&username) {
        errors.insert("username", why);
    }
    let name = draft.name.trim().to_string();
    match name.chars().count() {
        0 => {
            errors.insert("name", "请填写姓名".into());
        }
        n if n > 40 => {
            errors.insert("name", "姓名不超过 40 个字".into());
        }
        _ if name.chars().any(char::is_control) => {
            errors.insert("name", "姓名不能包含控制字符".into());
        }
        _ => {}
    }
    let mut roles = Vec::new();
    for key in &draft.roles {
        match Role::from_key(key).filter(|r| !r.is_machine()) {
            Some(role) if !roles.contains(&role) => roles.push(role),
            Some(_) => {}
            None => {
                errors.insert("roles", format!("没有这个角色：{key}"));
            }
        }
    }
    roles.sort();
    if roles.is_empty() && !errors.contains_key("roles") {
        errors.insert("roles", "至少选择一个角色".into());
    }
    let unit = Some(draft.unit.trim().to_string()).filter(|u| !u.is_empty());
    let needs_unit = roles.iter().any(|r| r.needs_unit());
    match (&unit, needs_unit) {
        (None, true) => {
            errors.insert("unit", "承办人和单位负责人须选择所属单位".into());
        }
        (Some(u), _) if !known.units.contains(u) => {
            errors.insert("unit", format!("组织架构中没有单位 {u}"));
        }
        (Some(_), false) => {
            errors.insert("unit", "只有承办人和单位负责人属于单位".into());
        }
        _ => {}
    }
    let leader = Some(draft.leader.trim().to_string()).filter(|l| !l.is_empty());
    let is_leader = roles.contains(&Role::Leader);
    match (&leader, is_leader) {
        (None, true) => {
            errors.insert("leader", "领导账号须对应组织架构中的一位领导".into());
        }
        (Some(l), true) if !known.leaders.contains(l) => {
            errors.insert("leader", format!("组织架构中没有领导 {l}"));
        }
        (Some(_), false) => {
            errors.insert("leader", "只有领导角色对应组织架构中的领导".into());
        }
        _ => {}
    }
    let password = Some(draft.password.clone()).filter(|p| !p.is_empty());
    if let Some(p) = &password
        && let Err(why) = check_password(p, &username)
    {
        errors.insert("password", why);
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Checked { username, name, roles, unit, leader, password })
}

/// 2 to 40 of a–z, 0–9, `.`, `_`, `-`, starting with a letter or digit.
pub fn check_username(username: &str) -> Result<(), String> {
    let ok_chars = username.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    let starts_well = username.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    match username.len() {
        0 => Err("请填写用户名".into()),
        1 | 41.. => Err("用户名为 2 到 40 个字符".into()),
        _ if !ok_chars || !starts_well => Err("用户名只用小写字母、数字和 . _ -，以字母或数字开头".into()),
        _ => Ok(()),
    }
}

/// At least 10 characters, at most 128, at least 5 different ones, not the username.
pub fn check_password(password: &str, username: &str) -> Result<(), String> {
    let n = password.chars().count();
    let distinct: BTreeSet<char> = password.chars().collect();
    if n < 10 {
        Err("密码至少 10 个字符".into())
    } else if n > 128 {
        Err("密码不超过 128 个字符".into())
    } else if distinct.len() < 5 {
        Err("密码过于简单：至少包含 5 个不同的字符".into())
    } else if !username.is_empty() && password.to_lowercase().contains(username) {
        Err("密码不能包含用户名".into())
    } else {
        Ok(())
    }
}

/// argon2id with the crate's defaults (OWASP's: 19 MiB, 2 passes, 1 lane) and a random salt.
pub fn hash_password(password: &str) -> Result<String, Error> {
    let salt = SaltString::encode_b64(&jiesu_kit::web::random::<16>()).map_err(|e| Error::Password(e.to_string()))?;
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| Error::Password(e.to_string()))
}

/// Whether `password` is the one `hash` was made from. Without a hash (an unknown username, an
/// account without password) it does the same work against a throwaway hash and says no, so the
/// answer's timing tells nothing about which usernames exist.
pub fn verify_password(hash: Option<&str>, password: &str) -> bool {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let decoy = DECOY.get_or_init(|| hash_password("a decoy nobody signs in with").unwrap_or_default());
    let (phc, real) = match hash {
        Some(h) => (h, true),
        None => (decoy.as_str(), false),
    };
    let Ok(parsed) = PasswordHash::new(phc) else { return false };
    Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok() && real
}

/// The lockout policy: `[console] max_failures` wrong passwords in a row lock an account for
/// `[console] lockout`.
#[derive(Debug, Clone, Copy)]
pub struct Lockout {
    pub max_failures: u32,
    pub duration_ms: i64,
}

/// What one sign-in attempt comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// In. The failures are forgotten.
    Accepted,
    /// Unknown username or wrong password: the same answer for both.
    Refused,
    /// Wrong again, and now locked until then.
    LockedNow { until: i64 },
    /// Locked before this attempt, whatever the password: until then.
    Locked { until: i64 },
    /// An administrator disabled the account.
    Disabled,
}

/// Decides an attempt on `account` (none: unknown username) whose password did or did not
/// verify, and the failures count and lock to store after it.
pub fn attempt(account: Option<&Account>, password_ok: bool, now: i64, policy: Lockout) -> (Attempt, u32, Option<i64>) {
    let Some(account) = account else { return (Attempt::Refused, 0, None) };
    if let Some(until) = account.locked_at(now) {
        return (Attempt::Locked { until }, account.failures, Some(until));
    }
    if password_ok && account.disabled {
        return (Attempt::Disabled, 0, None);
    }
    if password_ok {
        return (Attempt::Accepted, 0, None);
    }
    let failures = account.failures.saturating_add(1);
    if failures >= policy.max_failures.max(1) {
        let until = now + policy.duration_ms;
        (Attempt::LockedNow { until }, 0, Some(until))
    } else {
        (Attempt::Refused, failures, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Known {
        Known { units: ["st-dongmen".to_string()].into(), leaders: ["leader-li".to_string()].into() }
    }

    fn draft(roles: &[&str]) -> Draft {
        Draft {
            username: "Wang.Wu".into(),
            name: " 王五 ".into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            password: "qiu-tian-2026".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_centre_agent_needs_no_unit_and_is_normalised() {
        let ok = check_draft(&draft(&["centre_agent"]), &known()).unwrap();
        assert_eq!(ok.username, "wang.wu");
        assert_eq!(ok.name, "王五");
        assert_eq!(ok.roles, [Role::CentreAgent]);
        assert_eq!(ok.unit, None);
    }

    #[test]
    fn unit_roles_need_a_known_unit_and_only_they_may_name_one() {
        let err = check_draft(&draft(&["unit_handler"]), &known()).unwrap_err();
        assert!(err["unit"].contains("所属单位"), "{err:?}");
        let mut d = draft(&["unit_handler"]);
        d.unit = "st-nowhere".into();
        assert!(check_draft(&d, &known()).unwrap_err()["unit"].contains("st-nowhere"));
        d.unit = "st-dongmen".into();
        assert_eq!(check_draft(&d, &known()).unwrap().unit.as_deref(), Some("st-dongmen"));
        let mut centre = draft(&["centre_agent"]);
        centre.unit = "st-dongmen".into();
        assert!(check_draft(&centre, &known()).unwrap_err().contains_key("unit"));
    }

    #[test]
    fn a_leader_is_a_leader_of_the_organisation() {
        let err = check_draft(&draft(&["leader"]), &known()).unwrap_err();
        assert!(err.contains_key("leader"));
        let mut d = draft(&["leader"]);
        d.leader = "leader-li".into();
        let ok = check_draft(&d, &known()).unwrap();
        let account = Account {
            username: ok.username,
            name: ok.name,
            roles: ok.roles,
            unit: None,
            leader: ok.leader,
            password_hash: None,
            oidc_subject: None,
            disabled: false,
            failures: 0,
            locked_until: None,
        };
        assert_eq!(account.token_subject(), "leader-li");
    }

    #[test]
    fn machine_roles_and_unknown_roles_are_refused() {
        for role in ["service", "channel_integrator", "root"] {
            let err = check_draft(&draft(&[role]), &known()).unwrap_err();
            assert!(err["roles"].contains(role), "{role}: {err:?}");
        }
        assert!(check_draft(&draft(&[]), &known()).unwrap_err()["roles"].contains("至少"));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let d = Draft { username: "x".into(), name: String::new(), roles: vec![], password: "short".into(), ..Default::default() };
        let err = check_draft(&d, &known()).unwrap_err();
        assert_eq!(err.keys().copied().collect::<Vec<_>>(), ["name", "password", "roles", "username"]);
    }

    #[test]
    fn usernames() {
        for ok in ["ab", "wang.wu", "u-01_x", "9lives"] {
            assert_eq!(check_username(ok), Ok(()), "{ok}");
        }
        for bad in ["", "a", ".dot", "王五", "has space", "UPPER", &"x".repeat(41), "a/b"] {
            assert!(check_username(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn passwords() {
        assert_eq!(check_password("qiu-tian-2026", "wang"), Ok(()));
        assert!(check_password("short", "wang").unwrap_err().contains("10"));
        assert!(check_password("aaaaaaaaaaaa", "wang").unwrap_err().contains("不同"));
        assert!(check_password("Wang.Wu-2026!", "wang.wu").unwrap_err().contains("用户名"));
        assert!(check_password(&"ab1!x".repeat(30), "wang").unwrap_err().contains("128"));
    }

    #[test]
    fn argon2id_hashes_verify_and_an_unknown_user_never_does() {
        let hash = hash_password("qiu-tian-2026").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
        assert_ne!(hash, hash_password("qiu-tian-2026").unwrap(), "salted");
        assert!(verify_password(Some(&hash), "qiu-tian-2026"));
        assert!(!verify_password(Some(&hash), "qiu-tian-2025"));
        assert!(!verify_password(None, "a decoy nobody signs in with"));
        assert!(!verify_password(Some("not a hash"), "x"));
    }

    fn account(failures: u32, locked_until: Option<i64>, disabled: bool) -> Account {
        Account { failures, locked_until, disabled, ..Account::sample(&[Role::CentreAgent], None) }
    }

    const POLICY: Lockout = Lockout { max_failures: 3, duration_ms: 60_000 };

    #[test]
    fn the_lockout_counts_failures_in_a_row_and_holds_even_the_right_password() {
        assert_eq!(attempt(None, false, 0, POLICY), (Attempt::Refused, 0, None));
        assert_eq!(attempt(Some(&account(0, None, false)), false, 0, POLICY), (Attempt::Refused, 1, None));
        assert_eq!(attempt(Some(&account(1, None, false)), false, 0, POLICY), (Attempt::Refused, 2, None));
        assert_eq!(attempt(Some(&account(2, None, false)), false, 5, POLICY), (Attempt::LockedNow { until: 60_005 }, 0, Some(60_005)));
        let locked = account(0, Some(60_005), false);
        assert_eq!(attempt(Some(&locked), true, 60_000, POLICY), (Attempt::Locked { until: 60_005 }, 0, Some(60_005)));
        assert_eq!(attempt(Some(&locked), true, 60_005, POLICY), (Attempt::Accepted, 0, None));
        assert_eq!(attempt(Some(&account(2, None, false)), true, 0, POLICY), (Attempt::Accepted, 0, None), "success forgets");
    }

    #[test]
    fn a_disabled_account_is_told_so_only_with_the_right_password() {
        assert_eq!(attempt(Some(&account(0, None, true)), true, 0, POLICY).0, Attempt::Disabled);
        assert_eq!(attempt(Some(&account(0, None, true)), false, 0, POLICY).0, Attempt::Refused);
    }
}
