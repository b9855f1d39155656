//! The catalog: what a snapshot contains, in the vocabulary of mobile audience profiling.
//!
//! It names every person and installation attribute (standard and custom) with its type, and every
//! event definition with its typed properties. The snapshot manifest stores it; the segment checker
//! resolves names against it; the store derives Arrow schemas from it. It owns the one rule by
//! which a name as written matches a declared one ([`names`]). It depends on nothing but `base`
//! and serde, so the language front end can be built and tested on its own.

pub mod names;

pub use crate::base::version::VersionKey;
use names::same;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The value types of the segment language and of catalog columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueType {
    String,
    Number,
    Boolean,
    Date,
    Timestamp,
    /// A dotted version string ("17.2.1") that compares numerically, part by part.
    Version,
    /// `list<string>`: emails, phones, tags.
    StringList,
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValueType::String => "string",
            ValueType::Number => "number",
            ValueType::Boolean => "boolean",
            ValueType::Date => "date",
            ValueType::Timestamp => "timestamp",
            ValueType::Version => "version",
            ValueType::StringList => "list<string>",
        })
    }
}

/// Which table an attribute lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Entity {
    Person,
    Installation,
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Entity::Person => "person",
            Entity::Installation => "installation",
        })
    }
}

/// One attribute (a column) of persons or installations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeDef {
    /// Canonical camelCase name used in segments (`pushRegistrationEnabled`).
    pub name: String,
    /// Column name in Parquet (`push_registration_enabled`, `custom_favorite_team`).
    pub column: String,
    #[serde(rename = "type")]
    pub ty: ValueType,
    /// Custom attributes are declared per app and addressed as `person.custom.name`.
    #[serde(default)]
    pub custom: bool,
    /// False for columns stored in the table that can never be null.
    #[serde(default = "yes")]
    pub nullable: bool,
    /// Other accepted spellings (`appVersion` for `applicationVersion`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// The table also stores `<column>__sort`, an order-preserving key of every non-null value of
    /// this version column (see `store::version_key`), in this layout, and comparisons read the
    /// key alone. Catalogs of older snapshots lack it; the planner then splits the text.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "sort_key_format"
    )]
    pub sort_key: Option<VersionKey>,
    /// The table also stores `<column>__len`, the item count of every list of this list column
    /// (null where the list is; see `store::derived`), and `is set` reads it alone. Catalogs of
    /// older snapshots lack it; the planner then measures the lists.
    #[serde(default, skip_serializing_if = "is_false")]
    pub length_column: bool,
    /// A string of few distinct values (`platform`, `country`), stored and read as an Arrow
    /// dictionary: a comparison then looks at each distinct value once, not at every row.
    /// Older catalogs lack it and read plain strings.
    #[serde(default, skip_serializing_if = "is_false")]
    pub dictionary: bool,
    /// The values the snapshot holds, with counts, for few-valued strings (see [`Values`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Values>,
}

/// The values a few-valued string takes in a snapshot, with their row counts, most frequent
/// first: for completion, `info`, and warnings about values the data never has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Values {
    /// Whether these are all the values (at most [`Values::MAX`] are kept).
    pub complete: bool,
    pub top: Vec<(String, u64)>,
}

impl Values {
    /// Values kept per attribute or property.
    pub const MAX: usize = 256;

    /// Whether `v` is one of them.
    pub fn contains(&self, v: &str) -> bool {
        self.top.iter().any(|(x, _)| x == v)
    }
}

/// `sort_key` in a manifest: `"int64"`; older manifests wrote `true` for decimal keys.
mod sort_key_format {
    use super::VersionKey;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Stored {
        Flag(bool),
        Layout(String),
    }

