//! The column mapping of a plain table: which source column plays which part.
//!
//! A mapping comes from a small JSON file ([`Mapping::load`]), from command-line flags, or both
//! ([`Mapping::merge`]: flags win). Every field is optional; with none, a table in the documented
//! snapshot schema (camelCase or snake_case headers) is read as it is. [`plan`] resolves a
//! mapping against one file's header, before any row is read, so that a mistake in it (a column
//! the file lacks, an unknown type, two columns for one attribute) is an error naming the file
//! and the column, not a reject on every row.
//!
//! ```json
//! {
//!   "person_id": "user_id",
//!   "event": "event",
//!   "time": "timestamp",
//!   "person_columns": ["platform", "acquisition_channel=acquisitionChannel:string"],
//!   "property_columns": ["price:number", {"column": "a=b", "as": "ab", "type": "string"}],
//!   "ignore_columns": ["session_id"]
//! }
//! ```
//!
//! Rules (README, "Importing plain tables"):
//!
//! * **Roles.** `person_id` (the person's externalUserId), `anonymous_id`, `device_id`,
//!   `push_token`, `event`, `time`, `message_id` (the de-duplication key) and `created_at` name
//!   one column each. Unnamed roles take the first header that matches, ignoring case, spaces,
//!   `_` and `-`, one of:
//!   person id `externalUserId`, `userId`; anonymous id `anonymousId`; device id `deviceId`,
//!   `pushRegistrationId`, `installationId`; push token `pushToken`, `pushRegistrationId`;
//!   event `event`, `eventName`; message id `messageId`, `eventId`; time, in an events table
//!   `eventTime`, `timestamp`, `time`, in a persons table `modifiedAt`, `updatedAt`, `timestamp`,
//!   `time`, `createdAt`, in an installations table `installedAt`, `updatedAt`, `timestamp`,
//!   `time`. Message id defaults apply to events tables only. An event column (named by the
//!   mapping or matching an event default) in a persons or installations table is an error,
//!   since events are read from events tables, unless the mapping ignores it or lists it as an
//!   attribute.
//! * **Attributes and properties.** `person_columns`, `installation_columns` and
//!   `property_columns` list columns as `source`, `source=name`, `source:type` or
//!   `source=name:type` (types: number, string, boolean, date, timestamp, list), or as
//!   `{"column", "as", "type"}` objects for names holding `=`, `:` or `,`. A name that is a
//!   standard attribute (matched like a role: `first_name` is `firstName`) fills that attribute
//!   and has its type; any other name is a custom attribute or a property, kept as written.
//! * **Nothing dropped silently.** A column that no role or list names goes, in an events table,
//!   to the event's properties; in a persons table to the person's attributes; in an
//!   installations table to the installation's, standard or custom by its name, except that
//!   a standard person attribute (`first_name`, `email`, ...; not `createdAt`, which there is
//!   more likely the installation's) goes to the row's person, by an identify. A column used
//!   by a role is not also an attribute, except a persons table's `createdAt`, which is both
//!   the row's time (when the table has no later one) and the person's createdAt. In a persons
//!   or installations table, an unlisted `custom_favorite_team` (or `customFavoriteTeam`) column
//!   is the custom attribute `favoriteTeam`, as the snapshot stores it.
//! * **Derived columns are ignored** unless a list names them, because the import derives them
//!   itself: in every table `*__sort`, `*__len`, `personId` and `installationId` (unless it is
//!   the device id); in a persons table `identified` and `modifiedAt` (the row's time); in an
//!   installations table `state`, `pushRegistrationEnabled`, `primaryDevice`, `installedAt`
//!   (the row's time), `lastSeenAt` and `uninstalledAt`. `pushRegistrationEnabled` is still
//!   read for one thing: a row where it is false has no push token, since the snapshot writes
//!   the device id as the pushRegistrationId of a device without one. `ignore_columns` leaves
//!   out any other column.
//! * Mapping a derived attribute (`state`, `primaryDevice`, ...) or an identity
//!   (`externalUserId`, `pushRegistrationId`) as an attribute is an error: derived ones cannot
//!   be imported, identities have their roles.

