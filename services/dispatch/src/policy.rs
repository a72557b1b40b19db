//! Who may do what with a case in dispatch (派单与办理的权限): pure rules over the verified
//! caller, tested for every role. A refusal names the rule that refused.
//!
//! - The centre (受理派单员, 督办员), auditors (read-only), administrators and the other Jiesu
//!   services see every case.
//! - A unit (承办人, 单位负责人) sees the cases it owns or assists, and lists only its own.
//! - Only the owning unit's handler or head signs for, contacts about and resolves a case, and
//!   the unit it acts for is the one in its token, never one named in the request.
//! - Leaders see the cases escalated to them (包案); a leader's token carries the leader's id.
//!   Revisit agents read every case (they call citizens back about the reply) and act in revisit;
//!   channel integrators work in intake.
//! - Who acts in the workflow ([`actor`]): the centre's agents and supervisors, a unit's handlers
//!   and heads for their own unit, leaders, and the other services; auditors and administrators
//!   read but do not handle cases. What each actor may do to a case is the workflow's rule.

pub use jiesu_kit::auth::Refusal;
use jiesu_kit::auth::{Identity, Role, may_see_case, sees_every_case};

use crate::workflow::Actor;

/// The units a case concerns, and its leader.
#[derive(Debug, Clone, Copy)]
pub struct Parties<'a> {
    pub owner: &'a str,
    pub assisting: &'a [String],
    /// The leader it is escalated to; empty when none.
    pub leader: &'a str,
    /// The units the calling leader oversees (分管单位), if the caller is a leader.
    pub overseen: &'a [String],
}

fn is_unit(who: &Identity) -> bool {
    who.has(Role::UnitHandler) || who.has(Role::UnitHead)
}

/// May `who` read this case? (The kit's [`may_see_case`] over its owner and assisting units.)
/// Revisit agents read every case too: they call the citizen back about the unit's reply, as
/// intake lets them read the request and the contact.
pub fn may_view(who: &Identity, case: Parties<'_>) -> Result<(), Refusal> {
    if who.has(Role::RevisitAgent) {
        return Ok(());
    }
    if who.has(Role::Leader) && ((!case.leader.is_empty() && who.subject == case.leader) || case.overseen.iter().any(|u| u == case.owner)) {
        return Ok(());
    }
    may_see_case(who, std::iter::once(case.owner).chain(case.assisting.iter().map(String::as_str)))
}

/// Who `who` is in the workflow. The centre's roles come first: a supervisor who is also a unit
/// handler acts as the centre.
pub fn actor(who: &Identity) -> Result<Actor<'_>, Refusal> {
    if who.has(Role::CentreAgent) {
        Ok(Actor::Centre)
    } else if who.has(Role::CentreSupervisor) {
        Ok(Actor::Supervisor)
    } else if let (Some(unit), true) = (&who.unit, is_unit(who)) {
        Ok(Actor::Unit(unit))
    } else if who.has(Role::Leader) {
        Ok(Actor::Leader(&who.subject))
    } else if who.has(Role::Service) {
        Ok(Actor::System)
    } else {
        Err(Refusal(format!(
            "{} may not act on cases: handling is for the centre, the units, leaders and the Jiesu services",
            who.describe()
        )))
    }
}

/// Whether `who` sees cases as a leader does: a leader who is neither of the centre nor a unit.
pub fn acts_as_leader(who: &Identity) -> bool {
    who.has(Role::Leader) && !sees_every_case(who) && !is_unit(who)
}

/// The leader scope of a list or a count: a leader sees the cases escalated to them, and all the
/// cases of a unit they oversee (分管单位) when they ask for that unit; `None` for anyone else.
pub fn leader_scope<'a>(who: &'a Identity, requested_unit: &str, oversees: &[String]) -> Option<&'a str> {
    let leader = acts_as_leader(who);
    let requested_unit = requested_unit.trim();
    let overseen = !requested_unit.is_empty() && oversees.iter().any(|u| u == requested_unit);
    (leader && !overseen).then_some(who.subject.as_str())
}

