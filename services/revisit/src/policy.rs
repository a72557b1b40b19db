//! Who may do what with revisits (回访的权限): pure rules over the verified caller, tested for
//! every role. Only revisit agents record the citizen's verdict; the centre, auditors,
//! administrators and the services read revisits, and a unit reads those of its own cases.

pub use jiesu_kit::auth::Refusal;
use jiesu_kit::auth::{Identity, Role, may_see_case};

/// May `who` record the citizen's answer?
pub fn may_record(who: &Identity) -> Result<(), Refusal> {
    if who.has(Role::RevisitAgent) {
        Ok(())
    } else {
        Err(Refusal(format!("{} may not record a revisit: recording the citizen's verdict is for revisit agents (回访员)", who.describe())))
    }
}

/// May `who` read the revisits of a case handled by `unit`?
pub fn may_view(who: &Identity, unit: &str) -> Result<(), Refusal> {
    if who.has(Role::RevisitAgent) {
        return Ok(());
    }
    may_see_case(who, [unit]).map_err(|_| {
        Refusal(format!(
            "{} may not read these revisits: a unit reads those of its own cases; the centre and revisit agents all",
            who.describe()
        ))
    })
}

/// May `who` list the revisits due (待回访)? Revisit agents, and those who see every case.
pub fn may_list_due(who: &Identity) -> Result<(), Refusal> {
    if who.has(Role::RevisitAgent) || jiesu_kit::auth::sees_every_case(who) {
        Ok(())
    } else {
        Err(Refusal(format!("{} may not list the revisits due: the list is the revisit agents' and the centre's", who.describe())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisit_rules_for_every_role() {
        for role in Role::ALL {
            let who = Identity {
                subject: "u".into(),
                name: "某人".into(),
                roles: vec![role],
                unit: role.needs_unit().then(|| "st-dongmen".to_string()),
                issuer: "jiesu".into(),
            };
            assert_eq!(may_record(&who).is_ok(), role == Role::RevisitAgent, "{role} recording");
            let all = matches!(
                role,
                Role::RevisitAgent | Role::CentreAgent | Role::CentreSupervisor | Role::Auditor | Role::Administrator | Role::Service
            );
            let unit = matches!(role, Role::UnitHandler | Role::UnitHead);
            assert_eq!(may_view(&who, "st-dongmen").is_ok(), all || unit, "{role} on its unit's case");
            assert_eq!(may_view(&who, "st-xinan").is_ok(), all, "{role} on another unit's case");
            assert_eq!(may_list_due(&who).is_ok(), all, "{role} listing the revisits due");
        }
    }
}
