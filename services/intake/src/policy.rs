//! Who may read a citizen's contact (联系方式调阅权限): pure rules over the verified caller,
//! tested for every role. Name and phone are for reaching the citizen about this case, so only
//! those who must do that may read them: notification (to text the citizen), the handler or
//! head of the unit that owns the case (to call back), and revisit agents (回访). Everyone
//! else is refused — and every request, allowed or refused, is recorded.

pub use jiesu_kit::auth::Refusal;
use jiesu_kit::auth::{Identity, Role, may_see_case};

/// The service that texts citizens.
const NOTIFICATION: &str = "notification";

/// May `who` read the contact of a case owned by `owner` (`None`: not dispatched yet)?
pub fn may_read_contact(who: &Identity, owner: Option<&str>) -> Result<(), Refusal> {
    if who.has(Role::Service) && who.subject == NOTIFICATION {
        return Ok(());
    }
    if who.has(Role::RevisitAgent) {
        return Ok(());
    }
    if (who.has(Role::UnitHandler) || who.has(Role::UnitHead)) && who.unit.is_some() && who.unit.as_deref() == owner {
        return Ok(());
    }
    Err(Refusal(format!(
        "{} may not read the citizen's contact: only notification, the owning unit's handler or head, and revisit agents may",
        who.describe()
    )))
}

/// May `who` read a submission as received (its text may carry what the citizen told about
/// themselves)? The centre, auditors, administrators, services and revisit agents; a unit only
/// once the case is its own.
pub fn may_read_submission(who: &Identity, owner: Option<&str>) -> Result<(), Refusal> {
    if who.has(Role::RevisitAgent) {
        return Ok(());
    }
    may_see_case(who, owner)
        .map_err(|_| Refusal(format!("{} may not read this submission: a unit reads the submissions of its own cases", who.describe())))
}

/// May `who` list the record of contact reads?
pub fn may_audit(who: &Identity) -> Result<(), Refusal> {
    if who.has(Role::Auditor) || who.has(Role::Administrator) {
        Ok(())
    } else {
        Err(Refusal(format!("{} may not list contact reads: that record is for auditors and administrators", who.describe())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(role: Role, subject: &str, unit: Option<&str>) -> Identity {
        Identity {
            subject: subject.into(), name: "某人".into(), roles: vec![role], unit: unit.map(str::to_string), issuer: "jiesu".into()
        }
    }

    #[test]
    fn contact_reads_for_every_role() {
        for role in Role::ALL {
            let unit = role.needs_unit().then_some("st-dongmen");
            let caller = who(role, "u-1", unit);
            let expected = matches!(role, Role::RevisitAgent | Role::UnitHandler | Role::UnitHead);
            assert_eq!(may_read_contact(&caller, Some("st-dongmen")).is_ok(), expected, "{role} on its own unit's case");
            assert_eq!(may_read_contact(&caller, Some("st-xinan")).is_ok(), role == Role::RevisitAgent, "{role} on another unit's case");
            assert_eq!(may_read_contact(&caller, None).is_ok(), role == Role::RevisitAgent, "{role} before dispatch");
            assert_eq!(may_audit(&caller).is_ok(), matches!(role, Role::Auditor | Role::Administrator), "{role} auditing");
            let reads_all = matches!(
                role,
                Role::CentreAgent | Role::CentreSupervisor | Role::Auditor | Role::Administrator | Role::Service | Role::RevisitAgent
            );
            let unit = matches!(role, Role::UnitHandler | Role::UnitHead);
            assert_eq!(may_read_submission(&caller, Some("st-dongmen")).is_ok(), reads_all || unit, "{role} reading its unit's submission");
            assert_eq!(may_read_submission(&caller, Some("st-xinan")).is_ok(), reads_all, "{role} reading another unit's");
            assert_eq!(may_read_submission(&caller, None).is_ok(), reads_all, "{role} before dispatch");
        }
        assert!(may_read_contact(&who(Role::Service, "notification", None), None).is_ok());
        let other_service = may_read_contact(&who(Role::Service, "dispatch", None), Some("st-dongmen")).unwrap_err();
        assert!(other_service.0.contains("only notification"), "{other_service}");
    }
}
