//! Output columns: names as segments write them, resolved against the catalog, and the default
//! columns of each target and channel.

use super::channel::Channel;
use crate::catalog::names::same;
use crate::catalog::{Catalog, Entity};
use crate::check::resolve_attribute;
use crate::error::{Error, Result};
use crate::plan::{DerivedColumn, OutputColumn, Target};

/// The columns an audience shows when none are asked for.
pub fn defaults(target: Target, channel: Option<Channel>) -> &'static [&'static str] {
    match (channel, target) {
        (Some(Channel::Push), _) => &[
            "installation.installationId",
            "pushRegistrationId",
            "platform",
            "person.externalUserId",
        ],
        (Some(Channel::Email), _) => &[
            "person.personId",
            "externalUserId",
            "emails",
            "firstName",
            "preferredLanguage",
        ],
        (Some(Channel::Sms), _) => &[
            "person.personId",
            "externalUserId",
            "phones",
            "firstName",
            "preferredLanguage",
        ],
        (None, Target::Installations) => &[
            "installation.installationId",
            "pushRegistrationId",
            "platform",
            "state",
            "person.personId",
            "person.externalUserId",
        ],
        (None, Target::Persons) => &["person.personId", "externalUserId", "identified", "country"],
    }
}

/// The output columns `names` (the target's defaults when empty). A name that is no attribute,
/// or an installation attribute in a persons audience, is the user's mistake.
pub fn resolve(
    catalog: &Catalog,
    names: &[String],
    target: Target,
    channel: Option<Channel>,
) -> Result<Vec<OutputColumn>> {
    let names: Vec<String> = if names.is_empty() {
        defaults(target, channel)
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        names.to_vec()
    };
    let mut out: Vec<OutputColumn> = Vec::new();
    for name in names {
        let name = name.trim();
        let derived = [
            ("age", DerivedColumn::Age),
            ("randomBucket", DerivedColumn::RandomBucket),
        ]
        .into_iter()
        .find(|(n, _)| same(n, name));
        if let Some((canonical, d)) = derived {
            out.push(OutputColumn {
                entity: Entity::Person,
                column: String::new(),
                name: canonical.to_string(),
                derived: Some(d),
            });
            continue;
        }
        let (entity, column, canonical) = resolve_attribute(name, catalog).ok_or_else(|| {
            Error::Invalid(format!(
                "unknown attribute `{name}` in the output columns (`audience info` lists them)"
            ))
        })?;
        if entity == Entity::Installation && target == Target::Persons {
            return Err(Error::Invalid(format!(
                "`{canonical}` is an installation attribute; a persons audience has person \
                 columns only"
            )));
        }
        let alias = if out.iter().any(|c| c.name == canonical) {
            format!("{entity}.{canonical}")
        } else {
            canonical
        };
        out.push(OutputColumn {
            entity,
            column,
            name: alias,
            derived: None,
        });
    }
    Ok(out)
}