    pub fn serialize<S: Serializer>(key: &Option<VersionKey>, s: S) -> Result<S::Ok, S::Error> {
        match key {
            None => Stored::Flag(false),
            Some(VersionKey::Decimal) => Stored::Flag(true),
            Some(VersionKey::Int64) => Stored::Layout("int64".into()),
        }
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<VersionKey>, D::Error> {
        match Stored::deserialize(d)? {
            Stored::Flag(false) => Ok(None),
            Stored::Flag(true) => Ok(Some(VersionKey::Decimal)),
            Stored::Layout(l) if l == "int64" => Ok(Some(VersionKey::Int64)),
            Stored::Layout(l) => Err(serde::de::Error::custom(format!(
                "unknown version sort key layout `{l}` (expected \"int64\" or true)"
            ))),
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn yes() -> bool {
    true
}

/// A typed property of an event definition (`Purchase.amount: number`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PropertyDef {
    pub name: String,
    pub column: String,
    #[serde(rename = "type")]
    pub ty: ValueType,
    /// A string stored and read as an Arrow dictionary (see `AttributeDef::dictionary`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub dictionary: bool,
    /// The values the snapshot's events hold (see [`Values`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Values>,
}

/// An event definition: a standard lifecycle event or a custom event with typed properties.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventDef {
    /// Canonical name (`AppLaunch`, `Purchase`); also the `event=` partition value.
    pub name: String,
    #[serde(default)]
    pub standard: bool,
    #[serde(default)]
    pub properties: Vec<PropertyDef>,
}

impl EventDef {
    /// The property a name as written means (see [`names`]).
    pub fn property(&self, name: &str) -> Option<&PropertyDef> {
        self.properties.iter().find(|p| same(&p.name, name))
    }
}

/// Everything a snapshot declares: attributes of both entities and the event definitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    pub person: Vec<AttributeDef>,
    pub installation: Vec<AttributeDef>,
    pub events: Vec<EventDef>,
}

/// Columns every event file has, before the event's own properties.
pub const EVENT_TIME: &str = "event_time";
pub const PERSON_ID: &str = "person_id";
pub const INSTALLATION_ID: &str = "installation_id";
/// Hive partition column of the event history naming the event (the time partition column is
/// the manifest's `partitioning`).
pub const EVENT_PARTITION: &str = "event";

/// The five lifecycle events every snapshot has.
pub const STANDARD_EVENTS: [&str; 5] = [
    "Install",
    "Uninstall",
    "Personalize",
    "Depersonalize",
    "AppLaunch",
];

/// Installation lifecycle states, as stored in `installations.state`.
pub const STATES: [&str; 4] = ["anonymous", "personalized", "depersonalized", "uninstalled"];

impl Catalog {
    /// The standard attributes and events, with the given custom declarations added.
    pub fn with_custom(
        person_custom: &[(&str, ValueType)],
        installation_custom: &[(&str, ValueType)],
        custom_events: &[(&str, &[(&str, ValueType)])],
    ) -> Catalog {
        let custom = |list: &[(&str, ValueType)]| -> Vec<AttributeDef> {
            list.iter()
                .map(|(name, ty)| AttributeDef {
                    name: name.to_string(),
                    column: format!("custom_{}", snake_case(name)),
                    ty: *ty,
                    custom: true,
                    nullable: true,
                    aliases: vec![],
                    sort_key: (*ty == ValueType::Version).then_some(VersionKey::Int64),
                    length_column: *ty == ValueType::StringList,
                    // Apps declare custom strings mostly as enumerations (a theme, a team).
                    dictionary: *ty == ValueType::String,
                    values: None,
                })
                .collect()
        };
        let mut person = standard_person_attributes();
        person.extend(custom(person_custom));
        let mut installation = standard_installation_attributes();
        installation.extend(custom(installation_custom));
        let mut events: Vec<EventDef> = STANDARD_EVENTS
            .iter()
            .map(|n| EventDef {
                name: n.to_string(),
                standard: true,
                properties: vec![],
            })
            .collect();
        events.extend(custom_events.iter().map(|(name, props)| {
            EventDef {
                name: name.to_string(),
                standard: false,
                properties: props
                    .iter()
                    .map(|(p, ty)| PropertyDef {
                        name: p.to_string(),
                        column: snake_case(p),
                        ty: *ty,
                        // Like custom attributes: mostly enumerations (a category, a
                        // currency); one of many values (a SKU) still reads correctly.
                        dictionary: *ty == ValueType::String,
                        values: None,
                    })
                    .collect(),
            }
        }));
        Catalog {
            person,
            installation,
            events,
        }
    }

