//! Channels an audience is exported for: each fixes the target and adds the condition that makes
//! a row reachable on it.

use crate::catalog::{Catalog, Entity};
use crate::check::typed::{Field, TPred, Value};
use crate::error::{Error, Result};
use crate::plan::Target;
use crate::syntax::ast::CmpOp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// Reachable installations: not uninstalled, push registration enabled.
    Push,
    /// Persons with an email address.
    Email,
    /// Persons with a phone number.
    Sms,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Channel::Push, Channel::Email, Channel::Sms];

    pub fn name(self) -> &'static str {
        match self {
            Channel::Push => "push",
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }

    /// The target a channel's audience is made of.
    pub fn target(self) -> Target {
        match self {
            Channel::Push => Target::Installations,
            Channel::Email | Channel::Sms => Target::Persons,
        }
    }

    /// The condition a row must meet to be reachable, as a typed predicate over the catalog.
    pub fn condition(self, catalog: &Catalog) -> Result<TPred> {
        let attr = |entity: Entity, name: &str| -> Result<Field> {
            let a = catalog.attribute(entity, name, false).ok_or_else(|| {
                Error::Internal(format!("the catalog lacks the standard attribute {name}"))
            })?;
            Ok(Field::Attribute {
                entity,
                name: a.name.clone(),
                column: a.column.clone(),
                ty: a.ty,
            })
        };
        Ok(match self {
            Channel::Push => TPred::And(vec![
                TPred::IsTrue(attr(Entity::Installation, "pushRegistrationEnabled")?),
                TPred::Not(Box::new(TPred::Compare {
                    field: attr(Entity::Installation, "state")?,
                    op: CmpOp::Eq,
                    value: Value::String("uninstalled".into()),
                })),
            ]),
            Channel::Email => TPred::IsSet(attr(Entity::Person, "emails")?),
            Channel::Sms => TPred::IsSet(attr(Entity::Person, "phones")?),
        })
    }

    /// Why a matching row is not reachable on this channel.
    pub fn unreachable(self) -> &'static str {
        match self {
            Channel::Push => "not reachable by push (push registration disabled, or uninstalled)",
            Channel::Email => "no email address",
            Channel::Sms => "no phone number",
        }
    }

    /// The column a channel's list is for, which its exports always carry.
    pub fn address_column(self) -> &'static str {
        match self {
            Channel::Push => "pushRegistrationId",
            Channel::Email => "emails",
            Channel::Sms => "phones",
        }
    }
}