use super::Kind;
use crate::error::{Error, Result};
use crate::import::profile::ValueType;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// A type a mapping gives a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    Number,
    String,
    Boolean,
    Date,
    Timestamp,
    /// A list of strings: `a;b;c` or a JSON array in text.
    List,
}

impl ColumnType {
    pub const ALL: [ColumnType; 6] = [
        ColumnType::Number,
        ColumnType::String,
        ColumnType::Boolean,
        ColumnType::Date,
        ColumnType::Timestamp,
        ColumnType::List,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ColumnType::Number => "number",
            ColumnType::String => "string",
            ColumnType::Boolean => "boolean",
            ColumnType::Date => "date",
            ColumnType::Timestamp => "timestamp",
            ColumnType::List => "list",
        }
    }

    pub fn parse(name: &str) -> Option<ColumnType> {
        ColumnType::ALL.into_iter().find(|t| t.name() == name)
    }

    pub fn value_type(self) -> ValueType {
        match self {
            ColumnType::Number => ValueType::Number,
            ColumnType::String => ValueType::String,
            ColumnType::Boolean => ValueType::Boolean,
            ColumnType::Date => ValueType::Date,
            ColumnType::Timestamp => ValueType::Timestamp,
            ColumnType::List => ValueType::StringList,
        }
    }
}

/// One listed column: its source name, the name it takes, and its type if given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSpec {
    pub column: String,
    /// The attribute or property name; the column's own name when absent.
    pub name: Option<String>,
    /// Inferred (text) or taken from the file (Parquet) when absent.
    pub ty: Option<ColumnType>,
}

impl ColumnSpec {
    pub fn new(column: &str) -> ColumnSpec {
        ColumnSpec {
            column: column.to_string(),
            name: None,
            ty: None,
        }
    }

    /// The name the column's values take.
    pub fn target(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.column)
    }

    /// `a,b=c,d:number` (the form of a flag's value), each item as [`ColumnSpec::from_str`].
    pub fn parse_list(list: &str) -> Result<Vec<ColumnSpec>, String> {
        list.split(',')
            .filter(|s| !s.trim().is_empty())
            .map(str::parse)
            .collect()
    }
}

impl FromStr for ColumnSpec {
    type Err = String;

    /// `source`, `source=name`, `source:type` or `source=name:type`. A `:` always starts a
    /// type, so a misspelt type is an error rather than part of a column name.
    fn from_str(spec: &str) -> Result<ColumnSpec, String> {
        let spec = spec.trim();
        let (rest, ty) = match spec.rsplit_once(':') {
            Some((rest, ty)) => {
                let parsed = ColumnType::parse(ty.trim()).ok_or_else(|| {
                    format!(
                        "unknown type `{ty}` in `{spec}` (expected number, string, boolean, \
                         date, timestamp or list)"
                    )
                })?;
                (rest, Some(parsed))
            }
            None => (spec, None),
        };
        let (column, name) = match rest.split_once('=') {
            Some((column, name)) => (column.trim(), Some(name.trim())),
            None => (rest.trim(), None),
        };
        if column.is_empty() || name.is_some_and(str::is_empty) {
            return Err(format!(
                "`{spec}` names no column (expected `column`, `column=name`, `column:type` or \
                 `column=name:type`)"
            ));
        }
        Ok(ColumnSpec {
            column: column.to_string(),
            name: name.map(str::to_string),
            ty,
        })
    }
}

impl<'de> Deserialize<'de> for ColumnSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ColumnSpec, D::Error> {
        struct Spec;
        impl<'de> Visitor<'de> for Spec {
            type Value = ColumnSpec;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`column[=name][:type]` or {\"column\", \"as\", \"type\"}")
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<ColumnSpec, E> {
                s.parse().map_err(E::custom)
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ColumnSpec, A::Error> {
                #[derive(Deserialize)]
                #[serde(deny_unknown_fields)]
                struct Full {
                    column: String,
                    #[serde(default, rename = "as")]
                    name: Option<String>,
                    #[serde(default, rename = "type")]
                    ty: Option<ColumnType>,
                }
                let full = Full::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(ColumnSpec {
                    column: full.column,
                    name: full.name,
                    ty: full.ty,
                })
            }
        }
        d.deserialize_any(Spec)
    }
}