    /// The catalog the generator declares (and the committed sample uses).
    pub fn sample() -> Catalog {
        use ValueType::*;
        Catalog::with_custom(
            &[
                ("favoriteTeam", String),
                ("loyaltyPoints", Number),
                ("newsletter", Boolean),
                ("lastPurchaseDate", Date),
            ],
            &[("theme", String), ("pushOptInDate", Date)],
            &[
                (
                    "Purchase",
                    &[
                        ("amount", Number),
                        ("currency", String),
                        ("category", String),
                    ],
                ),
                ("AddToCart", &[("sku", String), ("price", Number)]),
                ("ViewProduct", &[("category", String)]),
            ],
        )
    }

    pub fn attributes(&self, entity: Entity) -> &[AttributeDef] {
        match entity {
            Entity::Person => &self.person,
            Entity::Installation => &self.installation,
        }
    }

    /// The attribute a name as written means, by name or alias (see [`names`]); `custom`
    /// selects the custom namespace.
    pub fn attribute(&self, entity: Entity, name: &str, custom: bool) -> Option<&AttributeDef> {
        self.attributes(entity).iter().find(|a| {
            a.custom == custom && (same(&a.name, name) || a.aliases.iter().any(|x| same(x, name)))
        })
    }

    /// The event definition a name as written means (see [`names`]).
    pub fn event(&self, name: &str) -> Option<&EventDef> {
        self.events.iter().find(|e| same(&e.name, name))
    }