/// Which unit's cases `who` may list, given the unit the request asks for: `None` for every unit.
pub fn list_scope(who: &Identity, requested: &str) -> Result<Option<String>, Refusal> {
    let requested = requested.trim();
    if sees_every_case(who) {
        return Ok((!requested.is_empty()).then(|| requested.to_string()));
    }
    match (&who.unit, is_unit(who)) {
        (Some(unit), true) if requested.is_empty() || requested == unit => Ok(Some(unit.clone())),
        (Some(unit), true) => {
            Err(Refusal(format!("{} may list only the cases of its own unit {unit}, not of {requested}", who.describe())))
        }
        // A leader lists the cases escalated to them (see leader_scope), of any unit.
        _ if who.has(Role::Leader) => Ok((!requested.is_empty()).then(|| requested.to_string())),
        _ => Err(Refusal(format!("{} may not list cases: listing is for the centre and the units", who.describe()))),
    }
}

/// May `who` read the organisation with its duty contacts? Staff and services; not a channel's
/// producer, which has no business with the staff's phone numbers.
pub fn may_read_organisation(who: &Identity) -> Result<(), Refusal> {
    if who.roles.iter().any(|r| *r != Role::ChannelIntegrator) {
        Ok(())
    } else {
        Err(Refusal(format!("{} may not read the organisation: it is for the district's staff", who.describe())))
    }
}

/// May `who` ask where a case would be dispatched? The centre, auditors, administrators and
/// services: the responsibility list is the centre's tool.
pub fn may_preview_routes(who: &Identity) -> Result<(), Refusal> {
    if sees_every_case(who) {
        Ok(())
    } else {
        Err(Refusal(format!("{} may not preview routes: the responsibility list is the service centre's", who.describe())))
    }
}