/// Which source column plays which part (see the module documentation).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    pub person_id: Option<String>,
    pub anonymous_id: Option<String>,
    pub device_id: Option<String>,
    pub push_token: Option<String>,
    pub event: Option<String>,
    pub time: Option<String>,
    pub message_id: Option<String>,
    /// The person's createdAt: the same as listing `column=createdAt` among person columns.
    pub created_at: Option<String>,
    #[serde(default)]
    pub person_columns: Vec<ColumnSpec>,
    #[serde(default)]
    pub installation_columns: Vec<ColumnSpec>,
    #[serde(default)]
    pub property_columns: Vec<ColumnSpec>,
    #[serde(default)]
    pub ignore_columns: Vec<String>,
    /// The time (µs UTC) of person and installation rows without one: the caller sets it (the
    /// import's start time); a mapping file cannot. Events always need their own time.
    #[serde(skip)]
    pub default_time: Option<i64>,
}

impl Mapping {
    /// Reads a mapping file.
    pub fn load(path: &Path) -> Result<Mapping> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Mapping::from_json(&path.display().to_string(), &text)
    }

    /// Parses a mapping; `name` is how errors name it.
    pub fn from_json(name: &str, text: &str) -> Result<Mapping> {
        serde_json::from_str(text)
            .map_err(|e| Error::Invalid(format!("{name}: not a valid column mapping: {e}")))
    }

    /// Adds `flags` to this mapping (a file's): the roles they name replace the file's, the
    /// columns they list replace the file's entries for the same column in the same list and
    /// add the others.
    pub fn merge(&mut self, flags: Mapping) {
        fn role(mine: &mut Option<String>, theirs: Option<String>) {
            if theirs.is_some() {
                *mine = theirs;
            }
        }
        fn list(mine: &mut Vec<ColumnSpec>, theirs: Vec<ColumnSpec>) {
            for spec in theirs {
                mine.retain(|s| s.column != spec.column);
                mine.push(spec);
            }
        }
        role(&mut self.person_id, flags.person_id);
        role(&mut self.anonymous_id, flags.anonymous_id);
        role(&mut self.device_id, flags.device_id);
        role(&mut self.push_token, flags.push_token);
        role(&mut self.event, flags.event);
        role(&mut self.time, flags.time);
        role(&mut self.message_id, flags.message_id);
        role(&mut self.created_at, flags.created_at);
        list(&mut self.person_columns, flags.person_columns);
        list(&mut self.installation_columns, flags.installation_columns);
        list(&mut self.property_columns, flags.property_columns);
        for c in flags.ignore_columns {
            if !self.ignore_columns.contains(&c) {
                self.ignore_columns.push(c);
            }
        }
        if flags.default_time.is_some() {
            self.default_time = flags.default_time;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Standard names
// ---------------------------------------------------------------------------------------------

/// A standard field of `Traits` / `Attributes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PersonField {
    FirstName,
    LastName,
    Gender,
    BirthDate,
    Country,
    City,
    PreferredLanguage,
    Emails,
    Phones,
    Tags,
    CreatedAt,
}

/// A standard field of `DeviceData`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeviceField {
    Platform,
    SdkVersion,
    OsVersion,
    DeviceManufacturer,
    DeviceModel,
    ApplicationVersion,
    OsLanguage,
    RegistrationsEnabled,
    NotificationsEnabled,
    GeofencingEnabled,
    DeviceSecure,
}

use ValueType as T;

/// Normalized spelling → field, with the field's type (the catalog's; versions are strings).
/// `email`, `phone` and `birthday` are the singular spellings exports use.
const PERSON_FIELDS: [(&str, PersonField, ValueType); 14] = [
    ("firstname", PersonField::FirstName, T::String),
    ("lastname", PersonField::LastName, T::String),
    ("gender", PersonField::Gender, T::String),
    ("birthdate", PersonField::BirthDate, T::Date),
    ("birthday", PersonField::BirthDate, T::Date),
    ("country", PersonField::Country, T::String),
    ("city", PersonField::City, T::String),
    (
        "preferredlanguage",
        PersonField::PreferredLanguage,
        T::String,
    ),
    ("emails", PersonField::Emails, T::StringList),
    ("email", PersonField::Emails, T::StringList),
    ("phones", PersonField::Phones, T::StringList),
    ("phone", PersonField::Phones, T::StringList),
    ("tags", PersonField::Tags, T::StringList),
    ("createdat", PersonField::CreatedAt, T::Timestamp),
];