    /// Checks the catalog's own consistency (as read from a manifest): unique names and columns.
    pub fn validate(&self) -> Result<(), String> {
        for entity in [Entity::Person, Entity::Installation] {
            let attrs = self.attributes(entity);
            for (i, a) in attrs.iter().enumerate() {
                if a.name.is_empty() || a.column.is_empty() {
                    return Err(format!(
                        "{entity} attribute #{i} has an empty name or column"
                    ));
                }
                if attrs[..i].iter().any(|b| b.column == a.column) {
                    return Err(format!("{entity} column `{}` is declared twice", a.column));
                }
                if attrs[..i]
                    .iter()
                    .any(|b| b.custom == a.custom && same(&b.name, &a.name))
                {
                    return Err(format!("{entity} attribute `{}` is declared twice", a.name));
                }
            }
        }
        for (i, e) in self.events.iter().enumerate() {
            if e.name.is_empty() || e.name.contains(['/', '=', '\\']) {
                return Err(format!(
                    "event name `{}` cannot be used as a partition value",
                    e.name
                ));
            }
            if self.events[..i].iter().any(|b| same(&b.name, &e.name)) {
                return Err(format!("event `{}` is declared twice", e.name));
            }
            for (j, p) in e.properties.iter().enumerate() {
                if [EVENT_TIME, PERSON_ID, INSTALLATION_ID].contains(&p.column.as_str())
                    || e.properties[..j].iter().any(|q| q.column == p.column)
                {
                    return Err(format!(
                        "event `{}` declares column `{}` twice",
                        e.name, p.column
                    ));
                }
                if p.ty == ValueType::StringList {
                    return Err(format!(
                        "event property `{}.{}` cannot be a list",
                        e.name, p.name
                    ));
                }
            }
        }
        Ok(())
    }
}

fn attr(name: &str, ty: ValueType, nullable: bool) -> AttributeDef {
    AttributeDef {
        name: name.to_string(),
        column: snake_case(name),
        ty,
        custom: false,
        nullable,
        aliases: vec![],
        sort_key: (ty == ValueType::Version).then_some(VersionKey::Int64),
        length_column: ty == ValueType::StringList,
        dictionary: ty == ValueType::String && FEW_VALUES.contains(&name),
        values: None,
    }
}

/// Standard string attributes with few distinct values (see `AttributeDef::dictionary`).
const FEW_VALUES: [&str; 9] = [
    "gender",
    "country",
    "city",
    "preferredLanguage",
    "state",
    "platform",
    "deviceManufacturer",
    "deviceModel",
    "osLanguage",
];

fn standard_person_attributes() -> Vec<AttributeDef> {
    use ValueType::*;
    vec![
        attr("personId", Number, false),
        attr("identified", Boolean, false),
        attr("externalUserId", String, true),
        attr("emails", StringList, true),
        attr("phones", StringList, true),
        attr("firstName", String, true),
        attr("lastName", String, true),
        attr("gender", String, true),
        attr("birthDate", Date, true),
        attr("country", String, true),
        attr("city", String, true),
        attr("preferredLanguage", String, true),
        attr("tags", StringList, true),
        attr("createdAt", Timestamp, false),
        attr("modifiedAt", Timestamp, false),
    ]
}

fn standard_installation_attributes() -> Vec<AttributeDef> {
    use ValueType::*;
    let mut app_version = attr("applicationVersion", Version, true);
    app_version.aliases = vec!["appVersion".into()];
    vec![
        attr("installationId", Number, false),
        attr("pushRegistrationId", String, false),
        attr("state", String, false),
        attr("platform", String, false),
        attr("sdkVersion", Version, true),
        attr("osVersion", Version, true),
        attr("deviceManufacturer", String, true),
        attr("deviceModel", String, true),
        app_version,
        attr("osLanguage", String, true),
        attr("pushRegistrationEnabled", Boolean, false),
        attr("registrationsEnabled", Boolean, false),
        attr("notificationsEnabled", Boolean, false),
        attr("geofencingEnabled", Boolean, false),
        attr("deviceSecure", Boolean, false),
        attr("primaryDevice", Boolean, false),
        attr("installedAt", Timestamp, false),
        attr("lastSeenAt", Timestamp, true),
        attr("uninstalledAt", Timestamp, true),
    ]
}

/// `pushRegistrationEnabled` -> `push_registration_enabled`.
pub fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c.is_alphanumeric() {
            out.push(c);
        } else {
            out.push('_');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_follows_parquet_naming() {
        assert_eq!(
            snake_case("pushRegistrationEnabled"),
            "push_registration_enabled"
        );
        assert_eq!(snake_case("externalUserId"), "external_user_id");
        assert_eq!(snake_case("theme"), "theme");
    }

    #[test]
    fn sample_catalog_is_valid_and_resolves_forgivingly() {
        let c = Catalog::sample();
        c.validate().unwrap();
        assert_eq!(
            c.attribute(Entity::Installation, "PRIMARYDEVICE", false)
                .unwrap()
                .name,
            "primaryDevice"
        );
        assert_eq!(
            c.attribute(Entity::Installation, "appversion", false)
                .unwrap()
                .name,
            "applicationVersion"
        );
        assert_eq!(
            c.attribute(Entity::Person, "favoriteteam", true)
                .unwrap()
                .column,
            "custom_favorite_team"
        );
        assert!(c.attribute(Entity::Person, "favoriteTeam", false).is_none());
        assert_eq!(
            c.event("purchase").unwrap().property("AMOUNT").unwrap().ty,
            ValueType::Number
        );
    }

    #[test]
    fn validate_rejects_duplicates() {
        let mut c = Catalog::sample();
        c.events.push(c.events[0].clone());
        assert!(c.validate().unwrap_err().contains("declared twice"));
    }
}
