//! Who may read a citizen's contact (联系方式调阅权限): pure rules over the verified caller,
//! tested for every role. Name and phone are for reaching the citizen about this case, so only
//! those who must do that may read them: notification (to text the citizen), the handler or
//! head of the unit that owns the case (to call back), and revisit agents (回访). Everyone
//! else is refused — and every request, allowed or refused, is recorded.

pub use jiesu_kit::auth::Refusal;
use jiesu_kit::auth::{Identity, Role, may_see_case};

use crate::domain::{Channel, ChannelKind};

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

/// May `who` submit on `channel` (and upload files for it)? A channel's producer only on its own
/// channels (a leaked key of the WeChat adapter cannot pose as the hotline); the centre on any,
/// as it enters calls, letters and walk-ins; a unit's staff on patrol and walk-in channels, the
/// reports of grid officers and of the sessions their street holds; another Jiesu service on any.
pub fn may_submit(who: &Identity, channel: &Channel) -> Result<(), Refusal> {
    let allowed = who.has(Role::CentreAgent)
        || who.has(Role::CentreSupervisor)
        || who.has(Role::Service)
        || (who.has(Role::ChannelIntegrator) && who.subject == channel.producer())
        || ((who.has(Role::UnitHandler) || who.has(Role::UnitHead)) && matches!(channel.kind, ChannelKind::Patrol | ChannelKind::WalkIn));
    if allowed {
        return Ok(());
    }
    Err(Refusal(if who.has(Role::ChannelIntegrator) {
        format!("{} may not submit on channel {:?}: its producer is {:?}", who.describe(), channel.id, channel.producer())
    } else {
        format!(
            "{} may not submit on channel {:?}: the centre, the channel's producer, and a unit's staff on patrol and walk-in channels may",
            who.describe(),
            channel.id
        )
    }))
}

/// May `who` receive an attachment of a case as uploaded, location and all? The centre,
/// auditors and administrators; everyone else who may read the case gets it stripped.
pub fn sees_original_attachments(who: &Identity) -> bool {
    who.has(Role::CentreAgent) || who.has(Role::CentreSupervisor) || who.has(Role::Auditor) || who.has(Role::Administrator)
}

/// May `who` list what the public may see of the requests of `channel` (the Open311 front)?
/// Its producer, the centre, auditors and administrators.
pub fn may_list_channel(who: &Identity, channel: &Channel) -> Result<(), Refusal> {
    let allowed = who.has(Role::CentreAgent)
        || who.has(Role::CentreSupervisor)
        || who.has(Role::Auditor)
        || who.has(Role::Administrator)
        || (who.has(Role::ChannelIntegrator) && who.subject == channel.producer());
    if allowed {
        Ok(())
    } else {
        Err(Refusal(format!("{} may not list the requests of channel {:?}: its producer and the centre may", who.describe(), channel.id)))
    }
}

/// May `who` list the record of contact reads?
pub fn may_audit(who: &Identity) -> Result<(), Refusal> {
    if who.has(Role::Auditor) || who.has(Role::Administrator) {
        Ok(())
    } else {
        Err(Refusal(format!("{} may not list contact reads: that record is for auditors and administrators", who.describe())))
    }
}

/// May `who` count the requests received per channel (a dashboard's figures)? The centre,
/// leaders, auditors, administrators and the services: no request's content, only numbers.
pub fn may_count_received(who: &Identity) -> Result<(), Refusal> {
    if jiesu_kit::auth::sees_every_case(who) || who.has(Role::Leader) {
        Ok(())
    } else {
        Err(Refusal(format!("{} may not count the requests received: the figures are the centre's and the leaders'", who.describe())))
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

    fn channel(id: &str, kind: ChannelKind, producer: &str) -> Channel {
        Channel {
            id: id.into(),
            name: String::new(),
            kind,
            owner: String::new(),
            producer: producer.into(),
            requires_contact: true,
            enabled: true,
            limits: Default::default(),
        }
    }

    #[test]
    fn submissions_for_every_role() {
        let hotline = channel("hotline", ChannelKind::Hotline, "");
        let mailbox = channel("secretary_mailbox", ChannelKind::Mailbox, "web");
        let patrol = channel("grid_patrol", ChannelKind::Patrol, "");
        let session = channel("night_talks", ChannelKind::WalkIn, "");
        for role in Role::ALL {
            let caller = who(role, "someone", role.needs_unit().then_some("st-dongmen"));
            let centre = matches!(role, Role::CentreAgent | Role::CentreSupervisor | Role::Service);
            let unit = matches!(role, Role::UnitHandler | Role::UnitHead);
            assert_eq!(may_submit(&caller, &hotline).is_ok(), centre, "{role} on the hotline");
            assert_eq!(may_submit(&caller, &mailbox).is_ok(), centre, "{role} on a mailbox");
            assert_eq!(may_submit(&caller, &patrol).is_ok(), centre || unit, "{role} on patrol");
            assert_eq!(may_submit(&caller, &session).is_ok(), centre || unit, "{role} at a walk-in session");
            assert_eq!(
                sees_original_attachments(&caller),
                matches!(role, Role::CentreAgent | Role::CentreSupervisor | Role::Auditor | Role::Administrator)
            );
        }
        let web = who(Role::ChannelIntegrator, "web", None);
        assert!(may_submit(&web, &mailbox).is_ok(), "the web front produces for the mailboxes");
        let refused = may_submit(&web, &hotline).unwrap_err();
        assert!(refused.0.contains("its producer is \"hotline\""), "{refused}");
        assert!(may_submit(&who(Role::ChannelIntegrator, "hotline", None), &hotline).is_ok(), "the producer defaults to the id");
        for role in Role::ALL {
            let caller = who(role, "someone", role.needs_unit().then_some("st-dongmen"));
            let expected = matches!(role, Role::CentreAgent | Role::CentreSupervisor | Role::Auditor | Role::Administrator);
            assert_eq!(may_list_channel(&caller, &mailbox).is_ok(), expected, "{role} listing a channel");
        }
        assert!(may_list_channel(&web, &mailbox).is_ok());
        assert!(may_list_channel(&web, &hotline).is_err(), "only its own channels");
    }

    #[test]
    fn counting_what_was_received_for_every_role() {
        for role in Role::ALL {
            let expected = matches!(
                role,
                Role::CentreAgent | Role::CentreSupervisor | Role::Leader | Role::Auditor | Role::Administrator | Role::Service
            );
            assert_eq!(may_count_received(&who(role, "u", role.needs_unit().then_some("st-dongmen"))).is_ok(), expected, "{role}");
        }
    }
}