const DEVICE_FIELDS: [(&str, DeviceField, ValueType); 12] = [
    ("platform", DeviceField::Platform, T::String),
    ("sdkversion", DeviceField::SdkVersion, T::String),
    ("osversion", DeviceField::OsVersion, T::String),
    (
        "devicemanufacturer",
        DeviceField::DeviceManufacturer,
        T::String,
    ),
    ("devicemodel", DeviceField::DeviceModel, T::String),
    (
        "applicationversion",
        DeviceField::ApplicationVersion,
        T::String,
    ),
    ("appversion", DeviceField::ApplicationVersion, T::String),
    ("oslanguage", DeviceField::OsLanguage, T::String),
    (
        "registrationsenabled",
        DeviceField::RegistrationsEnabled,
        T::Boolean,
    ),
    (
        "notificationsenabled",
        DeviceField::NotificationsEnabled,
        T::Boolean,
    ),
    (
        "geofencingenabled",
        DeviceField::GeofencingEnabled,
        T::Boolean,
    ),
    ("devicesecure", DeviceField::DeviceSecure, T::Boolean),
];

/// Standard attributes the import derives (or that are identities with a role of their own).
const PERSON_DERIVED: [&str; 4] = ["personid", "identified", "modifiedat", "externaluserid"];
const DEVICE_DERIVED: [&str; 8] = [
    "installationid",
    "state",
    "pushregistrationenabled",
    "primarydevice",
    "installedat",
    "lastseenat",
    "uninstalledat",
    "pushregistrationid",
];

/// Columns ignored when no list names them (normalized), besides `*__sort` and `*__len`.
const IGNORED_EVERYWHERE: [&str; 2] = ["personid", "installationid"];
const IGNORED_PERSONS: [&str; 2] = ["identified", "modifiedat"];
const IGNORED_INSTALLATIONS: [&str; 6] = [
    "state",
    "pushregistrationenabled",
    "primarydevice",
    "installedat",
    "lastseenat",
    "uninstalledat",
];

const PERSON_ID: [&str; 2] = ["externaluserid", "userid"];
const ANONYMOUS_ID: [&str; 1] = ["anonymousid"];
const DEVICE_ID: [&str; 3] = ["deviceid", "pushregistrationid", "installationid"];
const PUSH_TOKEN: [&str; 2] = ["pushtoken", "pushregistrationid"];
const EVENT: [&str; 2] = ["event", "eventname"];
const MESSAGE_ID: [&str; 2] = ["messageid", "eventid"];
const EVENT_TIME: [&str; 3] = ["eventtime", "timestamp", "time"];
const PERSON_TIME: [&str; 5] = ["modifiedat", "updatedat", "timestamp", "time", "createdat"];
const INSTALLATION_TIME: [&str; 4] = ["installedat", "updatedat", "timestamp", "time"];

/// A name as name matching compares it: case, spaces, `_` and `-` ignored (the rule of
/// `catalog::names`, so `first_name` is `firstName`).
pub(crate) fn normalize(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-'))
        .flat_map(char::to_lowercase)
        .collect()
}

fn person_field(name: &str) -> Option<(PersonField, ValueType)> {
    let n = normalize(name);
    PERSON_FIELDS
        .iter()
        .find(|(s, ..)| *s == n)
        .map(|&(_, f, t)| (f, t))
}

fn device_field(name: &str) -> Option<(DeviceField, ValueType)> {
    let n = normalize(name);
    DEVICE_FIELDS
        .iter()
        .find(|(s, ..)| *s == n)
        .map(|&(_, f, t)| (f, t))
}

