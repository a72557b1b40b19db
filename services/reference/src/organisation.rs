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
}

/// The organisation reference file (`[[units]]`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Organisation {
    #[serde(default)]
    pub units: Vec<Unit>,
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
            units: vec![Unit { id: "st-dongmen".into(), name: "东门街道".into(), kind: UnitKind::Street, parent: None }],
        };
        assert_eq!(org.name_or("st-dongmen", "x"), "东门街道");
        assert_eq!(org.name_or("dept-x", "某局"), "某局");
        assert_eq!(org.name_or("dept-x", ""), "dept-x");
        assert!(org.contains("st-dongmen") && org.is_street("st-dongmen"));
    }
}