/// The unit `who` signs, contacts or resolves for (办理单位): the unit in its token. A request
/// that names another unit is refused, not silently corrected.
pub fn acting_unit<'a>(who: &'a Identity, requested: &str) -> Result<&'a str, Refusal> {
    let requested = requested.trim();
    match (&who.unit, is_unit(who)) {
        (Some(unit), true) if requested.is_empty() || requested == unit => Ok(unit),
        (Some(unit), true) => Err(Refusal(format!("{} acts for unit {unit} (its token), not for {requested}", who.describe()))),
        _ => Err(Refusal(format!(
            "{} may not handle cases: signing for, contacting about and resolving a case is for the owning unit's handler or head",
            who.describe()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(role: Role, unit: Option<&str>) -> Identity {
        Identity { subject: "u".into(), name: "某人".into(), roles: vec![role], unit: unit.map(str::to_string), issuer: "jiesu".into() }
    }

    fn unit_of(role: Role) -> Option<&'static str> {
        role.needs_unit().then_some("st-dongmen")
    }

    const ASSISTING: &[String] = &[];

    #[test]
    fn who_sees_a_case_for_every_role() {
        let owned = Parties { owner: "st-dongmen", assisting: ASSISTING, leader: "", overseen: &[] };
        let assisting = vec!["st-dongmen".to_string()];
        let assisted = Parties { owner: "dept-urban-management", assisting: &assisting, leader: "", overseen: &[] };
        let foreign = Parties { owner: "st-xinan", assisting: ASSISTING, leader: "", overseen: &[] };
        for role in Role::ALL {
            let caller = who(role, unit_of(role));
            let all = matches!(
                role,
                Role::CentreAgent | Role::CentreSupervisor | Role::Auditor | Role::Administrator | Role::Service | Role::RevisitAgent
            );
            let unit = matches!(role, Role::UnitHandler | Role::UnitHead);
            assert_eq!(may_view(&caller, owned).is_ok(), all || unit, "{role} on its own case");
            assert_eq!(may_view(&caller, assisted).is_ok(), all || unit, "{role} on a case it assists");
            assert_eq!(may_view(&caller, foreign).is_ok(), all, "{role} on another unit's case");
        }
        let refusal = may_view(&who(Role::UnitHandler, Some("st-dongmen")), foreign).unwrap_err();
        assert!(refusal.0.contains("owns or assists"), "{refusal}");
    }

    #[test]
    fn only_a_unit_handles_and_only_for_its_own_unit() {
        for role in Role::ALL {
            let caller = who(role, unit_of(role));
            let unit = matches!(role, Role::UnitHandler | Role::UnitHead);
            assert_eq!(acting_unit(&caller, "").ok(), unit.then_some("st-dongmen"), "{role}");
            assert_eq!(acting_unit(&caller, "st-dongmen").ok(), unit.then_some("st-dongmen"), "{role}");
            assert!(acting_unit(&caller, "st-xinan").is_err(), "{role} naming another unit");
        }
        let refusal = acting_unit(&who(Role::UnitHandler, Some("st-dongmen")), "st-xinan").unwrap_err();
        assert!(refusal.0.contains("acts for unit st-dongmen (its token), not for st-xinan"), "{refusal}");
        assert!(acting_unit(&who(Role::RevisitAgent, None), "").unwrap_err().0.contains("owning unit's handler or head"));
    }

    #[test]
    fn a_unit_lists_only_its_own_cases_the_centre_any() {
        for role in Role::ALL {
            let caller = who(role, unit_of(role));
            let all = matches!(role, Role::CentreAgent | Role::CentreSupervisor | Role::Auditor | Role::Administrator | Role::Service);
            let unit = matches!(role, Role::UnitHandler | Role::UnitHead);
            match (all, unit) {
                (true, _) => {
                    assert_eq!(list_scope(&caller, ""), Ok(None), "{role}");
                    assert_eq!(list_scope(&caller, "st-xinan"), Ok(Some("st-xinan".into())), "{role}");
                }
                (false, true) => {
                    assert_eq!(list_scope(&caller, ""), Ok(Some("st-dongmen".into())), "{role}");
                    assert!(list_scope(&caller, "st-xinan").is_err(), "{role}");
                }
                (false, false) if role == Role::Leader => assert_eq!(list_scope(&caller, ""), Ok(None)),
                (false, false) => assert!(list_scope(&caller, "").is_err(), "{role}"),
            }
        }
    }

    #[test]
    fn a_leader_sees_the_cases_escalated_to_them_only() {
        let leader = Identity { subject: "leader-li".into(), ..who(Role::Leader, None) };
        let escalated = Parties { owner: "st-xinan", assisting: ASSISTING, leader: "leader-li", overseen: &[] };
        let others = Parties { owner: "st-xinan", assisting: ASSISTING, leader: "leader-wang", overseen: &[] };
        assert!(may_view(&leader, escalated).is_ok());
        assert!(may_view(&leader, others).is_err());
        assert!(may_view(&leader, Parties { leader: "", ..escalated }).is_err());
        // A case of a unit the leader oversees, escalated or not.
        let xinan = vec!["st-xinan".to_string()];
        assert!(may_view(&leader, Parties { overseen: &xinan, ..others }).is_ok());
        assert_eq!(leader_scope(&leader, "", &[]), Some("leader-li"));
        let oversees = vec!["st-xinan".to_string()];
        assert_eq!(leader_scope(&leader, "st-xinan", &oversees), None, "a unit they oversee: all its cases");
        assert_eq!(leader_scope(&leader, "st-dongmen", &oversees), Some("leader-li"), "another unit: only what is escalated to them");
        // A unit handler named like a leader is not one.
        let handler = Identity { subject: "leader-li".into(), ..who(Role::UnitHandler, Some("st-dongmen")) };
        assert!(may_view(&handler, escalated).is_err());
    }

    #[test]
    fn every_role_is_a_workflow_actor_or_refused() {
        for role in Role::ALL {
            let caller = who(role, unit_of(role));
            let expected = match role {
                Role::CentreAgent => Some(Actor::Centre),
                Role::CentreSupervisor => Some(Actor::Supervisor),
                Role::UnitHandler | Role::UnitHead => Some(Actor::Unit("st-dongmen")),
                Role::Leader => Some(Actor::Leader("u")),
                Role::Service => Some(Actor::System),
                Role::RevisitAgent | Role::Auditor | Role::Administrator | Role::ChannelIntegrator => None,
            };
            assert_eq!(actor(&caller).ok(), expected, "{role}");
        }
        assert!(actor(&who(Role::Auditor, None)).unwrap_err().0.contains("may not act on cases"));
    }

    #[test]
    fn staff_read_the_organisation_channels_do_not() {
        for role in Role::ALL {
            assert_eq!(may_read_organisation(&who(role, unit_of(role))).is_ok(), role != Role::ChannelIntegrator, "{role}");
        }
    }

    #[test]
    fn only_those_who_see_every_case_preview_routes() {
        for role in Role::ALL {
            let allowed = may_preview_routes(&who(role, unit_of(role))).is_ok();
            let expected = matches!(role, Role::CentreAgent | Role::CentreSupervisor | Role::Auditor | Role::Administrator | Role::Service);
            assert_eq!(allowed, expected, "{role:?}");
        }
    }
}