/// The first header (by `candidates`' priority, then header order) that matches a candidate.
fn find_default(headers: &[String], candidates: &[&str]) -> Option<usize> {
    let normalized: Vec<String> = headers.iter().map(|h| normalize(h)).collect();
    candidates
        .iter()
        .find_map(|c| normalized.iter().position(|h| h == c))
}

/// The kind a header suggests: an event column makes an events table; a device id or push
/// registration id without one an installations table; else a person id a persons table. An
/// `eventTime` without an event name (an event file of a snapshot, whose event is its
/// partition) is left unclear.
pub(crate) fn detect(headers: &[String]) -> Option<Kind> {
    if find_default(headers, &EVENT).is_some() {
        Some(Kind::Events)
    } else if find_default(headers, &["eventtime"]).is_some() {
        None
    } else if find_default(headers, &DEVICE_ID).is_some() {
        Some(Kind::Installations)
    } else if find_default(headers, &PERSON_ID).is_some() {
        Some(Kind::Persons)
    } else {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// Plans: a mapping resolved against one file's header
// ---------------------------------------------------------------------------------------------

/// Where a column's values go.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Target {
    Person(PersonField),
    PersonCustom(String),
    Device(DeviceField),
    DeviceCustom(String),
    Property(String),
}

impl Target {
    /// For messages: `person attribute `firstName``.
    fn describe(&self, column: &str) -> String {
        match self {
            Target::Person(_) | Target::PersonCustom(_) => format!("person attribute `{column}`"),
            Target::Device(_) | Target::DeviceCustom(_) => {
                format!("installation attribute `{column}`")
            }
            Target::Property(_) => format!("event property `{column}`"),
        }
    }
}

/// How a field's type was decided, for reject messages and parsing leniency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TypeOrigin {
    /// Given by the mapping.
    Mapping,
    /// The standard attribute's.
    Standard,
    /// Inferred from the first rows of text.
    Inferred,
    /// Carried by the file (a typed Parquet column).
    Source,
}

/// One column feeding an attribute or a property.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FieldPlan {
    pub column: usize,
    pub target: Target,
    /// Fixed by the mapping or the standard attribute; None: inferred or the file's.
    pub ty: Option<(ValueType, TypeOrigin)>,
}

/// A mapping resolved against a header: column indices for the roles, and the fields.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    pub kind: Kind,
    pub headers: Vec<String>,
    pub person_id: Option<usize>,
    pub anonymous_id: Option<usize>,
    pub device_id: Option<usize>,
    pub token: Option<usize>,
    /// The snapshot's `push_registration_enabled`: false means "no token" (see the module doc).
    pub push_enabled: Option<usize>,
    pub event: Option<usize>,
    pub time: Option<usize>,
    pub message_id: Option<usize>,
    pub fields: Vec<FieldPlan>,
    pub default_time: Option<i64>,
    /// Columns left out (by `ignore_columns` or as derived), in header order.
    pub ignored: Vec<usize>,
}

impl Plan {
    /// Every column a row is read from, sorted.
    pub fn used_columns(&self) -> Vec<usize> {
        let mut used: Vec<usize> = [
            self.person_id,
            self.anonymous_id,
            self.device_id,
            self.token,
            self.push_enabled,
            self.event,
            self.time,
            self.message_id,
        ]
        .into_iter()
        .flatten()
        .chain(self.fields.iter().map(|f| f.column))
        .collect();
        used.sort_unstable();
        used.dedup();
        used
    }

    /// Column `i`'s header name.
    pub fn name(&self, column: usize) -> &str {
        self.headers.get(column).map_or("?", String::as_str)
    }
}

