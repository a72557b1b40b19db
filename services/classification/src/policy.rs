//! Who may do what in classification (分类的权限): pure rules over the verified caller, tested for
//! every role. A refusal names the rule that refused.
//!
//! - The review queue holds citizens' words: the centre, auditors, administrators and the other
//!   Jiesu services read it; only the centre's agents and supervisors (受理派单员, 督办员) decide
//!   on it, and each decision records who made it.
//! - Similar earlier cases (疑似重复) are for whoever files or handles reports: the centre and the
//!   units (a grid officer checks before reporting); not for leaders, revisit agents or channels.

use jiesu_kit::auth::{Identity, Refusal, Role, sees_every_case};

/// May `who` read the review queue?
pub fn may_read_queue(who: &Identity) -> Result<(), Refusal> {
    if sees_every_case(who) {
        return Ok(());
    }
    Err(Refusal(format!("{} may not read the review queue: it is for the centre and auditors", who.describe())))
}

/// May `who` confirm or correct a waiting classification?
pub fn may_review(who: &Identity) -> Result<(), Refusal> {
    if who.has(Role::CentreAgent) || who.has(Role::CentreSupervisor) {
        return Ok(());
    }
    Err(Refusal(format!("{} may not decide a classification: reviews are for the centre's agents and supervisors", who.describe())))
}

/// May `who` look for similar earlier cases?
pub fn may_look_for_similar(who: &Identity) -> Result<(), Refusal> {
    if sees_every_case(who) || ((who.has(Role::UnitHandler) || who.has(Role::UnitHead)) && who.unit.is_some()) {
        return Ok(());
    }
    Err(Refusal(format!("{} may not list earlier cases: that is for the centre and the units", who.describe())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(role: Role, unit: Option<&str>) -> Identity {
        Identity { subject: "u".into(), name: "某人".into(), roles: vec![role], unit: unit.map(str::to_string), issuer: "jiesu".into() }
    }

    #[test]
    fn every_role_against_every_rule() {
        use Role::*;
        // (role, unit, reads the queue, decides, looks for similar cases)
        let table = [
            (CentreAgent, None, true, true, true),
            (CentreSupervisor, None, true, true, true),
            (UnitHandler, Some("st-dongmen"), false, false, true),
            (UnitHead, Some("st-dongmen"), false, false, true),
            (UnitHandler, None, false, false, false),
            (Leader, None, false, false, false),
            (RevisitAgent, None, false, false, false),
            (Auditor, None, true, false, true),
            (Administrator, None, true, false, true),
            (ChannelIntegrator, None, false, false, false),
            (Service, None, true, false, true),
        ];
        for (role, unit, reads, decides, similar) in table {
            let w = who(role, unit);
            assert_eq!(may_read_queue(&w).is_ok(), reads, "{role} reads");
            assert_eq!(may_review(&w).is_ok(), decides, "{role} decides");
            assert_eq!(may_look_for_similar(&w).is_ok(), similar, "{role} similar");
        }
        let refusal = may_review(&who(Auditor, None)).unwrap_err();
        assert!(refusal.0.contains("centre's agents and supervisors"), "{refusal}");
    }
}
