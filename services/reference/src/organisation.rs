//! The district's organisation tree (组织架构): district → streets → communities → grids, the
//! departments (委办局) and the service centre, from the `organisation` reference file.

use serde::Deserialize;

/// What a unit of the organisation tree is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnitKind {
    /// 区
    District,
    /// 诉求服务中心 (the 12345 centre)
    Centre,
    /// 街道
    Street,
    /// 社区
    Community,
    /// 委办局
    Department,
    /// 网格
    Grid,
}

impl UnitKind {
    /// The name in the organisation file and the API.
    pub fn key(self) -> &'static str {
        match self {
            UnitKind::District => "district",
            UnitKind::Centre => "centre",
            UnitKind::Street => "street",
            UnitKind::Community => "community",
            UnitKind::Department => "department",
            UnitKind::Grid => "grid",
        }
    }
}

/// One unit (单位) of the district's organisation tree.
#[derive(Debug, Clone, Deserialize)]
pub struct Unit {
    /// What the matrix, events and APIs refer to: `st-dongmen`, `dept-water`.
    pub id: String,
    /// What people read: "东门街道".
    pub name: String,
    pub kind: UnitKind,
    /// The unit above it (a community's street), if any.
    #[serde(default)]
    pub parent: Option<String>,
    /// Who answers for the unit today (值班联系人): the centre calls them for an emergency.
    #[serde(default)]
    pub duty: Vec<DutyContact>,
    /// The business hours its working-hour limits count on (`[sla_timer.business_hours]`: a set
    /// such as "office" or "always"); the district's default when absent.
    #[serde(default)]
    pub hours: Option<String>,
}

/// A unit's duty contact (值班联系人). Staff data: shown to staff, never written to logs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DutyContact {
    pub name: String,
    pub phone: String,
    /// When they answer, as people say it: "工作日 8:30–17:30", "24小时".
    #[serde(default)]
    pub hours: String,
}

/// A district leader (区领导) who takes escalated cases (领导包案) and the units they oversee
/// (分管单位). A leader's token carries the leader's id as its subject.
#[derive(Debug, Clone, Deserialize)]
pub struct Leader {
    /// `leader-li`
    pub id: String,
    /// "李副区长"
    pub name: String,
    /// "副区长"
    #[serde(default)]
    pub title: String,
    /// The units they oversee.
    #[serde(default)]
    pub oversees: Vec<String>,
}

/// The organisation reference file (`version`, `[[units]]`, `[[leaders]]`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Organisation {
    /// Which edition of the organisation this is (e.g. "2026-12"): shown with every answer about
    /// it, so that a case's unit can be read against the tree it was dispatched under.
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub units: Vec<Unit>,
    #[serde(default)]
    pub leaders: Vec<Leader>,
}

impl Organisation {
    pub fn unit(&self, id: &str) -> Option<&Unit> {
        self.units.iter().find(|u| u.id == id)
    }

    /// The unit's name, or its id when the organisation does not know it (a case dispatched
    /// under an older organisation file keeps a readable timeline).
    pub fn name_of<'a>(&'a self, id: &'a str) -> &'a str {
        self.name_or(id, "")
    }