/// Resolves `mapping` against `headers` for a table of `kind`; `file` names the file in errors.
pub(crate) fn plan(file: &str, headers: &[String], kind: Kind, mapping: &Mapping) -> Result<Plan> {
    let invalid = |msg: String| Error::Invalid(format!("{file}: {msg}"));
    if !kind.is_table() {
        return Err(invalid(format!("a {kind} source is not a table")));
    }
    if headers.is_empty() {
        return Err(invalid("the file has no header".into()));
    }
    for (i, h) in headers.iter().enumerate() {
        if h.trim().is_empty() {
            return Err(invalid(format!(
                "column {} has no name in the header; every column needs one",
                i + 1
            )));
        }
        if headers[..i].contains(h) {
            return Err(invalid(format!("column `{h}` appears twice in the header")));
        }
    }
    let find = |column: &str, what: &str| -> Result<usize> {
        headers.iter().position(|h| h == column).ok_or_else(|| {
            const SHOWN: usize = 20;
            let mut list = headers[..headers.len().min(SHOWN)].join(", ");
            if headers.len() > SHOWN {
                list.push_str(", ...");
            }
            invalid(format!(
                "the mapping's {what} is column `{column}`, which the file does not have \
                 (its columns: {list})"
            ))
        })
    };
    let mut ignored = Vec::new();
    for c in &mapping.ignore_columns {
        ignored.push(find(c, "ignored column")?);
    }
    let role = |given: &Option<String>, what: &str, defaults: &[&str]| -> Result<Option<usize>> {
        match given {
            Some(c) => {
                let i = find(c, what)?;
                if ignored.contains(&i) {
                    return Err(invalid(format!(
                        "column `{c}` is both ignored and the {what}"
                    )));
                }
                Ok(Some(i))
            }
            None => Ok(find_default(headers, defaults).filter(|i| !ignored.contains(i))),
        }
    };
    let events = kind == Kind::Events;
    let person_id = role(&mapping.person_id, "person id", &PERSON_ID)?;
    let anonymous_id = role(&mapping.anonymous_id, "anonymous id", &ANONYMOUS_ID)?;
    let device_id = role(&mapping.device_id, "device id", &DEVICE_ID)?;
    // A push token is a device's: without a device id column there is none to look for.
    let token = if device_id.is_some() || mapping.push_token.is_some() {
        role(&mapping.push_token, "push token", &PUSH_TOKEN)?
    } else {
        None
    };
    // In other tables an event column is an error below, unless the mapping lists it as an
    // attribute (or ignores it, which `role` heeds).
    let listed_as_attribute = |c: usize| {
        mapping
            .person_columns
            .iter()
            .chain(&mapping.installation_columns)
            .any(|s| s.column == headers[c])
    };
    let event = match role(&mapping.event, "event", &EVENT)? {
        Some(c) if !events && mapping.event.is_none() && listed_as_attribute(c) => None,
        found => found,
    };
    let message_id = role(
        &mapping.message_id,
        "message id",
        if events { &MESSAGE_ID } else { &[] },
    )?;
    let time_defaults: &[&str] = match kind {
        Kind::Persons => &PERSON_TIME,
        Kind::Installations => &INSTALLATION_TIME,
        _ => &EVENT_TIME,
    };
    let time = role(&mapping.time, "time", time_defaults)?;
    let push_enabled = token.and_then(|_| {
        find_default(headers, &["pushregistrationenabled"]).filter(|i| !ignored.contains(i))
    });

    // What each kind needs, said before a row is read.
    let table = match kind {
        Kind::Persons => "a persons table",
        Kind::Installations => "an installations table",
        _ => "an events table",
    };
    let missing = |what: &str, flag: &str| {
        let a = if what.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        invalid(format!(
            "{table} needs {a} {what} column; none of the header's columns is one \
             (name it with the mapping's `{flag}`)"
        ))
    };
    match kind {
        Kind::Persons if person_id.is_none() => return Err(missing("person id", "person_id")),
        Kind::Installations if device_id.is_none() => {
            return Err(missing("device id", "device_id"))
        }
        Kind::Events if event.is_none() => return Err(missing("event name", "event")),
        Kind::Events if time.is_none() => return Err(missing("event time", "time")),
        Kind::Events if person_id.or(anonymous_id).or(device_id).is_none() => {
            return Err(missing("person id, anonymous id or device id", "person_id"))
        }
        _ => {}
    }
    if token.is_some() && device_id.is_none() {
        return Err(missing("device id", "device_id"));
    }
    if !events && event.is_some() {
        return Err(invalid(format!(
            "an event column in {table} (events are read from events tables)"
        )));
    }

    let mut fields: Vec<FieldPlan> = Vec::new();
    let mut listed = vec![false; headers.len()];
    let mut explicit = |spec: &ColumnSpec, list: List| -> Result<()> {
        let column = find(&spec.column, list.what())?;
        if ignored.contains(&column) {
            return Err(invalid(format!(
                "column `{}` is both ignored and listed as {}",
                spec.column,
                list.what()
            )));
        }
        listed[column] = true;
        let ty = spec.ty.map(|t| (t.value_type(), TypeOrigin::Mapping));
        let field = list
            .resolve(spec.target(), ty)
            .map_err(|e| invalid(format!("column `{}`: {e}", spec.column)))?;
        fields.push(FieldPlan { column, ..field });
        Ok(())
    };
    for spec in &mapping.person_columns {
        explicit(spec, List::Person)?;
    }
    if let Some(c) = &mapping.created_at {
        explicit(
            &ColumnSpec {
                column: c.clone(),
                name: Some("createdAt".into()),
                ty: None,
            },
            List::Person,
        )?;
    }
    for spec in &mapping.installation_columns {
        explicit(spec, List::Installation)?;
    }
    for spec in &mapping.property_columns {
        if !events {
            return Err(invalid(format!(
                "column `{}` is listed as an event property, but this is a {kind} table",
                spec.column
            )));
        }
        explicit(spec, List::Property)?;
    }
    // After the lists, so that a list that does not fit the kind is said first.
    if !events && time.is_none() && mapping.default_time.is_none() {
        return Err(missing("time", "time"));
    }
    if device_id.is_none()
        && fields
            .iter()
            .any(|f| matches!(f.target, Target::Device(_) | Target::DeviceCustom(_)))
    {
        return Err(missing("device id", "device_id"));
    }

    // Every other column: its kind's default, or ignored as derived.
    let roles = [
        person_id,
        anonymous_id,
        device_id,
        token,
        event,
        time,
        message_id,
    ];
    for (column, header) in headers.iter().enumerate() {
        if listed[column] || ignored.contains(&column) || Some(column) == push_enabled {
            continue;
        }
        let n = normalize(header);
        let derived = header.ends_with("__sort")
            || header.ends_with("__len")
            || IGNORED_EVERYWHERE.contains(&n.as_str())
            || match kind {
                Kind::Persons => IGNORED_PERSONS.contains(&n.as_str()),
                Kind::Installations => IGNORED_INSTALLATIONS.contains(&n.as_str()),
                _ => false,
            };
        let is_role = roles.contains(&Some(column));
        // A persons table's createdAt is its row time and its createdAt both.
        let both = kind == Kind::Persons && person_field(header).is_some();
        if is_role && !both {
            continue;
        }
        if derived {
            ignored.push(column);
            continue;
        }
        let list = match kind {
            Kind::Persons => List::Person,
            Kind::Installations => List::Installation,
            _ => List::Property,
        };
        let field = match (kind, snapshot_custom(header)) {
            (Kind::Persons, Some(name)) => FieldPlan {
                column,
                target: Target::PersonCustom(name),
                ty: None,
            },
            (Kind::Installations, Some(name)) => FieldPlan {
                column,
                target: Target::DeviceCustom(name),
                ty: None,
            },
            // A standard person attribute in an installations table is the row's person's.
            (Kind::Installations, None)
                if device_field(header).is_none()
                    && person_field(header).is_some_and(|(f, _)| f != PersonField::CreatedAt) =>
            {
                List::Person
                    .resolve(header, None)
                    .map_err(|e| invalid(format!("column `{header}`: {e}")))?
            }
            _ => list
                .resolve(header, None)
                .map_err(|e| invalid(format!("column `{header}`: {e}")))?,
        };
        fields.push(FieldPlan { column, ..field });
    }
    ignored.sort_unstable();
    ignored.dedup();

    // Two columns for one attribute would overwrite each other row by row.
    for (i, a) in fields.iter().enumerate() {
        if let Some(b) = fields[..i]
            .iter()
            .find(|b| same_target(&a.target, &b.target))
        {
            return Err(invalid(format!(
                "columns `{}` and `{}` both give {}",
                headers[b.column],
                headers[a.column],
                a.target
                    .describe(&target_name(&a.target, &headers[a.column]))
            )));
        }
    }
    Ok(Plan {
        kind,
        headers: headers.to_vec(),
        person_id,
        anonymous_id,
        device_id,
        token,
        push_enabled,
        event,
        time,
        message_id,
        fields,
        default_time: mapping.default_time,
        ignored,
    })
}

/// Which list a column is in.
#[derive(Clone, Copy)]
enum List {
    Person,
    Installation,
    Property,
}

impl List {
    fn what(self) -> &'static str {
        match self {
            List::Person => "a person attribute",
            List::Installation => "an installation attribute",
            List::Property => "an event property",
        }
    }

    /// The field a name means in this list, with its type (checked against a standard one).
    fn resolve(self, name: &str, ty: Option<(ValueType, TypeOrigin)>) -> Result<FieldPlan, String> {
        let standard = |std_ty: ValueType, what: &str| match ty {
            Some((t, _)) if t != std_ty => Err(format!(
                "{what} `{name}` is a standard attribute of type {std_ty}, not {t}"
            )),
            _ => Ok(Some((std_ty, TypeOrigin::Standard))),
        };
        let n = normalize(name);
        let (target, ty) = match self {
            List::Person => {
                if PERSON_DERIVED.contains(&n.as_str()) {
                    return Err(derived_error(name, "person"));
                }
                match person_field(name) {
                    Some((f, t)) => (Target::Person(f), standard(t, "person attribute")?),
                    None => (Target::PersonCustom(name.to_string()), ty),
                }
            }
            List::Installation => {
                if DEVICE_DERIVED.contains(&n.as_str()) {
                    return Err(derived_error(name, "installation"));
                }
                match device_field(name) {
                    Some((f, t)) => (Target::Device(f), standard(t, "installation attribute")?),
                    None => (Target::DeviceCustom(name.to_string()), ty),
                }
            }
            List::Property => {
                if matches!(ty, Some((ValueType::StringList, _))) {
                    return Err(format!("event property `{name}` cannot be a list"));
                }
                (Target::Property(name.to_string()), ty)
            }
        };
        Ok(FieldPlan {
            column: 0,
            target,
            ty,
        })
    }
}