    /// The unit's name; else `fallback` (e.g. the name an event carried) when not empty; else the id.
    pub fn name_or<'a>(&'a self, id: &'a str, fallback: &'a str) -> &'a str {
        match self.unit(id) {
            Some(u) => &u.name,
            None if !fallback.is_empty() => fallback,
            None => id,
        }
    }

    pub fn leader(&self, id: &str) -> Option<&Leader> {
        self.leaders.iter().find(|l| l.id == id)
    }

    /// Every problem of the file at once: ids that repeat, parents and overseen units that are
    /// not units of the tree.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for (i, u) in self.units.iter().enumerate() {
            if u.id.trim().is_empty() {
                problems.push(format!("units[{i}]: id is empty"));
            } else if !seen.insert(u.id.as_str()) {
                problems.push(format!("units[{i}]: id {:?} is used twice", u.id));
            }
            if let Some(parent) = u.parent.as_deref().filter(|p| !self.contains(p)) {
                problems.push(format!("units[{i}] {:?}: parent {parent:?} is not a unit", u.id));
            }
            if u.name.trim().is_empty() {
                problems.push(format!("units[{i}] {:?}: name is empty", u.id));
            }
            for (j, d) in u.duty.iter().enumerate() {
                let digits = d.phone.chars().filter(char::is_ascii_digit).count();
                if d.name.trim().is_empty() || !(5..=15).contains(&digits) {
                    problems.push(format!("units[{i}] {:?}: duty[{j}] needs a name and a phone number of 5 to 15 digits", u.id));
                }
            }
        }
        for (i, l) in self.leaders.iter().enumerate() {
            if l.id.trim().is_empty() {
                problems.push(format!("leaders[{i}]: id is empty"));
            } else if !seen.insert(l.id.as_str()) {
                problems.push(format!("leaders[{i}]: id {:?} is used twice", l.id));
            }
            for unit in l.oversees.iter().filter(|u| !self.contains(u)) {
                problems.push(format!("leaders[{i}] {:?}: oversees {unit:?}, which is not a unit", l.id));
            }
        }
        problems
    }

    pub fn contains(&self, id: &str) -> bool {
        self.unit(id).is_some()
    }

    pub fn is_street(&self, id: &str) -> bool {
        self.unit(id).is_some_and(|u| u.kind == UnitKind::Street)
    }

    /// The street office (街道) responsible for a place: its street when that is a street of
    /// the tree, else the street above its community, else none.
    pub fn street_of(&self, street: &str, community: &str) -> Option<&str> {
        if let Some(u) = self.unit(street.trim()).filter(|u| u.kind == UnitKind::Street) {
            return Some(&u.id);
        }
        // Walk up from the community; the bound guards against a cycle in a bad file.
        let mut current = self.unit(community.trim());
        for _ in 0..self.units.len() {
            let u = current?;
            if u.kind == UnitKind::Street {
                return Some(&u.id);
            }
            current = self.unit(u.parent.as_deref()?);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fall_back_to_what_an_event_carried_then_to_the_id() {
        let org = Organisation {
            units: vec![Unit {
                id: "st-dongmen".into(),
                name: "东门街道".into(),
                kind: UnitKind::Street,
                parent: None,
                duty: vec![],
                hours: None,
            }],
            ..Default::default()
        };
        assert_eq!(org.name_or("st-dongmen", "x"), "东门街道");
        assert_eq!(org.name_or("dept-x", "某局"), "某局");
        assert_eq!(org.name_or("dept-x", ""), "dept-x");
        assert!(org.contains("st-dongmen") && org.is_street("st-dongmen"));
    }

    #[test]
    fn every_problem_of_the_file_is_named() {
        let org: Organisation = toml::from_str(
            r#"
            [[units]]
            id = "a"
            name = "甲"
            kind = "street"
            parent = "nowhere"
            [[units]]
            id = "a"
            name = "乙"
            kind = "street"
            duty = [{ name = "值班员", phone = "12" }]
            [[leaders]]
            id = "leader-li"
            name = "李副区长"
            oversees = ["a", "ghost"]
            "#,
        )
        .unwrap();
        let problems = org.problems().join("\n");
        assert!(problems.contains(r#"units[0] "a": parent "nowhere""#), "{problems}");
        assert!(problems.contains(r#"units[1]: id "a" is used twice"#), "{problems}");
        assert!(problems.contains(r#"leaders[0] "leader-li": oversees "ghost""#), "{problems}");
        assert!(problems.contains(r#"units[1] "a": duty[0] needs a name and a phone number"#), "{problems}");
        assert_eq!(org.leader("leader-li").unwrap().name, "李副区长");
    }
}