fn derived_error(name: &str, entity: &str) -> String {
    match normalize(name).as_str() {
        "externaluserid" => "externalUserId is the person id: map it with `person_id`".into(),
        "pushregistrationid" => {
            "pushRegistrationId is the push token: map it with `push_token`".into()
        }
        _ => format!(
            "{entity} attribute `{name}` is derived by the import and cannot be imported \
             (rename the column to import it as a custom attribute: `column=name`)"
        ),
    }
}

/// The custom attribute a snapshot's column stores: `custom_favorite_team` (or
/// `customFavoriteTeam`) is `favoriteTeam`, so that a snapshot's table names its attributes as
/// the catalog does.
fn snapshot_custom(header: &str) -> Option<String> {
    let rest = header.strip_prefix("custom_").or_else(|| {
        header
            .strip_prefix("custom")
            .filter(|r| r.starts_with(|c: char| c.is_ascii_uppercase()))
    })?;
    let mut name = String::with_capacity(rest.len());
    for (i, part) in rest.split('_').filter(|p| !p.is_empty()).enumerate() {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            if i == 0 {
                name.extend(first.to_lowercase());
            } else {
                name.extend(first.to_uppercase());
            }
            name.push_str(chars.as_str());
        }
    }
    (!name.is_empty()).then_some(name)
}

fn same_target(a: &Target, b: &Target) -> bool {
    match (a, b) {
        (Target::Person(x), Target::Person(y)) => x == y,
        (Target::Device(x), Target::Device(y)) => x == y,
        (Target::PersonCustom(x), Target::PersonCustom(y))
        | (Target::DeviceCustom(x), Target::DeviceCustom(y))
        | (Target::Property(x), Target::Property(y)) => normalize(x) == normalize(y),
        _ => false,
    }
}

fn target_name(t: &Target, column: &str) -> String {
    match t {
        Target::PersonCustom(n) | Target::DeviceCustom(n) | Target::Property(n) => n.clone(),
        _ => column.to_string(),
    }
}
