//! The core of `audience import`: replays normalized calls into the persons, installations and
//! events of a snapshot, by the rules of mobile audience profiling.
//!
//! Sources (Segment-spec CDP streams, People exports, plain tables) are parsed elsewhere into
//! [`Call`]s sorted by (time, source order). Who a call belongs to is decided here and only here,
//! so every source gets the same lifecycle (README, "Data model"):
//!
//! * **Install → anonymous.** A device's first call creates its installation, linked to a fresh
//!   anonymous person (or to the anonymous person its anonymousId already names).
//! * **Personalize.** A userId on a device whose person is anonymous merges that person into the
//!   userId's person; its history, Install included, moves along.
//! * **Depersonalize.** A sign-out, or a call without a userId under an anonymousId that is not
//!   the device person's, moves the device to an anonymous person; history stays behind.
//! * **Merges** (personalize, alias, identity conflicts under [`ConflictPolicy::Merge`]) are
//!   union-find: an event keeps the person it was recorded for and is resolved to the surviving
//!   person once, in [`Replay::finish`]. A merge costs the loser's identities and devices, never
//!   its events.
//!
//! [`Replay::apply`] validates a call in full before changing anything, so a rejected call leaves
//! no trace. The replay is deterministic: the same state and calls give the same output.
//!
//! Where the profiling rules leave room, the replay decides:
//!
//! * Any call with a userId personalizes its device, not only an identify (Segment ties every
//!   call with a userId to the user). A device personalized to user A that calls as user B is
//!   depersonalized from A and personalized to B directly, with no anonymous person in between.
//! * A device's anonymousId "is the one it was personalized with" when it resolves to the
//!   device's person: anonymousIds follow their person through merges and are persisted with it
//!   ([`PersonRow::anonymous_ids`]), so this holds across imports too.
//! * An identify without a userId may give an anonymous person an email or phone: it is then
//!   identified (Infobip personalizes by email or phone too) and its devices are personalized.
//!   An email or phone held by someone else is a conflict as with a userId.
//! * A person known only by email or phone takes a userId nobody holds, rather than switching.
//! * Under [`ConflictPolicy::Merge`] the call's person survives, unless it is anonymous: then it
//!   merges into the identity's holder, as anonymous persons always merge into identified ones.
//! * `last_seen_at` moves only when the app runs: not for an Uninstall (a push provider's
//!   notice) nor for table rows, as in the generator. Any other call from an uninstalled device
//!   reactivates it (the app evidently runs); its state is then derived again from its person.
//!   `installed_at` is the latest Install call's time, else the first time the device was seen.
//! * Install, AppLaunch and Uninstall need a device; Personalize and Depersonalize cannot be
//!   tracked; a device-less sign-out does nothing. An uninstalled device changing hands (a
//!   person row listing it) records no Personalize or Depersonalize.
//! * A push token belongs to one installation: a second device reporting it takes it over.
//! * Nulls never overwrite, lists (emails, phones, tags) only grow, and a new name that a
//!   segment could not tell from a known one (`purchase` beside `Purchase`) is rejected.

use chrono::{DateTime, Datelike, NaiveDate};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

/// An AppLaunch is recorded only when the installation's previous recorded AppLaunch is more than
/// this much earlier (microseconds): the SDK's rule, and the generator's
/// (`generate::activity::APP_LAUNCH_GAP`), so imported and generated histories agree.
pub const APP_LAUNCH_GAP: i64 = 30 * 1_000_000;

/// 9999-12-31T23:59:58.999999Z: later times are rejected, as the store prints four-digit years
/// and the default as-of is the next whole second after the newest record (still in year 9999).
const MAX_TIME: i64 = 253_402_300_798_999_999;

/// Keys loaded from a snapshot lie in `0..=MAX_ID`, so the keys allocated after them never
/// overflow.
const MAX_ID: i64 = i64::MAX / 2;

/// The standard events, at fixed positions of the event table (`catalog::STANDARD_EVENTS`).
const STANDARD_EVENTS: [&str; 5] = [
    "Install",
    "Uninstall",
    "Personalize",
    "Depersonalize",
    "AppLaunch",
];
const INSTALL: usize = 0;
const UNINSTALL: usize = 1;
const PERSONALIZE: usize = 2;
const DEPERSONALIZE: usize = 3;
const APP_LAUNCH: usize = 4;

// ---------------------------------------------------------------------------------------------
// Input
// ---------------------------------------------------------------------------------------------

/// Where a call came from, so that a reject can point at it: `file:line`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: Arc<str>,
    pub line: u64,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A typed value of an event property or a custom attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Absent: stored as null, never conflicts with a type and never overwrites a value.
    Null,
    Str(String),
    Num(f64),
    Bool(bool),
    Date(NaiveDate),
    /// Microseconds since 1970-01-01 UTC.
    Time(i64),
    List(Vec<String>),
}

/// What [`EventRow::value`] answers for a property the row does not have.
static NULL: Value = Value::Null;

impl Value {
    /// The catalog type this value fixes on first sight; none for null.
    pub fn value_type(&self) -> Option<ValueType> {
        Some(match self {
            Value::Null => return None,
            Value::Str(_) => ValueType::String,
            Value::Num(_) => ValueType::Number,
            Value::Bool(_) => ValueType::Boolean,
            Value::Date(_) => ValueType::Date,
            Value::Time(_) => ValueType::Timestamp,
            Value::List(_) => ValueType::StringList,
        })
    }

    /// Why the store cannot hold this value, if it cannot: NaN would poison every sum, and times
    /// obey the same range as call times.
    fn defect(&self) -> Option<String> {
        match self {
            Value::Num(n) if !n.is_finite() => Some(format!("is {n}, not a finite number")),
            Value::Time(t) => check_time_range(*t).err(),
            _ => None,
        }
    }
}

/// The value types of catalog columns, as `catalog::ValueType` spells them (this module uses
/// only std, chrono and serde_json; in the main crate it is that type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ValueType {
    String,
    Number,
    Boolean,
    Date,
    Timestamp,
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
            ValueType::StringList => "list<string>",
        })
    }
}

/// What a device reports about itself: the installation's system data and custom attributes.
/// Field names are the installations table's columns. `None` means "not reported" and never
/// overwrites a known value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceData {
    /// `Android`, `iOS` or `Huawei`; other spellings of those (`android`, `iPhone OS`,
    /// `HarmonyOS`) are normalized, anything else is rejected.
    pub platform: Option<String>,
    pub sdk_version: Option<String>,
    pub os_version: Option<String>,
    pub device_manufacturer: Option<String>,
    pub device_model: Option<String>,
    pub application_version: Option<String>,
    pub os_language: Option<String>,
    pub registrations_enabled: Option<bool>,
    pub notifications_enabled: Option<bool>,
    pub geofencing_enabled: Option<bool>,
    pub device_secure: Option<bool>,
    pub custom: BTreeMap<String, Value>,
}

/// The device a call was made from (Segment's `context.device`, a People export's device, a row
/// of an installations table).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Device {
    /// The installation's public id.
    pub id: String,
    /// The push token; it becomes the installation's pushRegistrationId.
    pub token: Option<String>,
    pub data: DeviceData,
}

/// A person's standard attributes other than identities, and their custom attributes. Field
/// names are the persons table's columns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attributes {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub gender: Option<String>,
    pub birth_date: Option<NaiveDate>,
    pub country: Option<String>,
    pub city: Option<String>,
    pub preferred_language: Option<String>,
    pub tags: Vec<String>,
    pub custom: BTreeMap<String, Value>,
}

/// What an identify call or a person row says about a person. The externalUserId is the call's
/// userId. Lists add to what the person has: removing an email, a phone or a tag takes an
/// operation the import does not model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Traits {
    pub emails: Vec<String>,
    pub phones: Vec<String>,
    /// When the profile was created at the source (µs UTC); else when the import created it.
    pub created_at: Option<i64>,
    pub attributes: Attributes,
}

/// A device listed on a person row, with what the row says about it being the primary one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PersonDevice {
    pub device: Device,
    pub primary: Option<bool>,
}

/// What a call does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Sets traits on the call's person; with a userId on a device, personalizes it.
    Identify { traits: Traits },
    /// Records an event. `event` is canonical: `Install`, `AppLaunch`, `Uninstall` or a custom
    /// name (`Personalize` and `Depersonalize` are the replay's to record).
    Track {
        event: String,
        properties: BTreeMap<String, Value>,
    },
    /// Merges the person known by `previous_id` (a userId or an anonymousId) into the call's
    /// userId's person.
    Alias { previous_id: String },
    /// A `Signed Out` call: depersonalizes the call's device.
    SignOut,
    /// A People export or person table row, keyed by the call's userId.
    UpsertPerson {
        traits: Traits,
        devices: Vec<PersonDevice>,
    },
    /// An installations table row: the call's device, linked to the call's userId if it has one.
    UpsertInstallation,
}

impl Action {
    /// Whether the call shows the app running on its device: such calls advance `last_seen_at`
    /// and reactivate an uninstalled device. An uninstall notice (from the push provider) and
    /// table rows do not, as in the generator, where "seen" is every event but an Uninstall.
    fn is_app_activity(&self) -> bool {
        match self {
            Action::Track { event, .. } => event != STANDARD_EVENTS[UNINSTALL],
            Action::Identify { .. } | Action::Alias { .. } | Action::SignOut => true,
            Action::UpsertPerson { .. } | Action::UpsertInstallation => false,
        }
    }

    fn traits(&self) -> Option<&Traits> {
        match self {
            Action::Identify { traits } | Action::UpsertPerson { traits, .. } => Some(traits),
            _ => None,
        }
    }

    fn listed_devices(&self) -> &[PersonDevice] {
        match self {
            Action::UpsertPerson { devices, .. } => devices,
            _ => &[],
        }
    }
}

/// One normalized call from any source.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub origin: Origin,
    /// µs UTC. Optional so that a source's missing timestamp is rejected here, with the same
    /// reason for every source, rather than invented by a parser.
    pub time: Option<i64>,
    pub message_id: Option<String>,
    pub anonymous_id: Option<String>,
    pub user_id: Option<String>,
    pub device: Option<Device>,
    pub action: Action,
}

/// The event definitions and custom attributes a snapshot declares, with their types: the
/// starting point of type inference, and the shape of what a replay adds to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    /// Event name → property name → type.
    pub events: BTreeMap<String, BTreeMap<String, ValueType>>,
    pub person: BTreeMap<String, ValueType>,
    pub installation: BTreeMap<String, ValueType>,
}

/// What happens when a call gives a person an externalUserId, email or phone another person has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ConflictPolicy {
    /// Reject the call: identities are unique so that profiles never merge by accident.
    #[default]
    Reject,
    /// Merge the two profiles, as an alias would.
    Merge,
}

/// The de-duplication keys already imported. `seen` answers whether `key` was seen before and
/// records it; the writer implements it over the keys of earlier imports.
pub trait SeenKeys {
    fn seen(&mut self, key: u64) -> bool;
}

impl SeenKeys for HashSet<u64> {
    fn seen(&mut self, key: u64) -> bool {
        !self.insert(key)
    }
}

// ---------------------------------------------------------------------------------------------
// Output (and the state an incremental import starts from)
// ---------------------------------------------------------------------------------------------

/// An installation's lifecycle state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum InstallationState {
    #[default]
    Anonymous,
    Personalized,
    Depersonalized,
    Uninstalled,
}

impl InstallationState {
    pub fn as_str(self) -> &'static str {
        match self {
            InstallationState::Anonymous => "anonymous",
            InstallationState::Personalized => "personalized",
            InstallationState::Depersonalized => "depersonalized",
            InstallationState::Uninstalled => "uninstalled",
        }
    }
}

impl fmt::Display for InstallationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A row of the persons table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PersonRow {
    pub person_id: i64,
    /// The externalUserId; for a person without one, a stable id derived from the anonymousId or
    /// device that created it (`anon-<16 hex digits>`).
    pub public_id: String,
    /// Has an externalUserId, an email or a phone (ignored when loading: it is derived).
    pub identified: bool,
    pub external_user_id: Option<String>,
    pub emails: Vec<String>,
    pub phones: Vec<String>,
    pub attributes: Attributes,
    pub created_at: i64,
    pub modified_at: i64,
    /// Replay state, not a column of the data model: the anonymousIds that resolve to this
    /// person. Persist it so an incremental import finds the person again.
    pub anonymous_ids: Vec<String>,
    /// Replay state: externalUserIds of persons merged into this one, which still resolve to it.
    pub merged_user_ids: Vec<String>,
}

/// A row of the installations table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InstallationRow {
    pub installation_id: i64,
    /// The public id: the device id.
    pub device_id: String,
    /// The push token, or the device id without one.
    pub push_registration_id: String,
    /// Replay state: the push token, if the device has one (the pushRegistrationId alone cannot
    /// tell a token from a device id that happens to equal it).
    pub token: Option<String>,
    pub person_id: i64,
    pub state: InstallationState,
    pub data: DeviceData,
    /// Has a token and is not uninstalled (ignored when loading: it is derived).
    pub push_registration_enabled: bool,
    /// Derived at the end of the replay (ignored when loading).
    pub primary_device: bool,
    pub installed_at: i64,
    pub last_seen_at: i64,
    pub uninstalled_at: Option<i64>,
    /// Replay state: the last recorded AppLaunch, so the 30-second rule holds across imports.
    pub last_app_launch_at: Option<i64>,
    /// Replay state: what the data last said about this being the person's primary device.
    pub primary_hint: Option<bool>,
}

/// One event. The event's name and property names live in its [`EventTable`]; values are by
/// position in the table's properties, so a row costs 40 bytes plus its property values.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    pub event_time: i64,
    pub person_id: i64,
    /// None for a person-level event (a server-side call without a device).
    pub installation_id: Option<i64>,
    values: RowValues,
}

/// A row's property values behind a thin pointer: a row without properties (most are
/// AppLaunch) pays 8 bytes for them, not 16 or 24.
#[allow(clippy::box_collection)]
type RowValues = Option<Box<Vec<Value>>>;

impl EventRow {
    /// The values by property position; shorter than the table's properties when the trailing
    /// ones are null.
    pub fn values(&self) -> &[Value] {
        self.values.as_deref().map_or(&[], Vec::as_slice)
    }

    /// The value of the table's property at `position`: null if the row has none.
    pub fn value(&self, position: usize) -> &Value {
        self.values().get(position).unwrap_or(&NULL)
    }
}

/// The rows of one event, sorted by (person_id, event_time, installation_id).
#[derive(Debug, Clone, PartialEq)]
pub struct EventTable {
    pub event: String,
    /// Property names and types, by position in [`EventRow::values`].
    pub properties: Vec<(String, ValueType)>,
    pub rows: Vec<EventRow>,
}

/// The snapshot an incremental import starts from. Rows are [`Profiles`]' rows; the derived
/// fields (`identified`, `push_registration_enabled`, `primary_device`) are ignored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExistingState {
    pub persons: Vec<PersonRow>,
    pub installations: Vec<InstallationRow>,
}

/// Why an existing state cannot be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateError(pub String);

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StateError {}

/// A call that was not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub origin: Origin,
    pub reason: String,
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.origin, self.reason)
    }
}

/// Person merges, by what caused them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Merges {
    pub personalize: u64,
    pub alias: u64,
    pub conflict: u64,
}

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Calls applied (a throttled AppLaunch is applied: its device was seen).
    pub accepted: u64,
    /// Rejected calls, in input order.
    pub rejects: Vec<Reject>,
    pub deduplicated: u64,
    pub merged: Merges,
    /// AppLaunch calls within [`APP_LAUNCH_GAP`] of the previous recorded one.
    pub throttled: u64,
    /// Personalize events recorded.
    pub personalized: u64,
    /// Depersonalize events recorded.
    pub depersonalized: u64,
    /// Catalog entries the replay added: new events (with their properties), new properties of
    /// known events, new custom attributes.
    pub new_catalog: Catalog,
    /// The latest accepted call's time, a lower bound for the snapshot's as-of.
    pub last_time: Option<i64>,
}

impl Report {
    pub fn rejected(&self) -> usize {
        self.rejects.len()
    }
}

/// A replay's result: the snapshot's rows and what the writer needs to rewrite earlier ones.
#[derive(Debug, Clone, PartialEq)]
pub struct Profiles {
    /// Sorted by person_id.
    pub persons: Vec<PersonRow>,
    /// Sorted by (person_id, installation_id).
    pub installations: Vec<InstallationRow>,
    /// Sorted by event name; rows carry final person ids.
    pub events: Vec<EventTable>,
    /// Persons of the existing state merged away → the person their events now belong to.
    pub merged_into: BTreeMap<i64, i64>,
    pub report: Report,
}

// ---------------------------------------------------------------------------------------------
// De-duplication keys and derived ids
// ---------------------------------------------------------------------------------------------

/// The de-duplication key of a call: its messageId's hash, or without one its [`content_hash`].
/// [`Replay::apply`] computes it after normalizing the call's platform names.
pub fn dedup_key(call: &Call) -> u64 {
    match &call.message_id {
        Some(id) => {
            let mut h = Fnv::new();
            h.tag(b'm');
            h.str(id);
            h.0
        }
        None => content_hash(call),
    }
}

/// A stable 64-bit hash of everything a call says (not where it came from, nor its messageId):
/// FNV-1a over a length-prefixed, tagged encoding, so it never changes between builds or
/// platforms and the writer can keep the keys of earlier imports.
pub fn content_hash(call: &Call) -> u64 {
    let mut h = Fnv::new();
    h.tag(b'c');
    h.opt(call.time.as_ref(), |h, t| h.i64(*t));
    h.opt(call.anonymous_id.as_deref(), Fnv::str);
    h.opt(call.user_id.as_deref(), Fnv::str);
    h.opt(call.device.as_ref(), Fnv::device);
    h.action(&call.action);
    h.0
}

/// 64-bit FNV-1a.
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn bytes(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn tag(&mut self, tag: u8) {
        self.bytes(&[tag]);
    }

    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }

    fn i64(&mut self, v: i64) {
        self.bytes(&v.to_le_bytes());
    }

    fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.bytes(s.as_bytes());
    }

    fn opt<T>(&mut self, v: Option<T>, f: impl FnOnce(&mut Fnv, T)) {
        match v {
            None => self.tag(0),
            Some(v) => {
                self.tag(1);
                f(self, v);
            }
        }
    }

    fn strs(&mut self, items: &[String]) {
        self.u64(items.len() as u64);
        for s in items {
            self.str(s);
        }
    }

    fn value(&mut self, v: &Value) {
        match v {
            Value::Null => self.tag(0),
            Value::Str(s) => {
                self.tag(1);
                self.str(s);
            }
            Value::Num(n) => {
                self.tag(2);
                // -0.0 and 0.0 are the same number.
                self.u64(if *n == 0.0 { 0 } else { n.to_bits() });
            }
            Value::Bool(b) => {
                self.tag(3);
                self.tag(u8::from(*b));
            }
            Value::Date(d) => {
                self.tag(4);
                self.i64(i64::from(d.num_days_from_ce()));
            }
            Value::Time(t) => {
                self.tag(5);
                self.i64(*t);
            }
            Value::List(items) => {
                self.tag(6);
                self.strs(items);
            }
        }
    }

    fn map(&mut self, map: &BTreeMap<String, Value>) {
        self.u64(map.len() as u64);
        for (k, v) in map {
            self.str(k);
            self.value(v);
        }
    }

    fn device(&mut self, d: &Device) {
        self.str(&d.id);
        self.opt(d.token.as_deref(), Fnv::str);
        let data = &d.data;
        for s in [
            &data.platform,
            &data.sdk_version,
            &data.os_version,
            &data.device_manufacturer,
            &data.device_model,
            &data.application_version,
            &data.os_language,
        ] {
            self.opt(s.as_deref(), Fnv::str);
        }
        for b in [
            data.registrations_enabled,
            data.notifications_enabled,
            data.geofencing_enabled,
            data.device_secure,
        ] {
            self.opt(b, |h, b| h.tag(u8::from(b)));
        }
        self.map(&data.custom);
    }

    fn traits(&mut self, t: &Traits) {
        self.strs(&t.emails);
        self.strs(&t.phones);
        self.opt(t.created_at.as_ref(), |h, t| h.i64(*t));
        let a = &t.attributes;
        for s in [
            &a.first_name,
            &a.last_name,
            &a.gender,
            &a.country,
            &a.city,
            &a.preferred_language,
        ] {
            self.opt(s.as_deref(), Fnv::str);
        }
        self.opt(a.birth_date, |h, d| h.i64(i64::from(d.num_days_from_ce())));
        self.strs(&a.tags);
        self.map(&a.custom);
    }

    fn action(&mut self, action: &Action) {
        match action {
            Action::Identify { traits } => {
                self.tag(1);
                self.traits(traits);
            }
            Action::Track { event, properties } => {
                self.tag(2);
                self.str(event);
                self.map(properties);
            }
            Action::Alias { previous_id } => {
                self.tag(3);
                self.str(previous_id);
            }
            Action::SignOut => self.tag(4),
            Action::UpsertPerson { traits, devices } => {
                self.tag(5);
                self.traits(traits);
                self.u64(devices.len() as u64);
                for d in devices {
                    self.device(&d.device);
                    self.opt(d.primary, |h, b| h.tag(u8::from(b)));
                }
            }
            Action::UpsertInstallation => self.tag(6),
        }
    }
}

/// `<prefix>-<16 hex digits>`: a stable public id for what has none of its own.
fn derived_id(prefix: &str, parts: &[&str]) -> String {
    let mut h = Fnv::new();
    h.str(prefix);
    for p in parts {
        h.str(p);
    }
    format!("{prefix}-{:016x}", h.0)
}

/// The pushRegistrationId of an installation without a push token: its device id, so an
/// installation keeps one public id whether or not it ever registers for push.
fn tokenless_registration_id(device_id: &str) -> String {
    device_id.to_string()
}

/// A name reduced to what name matching compares: case, spaces, `_` and `-` ignored. The same
/// rule as `catalog::names::normalize`, so that a new name which a segment could not tell from a
/// known one is caught at import, not at query time.
fn normalize_name(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The catalog's spelling of a platform named by a device (Segment's `os.name`).
fn canonical_platform(name: &str) -> Option<&'static str> {
    match normalize_name(name).as_str() {
        "android" => Some("Android"),
        "ios" | "iphoneos" | "ipados" => Some("iOS"),
        "huawei" | "harmonyos" | "hms" => Some("Huawei"),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Stateless validation
// ---------------------------------------------------------------------------------------------

fn describe_time(t: i64) -> String {
    DateTime::from_timestamp_micros(t).map_or_else(
        || format!("{t} µs"),
        |d| d.format("%Y-%m-%dT%H:%M:%S%.fZ").to_string(),
    )
}

fn check_time_range(t: i64) -> Result<i64, String> {
    if t < 0 {
        Err(format!("time {} is before 1970", describe_time(t)))
    } else if t > MAX_TIME {
        Err(format!(
            "time {} is after 9999-12-31T23:59:58 (the last second is the as-of's)",
            describe_time(t)
        ))
    } else {
        Ok(t)
    }
}

fn non_empty(what: &str, value: Option<&str>) -> Result<(), String> {
    match value {
        Some(v) if v.trim().is_empty() => Err(format!("empty {what}")),
        _ => Ok(()),
    }
}

fn check_device(device: &mut Device) -> Result<(), String> {
    non_empty("device id", Some(&device.id))?;
    non_empty("push token", device.token.as_deref())?;
    if let Some(name) = &device.data.platform {
        let canonical = canonical_platform(name).ok_or_else(|| {
            format!("unknown platform `{name}` (expected Android, iOS or Huawei)")
        })?;
        device.data.platform = Some(canonical.to_string());
    }
    Ok(())
}

fn check_traits(traits: &Traits) -> Result<(), String> {
    for email in &traits.emails {
        non_empty("email", Some(email))?;
    }
    for phone in &traits.phones {
        non_empty("phone", Some(phone))?;
    }
    if let Some(t) = traits.created_at {
        check_time_range(t).map_err(|e| format!("createdAt: {e}"))?;
    }
    Ok(())
}

/// Checks what a call must be whatever the state, normalizes its platform names, and returns its
/// time.
fn check_call(call: &mut Call) -> Result<i64, String> {
    let time = check_time_range(call.time.ok_or("missing timestamp")?)?;
    non_empty("messageId", call.message_id.as_deref())?;
    non_empty("userId", call.user_id.as_deref())?;
    non_empty("anonymousId", call.anonymous_id.as_deref())?;
    if let Some(device) = &mut call.device {
        check_device(device)?;
    }
    let has_user = call.user_id.is_some();
    match &mut call.action {
        Action::Identify { traits } => check_traits(traits)?,
        Action::Alias { previous_id } => {
            if !has_user {
                return Err("an alias needs a userId".into());
            }
            non_empty("previousId", Some(previous_id))?;
        }
        Action::UpsertPerson { traits, devices } => {
            if !has_user {
                return Err("a person row needs a userId".into());
            }
            check_traits(traits)?;
            for d in devices {
                check_device(&mut d.device)?;
            }
        }
        Action::UpsertInstallation if call.device.is_none() => {
            return Err("an installation row needs a device".into());
        }
        Action::Track { .. } | Action::SignOut | Action::UpsertInstallation => {}
    }
    if call.device.is_none() && !has_user && call.anonymous_id.is_none() {
        return Err("the call names no userId, anonymousId or device".into());
    }
    Ok(time)
}

// ---------------------------------------------------------------------------------------------
// Names and types
// ---------------------------------------------------------------------------------------------

/// A name's entry in a set of declared names.
enum Lookup<'a, T> {
    Found(T),
    /// Undeclared, but a declared name (this spelling) matches it ignoring case and separators.
    Clash(&'a str),
    Missing,
}

/// Declared names (events, properties, attributes): exact lookups, and the normalized forms
/// that a new name must not share with a declared one.
struct Names<T> {
    exact: HashMap<String, T>,
    normalized: HashMap<String, String>,
}

impl<T> Default for Names<T> {
    fn default() -> Self {
        Names {
            exact: HashMap::new(),
            normalized: HashMap::new(),
        }
    }
}

impl<T: Copy> Names<T> {
    /// Normalizes only on a miss, which is rare: known names cost one hash lookup.
    fn lookup(&self, name: &str) -> Lookup<'_, T> {
        if let Some(v) = self.exact.get(name) {
            return Lookup::Found(*v);
        }
        match self.normalized.get(&normalize_name(name)) {
            Some(spelling) => Lookup::Clash(spelling),
            None => Lookup::Missing,
        }
    }

    fn insert(&mut self, name: String, value: T) {
        self.normalized
            .entry(normalize_name(&name))
            .or_insert_with(|| name.clone());
        self.exact.insert(name, value);
    }
}

/// What a typed name belongs to, for messages.
#[derive(Clone, Copy)]
enum Scope<'a> {
    Property(&'a str),
    Person,
    Installation,
}

impl Scope<'_> {
    fn describe(self, name: &str) -> String {
        match self {
            Scope::Property(event) => format!("property `{event}.{name}`"),
            Scope::Person => format!("person attribute `{name}`"),
            Scope::Installation => format!("installation attribute `{name}`"),
        }
    }
}

fn type_conflict(scope: Scope, name: &str, declared: ValueType, found: ValueType) -> String {
    format!(
        "{} is {declared}, this call has {found}",
        scope.describe(name)
    )
}

/// `what` and `existing` are described names (`` event `purchase` ``).
fn name_clash(what: &str, existing: &str) -> String {
    format!("{what} clashes with {existing} (names match ignoring case, spaces, `_` and `-`)")
}

/// Names a call declares that the catalog does not have yet, so that two of them cannot
/// disagree (two devices of a person row giving `theme` two types).
#[derive(Default)]
struct Pending<'a>(Vec<(String, &'a str, ValueType)>);

impl<'a> Pending<'a> {
    fn check(&mut self, scope: Scope, name: &'a str, ty: ValueType) -> Result<(), String> {
        let key = normalize_name(name);
        match self.0.iter().find(|(k, ..)| *k == key) {
            Some((_, spelling, _)) if *spelling != name => {
                Err(name_clash(&scope.describe(name), &scope.describe(spelling)))
            }
            Some((.., declared)) if *declared != ty => {
                Err(type_conflict(scope, name, *declared, ty))
            }
            Some(_) => Ok(()),
            None => {
                self.0.push((key, name, ty));
                Ok(())
            }
        }
    }
}

/// Checks one typed value against its declaration (or the call's own earlier declaration).
fn check_field<'a>(
    scope: Scope,
    declared: Lookup<'_, ValueType>,
    pending: &mut Pending<'a>,
    name: &'a str,
    value: &Value,
) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err(format!("{} has an empty name", scope.describe(name)));
    }
    let Some(ty) = value.value_type() else {
        return Ok(());
    };
    if let Some(defect) = value.defect() {
        return Err(format!("{} {defect}", scope.describe(name)));
    }
    match declared {
        Lookup::Found(declared) if declared == ty => Ok(()),
        Lookup::Found(declared) => Err(type_conflict(scope, name, declared, ty)),
        Lookup::Clash(spelling) => {
            Err(name_clash(&scope.describe(name), &scope.describe(spelling)))
        }
        Lookup::Missing => pending.check(scope, name, ty),
    }
}

/// See [`Replay::conform`].
fn conform_values<'a>(
    values: &mut BTreeMap<String, Value>,
    declared: impl Fn(&str) -> Lookup<'a, ValueType>,
) {
    for (name, value) in values.iter_mut() {
        let Value::Str(text) = value else { continue };
        let wanted = match declared(name) {
            Lookup::Found(ty) => Some(ty),
            Lookup::Missing => None,
            Lookup::Clash(_) => continue,
        };
        if matches!(wanted, None | Some(ValueType::Date)) {
            if let Some(date) = super::time_text::exact_date(text) {
                *value = Value::Date(date);
                continue;
            }
        }
        if matches!(wanted, None | Some(ValueType::Timestamp)) {
            if let Some(t) = super::time_text::parse_time(text) {
                *value = Value::Time(t);
            }
        }
    }
}

/// Records a custom attribute's type on first sight.
fn learn_types(
    names: &mut Names<ValueType>,
    learned: &mut BTreeMap<String, ValueType>,
    values: &BTreeMap<String, Value>,
) {
    for (name, value) in values {
        if let (Some(ty), Lookup::Missing) = (value.value_type(), names.lookup(name)) {
            names.insert(name.clone(), ty);
            learned.insert(name.clone(), ty);
        }
    }
}

/// One event: its properties (by position) and its rows.
struct EventDef {
    name: String,
    positions: Names<usize>,
    columns: Vec<(String, ValueType)>,
    rows: Vec<EventRow>,
}

impl EventDef {
    fn new(name: String) -> EventDef {
        EventDef {
            name,
            positions: Names::default(),
            columns: Vec::new(),
            rows: Vec::new(),
        }
    }

    fn property_type(&self, name: &str) -> Lookup<'_, ValueType> {
        match self.positions.lookup(name) {
            Lookup::Found(pos) => self
                .columns
                .get(pos)
                .map_or(Lookup::Missing, |(_, ty)| Lookup::Found(*ty)),
            Lookup::Clash(spelling) => Lookup::Clash(spelling),
            Lookup::Missing => Lookup::Missing,
        }
    }

    fn add_property(&mut self, name: String, ty: ValueType) -> usize {
        let pos = self.columns.len();
        self.positions.insert(name.clone(), pos);
        self.columns.push((name, ty));
        pos
    }

    /// Lays properties out by position, declaring new ones (already checked) on the way.
    fn values(&mut self, properties: BTreeMap<String, Value>, learned: &mut Catalog) -> RowValues {
        let mut values = Vec::new();
        for (name, value) in properties {
            let Some(ty) = value.value_type() else {
                continue;
            };
            let pos = match self.positions.lookup(&name) {
                Lookup::Found(pos) => pos,
                Lookup::Clash(_) | Lookup::Missing => {
                    learned
                        .events
                        .entry(self.name.clone())
                        .or_default()
                        .insert(name.clone(), ty);
                    self.add_property(name, ty)
                }
            };
            if values.len() <= pos {
                values.resize(pos + 1, Value::Null);
            }
            values[pos] = value;
        }
        (!values.is_empty()).then(|| Box::new(values))
    }
}

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

struct Person {
    public_id: Arc<str>,
    external_user_id: Option<Arc<str>>,
    merged_user_ids: Vec<Arc<str>>,
    anonymous_ids: Vec<Arc<str>>,
    emails: Vec<Arc<str>>,
    phones: Vec<Arc<str>>,
    attributes: Attributes,
    created_at: i64,
    modified_at: i64,
    installations: Vec<i64>,
}

impl Person {
    fn new(public_id: Arc<str>, time: i64) -> Person {
        Person {
            public_id,
            external_user_id: None,
            merged_user_ids: Vec::new(),
            anonymous_ids: Vec::new(),
            emails: Vec::new(),
            phones: Vec::new(),
            attributes: Attributes::default(),
            created_at: time,
            modified_at: time,
            installations: Vec::new(),
        }
    }

    /// The README's and Infobip's meaning: has at least one unique identity.
    fn identified(&self) -> bool {
        self.external_user_id.is_some() || !self.emails.is_empty() || !self.phones.is_empty()
    }

    fn into_row(self, person_id: i64) -> PersonRow {
        let strings = |v: Vec<Arc<str>>| v.iter().map(|s| s.to_string()).collect();
        PersonRow {
            person_id,
            public_id: self.public_id.to_string(),
            identified: self.identified(),
            external_user_id: self.external_user_id.as_deref().map(str::to_string),
            emails: strings(self.emails),
            phones: strings(self.phones),
            attributes: self.attributes,
            created_at: self.created_at,
            modified_at: self.modified_at,
            anonymous_ids: strings(self.anonymous_ids),
            merged_user_ids: strings(self.merged_user_ids),
        }
    }
}

/// Overwrites `slot` with a reported value; says whether it changed.
fn set<T: PartialEq>(slot: &mut Option<T>, value: Option<T>) -> bool {
    match value {
        Some(v) if slot.as_ref() != Some(&v) => {
            *slot = Some(v);
            true
        }
        _ => false,
    }
}

fn fill_gap<T>(slot: &mut Option<T>, value: Option<T>) {
    if slot.is_none() {
        *slot = value;
    }
}

/// Adds the items `list` lacks; says whether it changed.
fn union(list: &mut Vec<String>, items: Vec<String>) -> bool {
    let before = list.len();
    for item in items {
        if !list.contains(&item) {
            list.push(item);
        }
    }
    list.len() != before
}

/// Overwrites custom values with reported (non-null) ones; says whether any changed.
fn set_custom(custom: &mut BTreeMap<String, Value>, values: BTreeMap<String, Value>) -> bool {
    let mut changed = false;
    for (k, v) in values {
        if v != Value::Null && custom.get(&k) != Some(&v) {
            custom.insert(k, v);
            changed = true;
        }
    }
    changed
}

impl Attributes {
    /// Later non-null values win; tags add up.
    fn update(&mut self, new: Attributes) -> bool {
        let mut changed = set(&mut self.first_name, new.first_name);
        changed |= set(&mut self.last_name, new.last_name);
        changed |= set(&mut self.gender, new.gender);
        changed |= set(&mut self.birth_date, new.birth_date);
        changed |= set(&mut self.country, new.country);
        changed |= set(&mut self.city, new.city);
        changed |= set(&mut self.preferred_language, new.preferred_language);
        changed |= union(&mut self.tags, new.tags);
        changed | set_custom(&mut self.custom, new.custom)
    }

    /// A merge: the survivor's (self's) non-null values win, the loser's fill the gaps, lists
    /// are unioned.
    fn fill(&mut self, lost: Attributes) {
        fill_gap(&mut self.first_name, lost.first_name);
        fill_gap(&mut self.last_name, lost.last_name);
        fill_gap(&mut self.gender, lost.gender);
        fill_gap(&mut self.birth_date, lost.birth_date);
        fill_gap(&mut self.country, lost.country);
        fill_gap(&mut self.city, lost.city);
        fill_gap(&mut self.preferred_language, lost.preferred_language);
        union(&mut self.tags, lost.tags);
        for (name, value) in lost.custom {
            self.custom.entry(name).or_insert(value);
        }
    }
}

impl DeviceData {
    /// Later non-null values win.
    fn update(&mut self, new: DeviceData) {
        set(&mut self.platform, new.platform);
        set(&mut self.sdk_version, new.sdk_version);
        set(&mut self.os_version, new.os_version);
        set(&mut self.device_manufacturer, new.device_manufacturer);
        set(&mut self.device_model, new.device_model);
        set(&mut self.application_version, new.application_version);
        set(&mut self.os_language, new.os_language);
        set(&mut self.registrations_enabled, new.registrations_enabled);
        set(&mut self.notifications_enabled, new.notifications_enabled);
        set(&mut self.geofencing_enabled, new.geofencing_enabled);
        set(&mut self.device_secure, new.device_secure);
        set_custom(&mut self.custom, new.custom);
    }
}

struct Installation {
    device_id: Arc<str>,
    token: Option<Arc<str>>,
    /// Always a live person: merges and moves update it at once.
    person: i64,
    data: DeviceData,
    installed_at: i64,
    last_seen_at: i64,
    uninstalled_at: Option<i64>,
    /// Has been depersonalized: with an anonymous person, the state is then `depersonalized`.
    depersonalized: bool,
    last_app_launch_at: Option<i64>,
    primary_hint: Option<bool>,
}

impl Installation {
    fn new(device_id: Arc<str>, person: i64, time: i64) -> Installation {
        Installation {
            device_id,
            token: None,
            person,
            data: DeviceData::default(),
            installed_at: time,
            last_seen_at: time,
            uninstalled_at: None,
            depersonalized: false,
            last_app_launch_at: None,
            primary_hint: None,
        }
    }

    fn active(&self) -> bool {
        self.uninstalled_at.is_none()
    }

    /// The state follows from the lifecycle and the person, so merges that make a device's
    /// person identified, or a reinstall, never leave it stale.
    fn state(&self, person_identified: bool) -> InstallationState {
        if !self.active() {
            InstallationState::Uninstalled
        } else if person_identified {
            InstallationState::Personalized
        } else if self.depersonalized {
            InstallationState::Depersonalized
        } else {
            InstallationState::Anonymous
        }
    }
}

/// Public ids → dense keys. Every entry points at a live person or installation.
#[derive(Default)]
struct Indexes {
    by_device: HashMap<Arc<str>, i64>,
    by_token: HashMap<Arc<str>, i64>,
    /// externalUserIds and merged userIds.
    by_user_id: HashMap<Arc<str>, i64>,
    by_email: HashMap<Arc<str>, i64>,
    by_phone: HashMap<Arc<str>, i64>,
    by_anonymous_id: HashMap<Arc<str>, i64>,
}

/// Adds what `values` has and `list` lacks to `list` and `index` (`values` are free or the
/// owner's already); says whether anything was added.
fn claim(
    list: &mut Vec<Arc<str>>,
    index: &mut HashMap<Arc<str>, i64>,
    values: Vec<String>,
    owner: i64,
) -> bool {
    let before = list.len();
    for value in values {
        if !list.iter().any(|v| **v == *value) {
            let value: Arc<str> = value.into();
            index.insert(value.clone(), owner);
            list.push(value);
        }
    }
    list.len() != before
}

/// Moves a merged person's identities to the survivor.
fn repoint(
    list: &mut Vec<Arc<str>>,
    index: &mut HashMap<Arc<str>, i64>,
    lost: Vec<Arc<str>>,
    to: i64,
) {
    for value in lost {
        index.insert(value.clone(), to);
        list.push(value);
    }
}

/// What the call does to the link between its device and a person.
enum Step<'c> {
    Keep,
    /// The device's person, identified only by email or phone, takes the call's free userId.
    Adopt(&'c str),
    /// Link the device to the userId's person (`None`: a new one): a personalize merge if the
    /// device's person is anonymous, a depersonalize and personalize if it is someone else.
    LinkTo(&'c str, Option<i64>),
    /// Move the device to an anonymous person.
    Depersonalize,
}

/// The parts of a call the identity rules read.
#[derive(Clone, Copy)]
struct Ctx<'c> {
    time: i64,
    user_id: Option<&'c str>,
    anonymous_id: Option<&'c str>,
}

impl<'c> Ctx<'c> {
    fn new(time: i64, user_id: &'c Option<String>, anonymous_id: &'c Option<String>) -> Ctx<'c> {
        Ctx {
            time,
            user_id: user_id.as_deref(),
            anonymous_id: anonymous_id.as_deref(),
        }
    }
}

#[derive(Clone, Copy)]
enum MergeKind {
    Personalize,
    Alias,
    Conflict,
}

/// An identity a call claims, for conflict messages.
struct Claimed<'a> {
    kind: &'static str,
    value: &'a str,
    holder: i64,
}

// ---------------------------------------------------------------------------------------------
// The replay
// ---------------------------------------------------------------------------------------------

/// The replay engine: holds the state of the persons, installations and events, applies calls
/// one by one, and turns into the snapshot's rows at the end.
pub struct Replay {
    policy: ConflictPolicy,
    persons: HashMap<i64, Person>,
    installations: HashMap<i64, Installation>,
    index: Indexes,
    /// Union-find parents: merged person → the person it was merged into.
    merged: HashMap<i64, i64>,
    events: Vec<EventDef>,
    event_names: Names<usize>,
    person_types: Names<ValueType>,
    installation_types: Names<ValueType>,
    next_person: i64,
    next_installation: i64,
    /// Person ids below this were loaded from the existing state.
    loaded_persons_end: i64,
    report: Report,
}

impl Replay {
    /// A replay starting from `existing` (empty for a first import), with the types the existing
    /// catalog declares.
    pub fn new(
        existing: ExistingState,
        policy: ConflictPolicy,
        catalog: Catalog,
    ) -> Result<Replay, StateError> {
        let mut replay = Replay {
            policy,
            persons: HashMap::with_capacity(existing.persons.len()),
            installations: HashMap::with_capacity(existing.installations.len()),
            index: Indexes::default(),
            merged: HashMap::new(),
            events: Vec::new(),
            event_names: Names::default(),
            person_types: Names::default(),
            installation_types: Names::default(),
            next_person: 0,
            next_installation: 0,
            loaded_persons_end: 0,
            report: Report::default(),
        };
        replay.load_catalog(catalog);
        for row in existing.persons {
            replay.load_person(row)?;
        }
        replay.loaded_persons_end = replay.next_person;
        for row in existing.installations {
            replay.load_installation(row)?;
        }
        Ok(replay)
    }

    fn load_catalog(&mut self, catalog: Catalog) {
        for name in STANDARD_EVENTS {
            self.declare_event(name.to_string());
        }
        for (event, properties) in catalog.events {
            let id = match self.event_names.lookup(&event) {
                Lookup::Found(id) => id,
                Lookup::Clash(_) | Lookup::Missing => self.declare_event(event),
            };
            if let Some(def) = self.events.get_mut(id) {
                for (name, ty) in properties {
                    def.add_property(name, ty);
                }
            }
        }
        for (name, ty) in catalog.person {
            self.person_types.insert(name, ty);
        }
        for (name, ty) in catalog.installation {
            self.installation_types.insert(name, ty);
        }
    }

    fn load_person(&mut self, row: PersonRow) -> Result<(), StateError> {
        let id = row.person_id;
        check_key("person", id)?;
        if self.persons.contains_key(&id) {
            return Err(StateError(format!("person {id} appears twice")));
        }
        let mut person = Person::new(row.public_id.into(), row.created_at);
        person.modified_at = row.modified_at;
        person.attributes = row.attributes;
        let ix = &mut self.index;
        if let Some(user_id) = row.external_user_id {
            let user_id: Arc<str> = user_id.into();
            index_unique(&mut ix.by_user_id, user_id.clone(), id, "userId")?;
            person.external_user_id = Some(user_id);
        }
        person.merged_user_ids = index_all(&mut ix.by_user_id, row.merged_user_ids, id, "userId")?;
        person.anonymous_ids = index_all(
            &mut ix.by_anonymous_id,
            row.anonymous_ids,
            id,
            "anonymousId",
        )?;
        person.emails = index_all(&mut ix.by_email, row.emails, id, "email")?;
        person.phones = index_all(&mut ix.by_phone, row.phones, id, "phone")?;
        self.persons.insert(id, person);
        self.next_person = self.next_person.max(id + 1);
        Ok(())
    }

    fn load_installation(&mut self, row: InstallationRow) -> Result<(), StateError> {
        let id = row.installation_id;
        check_key("installation", id)?;
        if self.installations.contains_key(&id) {
            return Err(StateError(format!("installation {id} appears twice")));
        }
        let Some(person) = self.persons.get_mut(&row.person_id) else {
            return Err(StateError(format!(
                "installation {id} belongs to person {}, who does not exist",
                row.person_id
            )));
        };
        let uninstalled = row.state == InstallationState::Uninstalled;
        if uninstalled != row.uninstalled_at.is_some() {
            return Err(StateError(format!(
                "installation {id} is {} but its uninstalled_at is {:?}",
                row.state, row.uninstalled_at
            )));
        }
        if row.device_id.trim().is_empty() {
            return Err(StateError(format!(
                "installation {id} has an empty device id"
            )));
        }
        let device_id: Arc<str> = row.device_id.into();
        let token = row.token.map(Arc::<str>::from);
        index_unique(
            &mut self.index.by_device,
            device_id.clone(),
            id,
            "device id",
        )?;
        if let Some(token) = &token {
            index_unique(&mut self.index.by_token, token.clone(), id, "push token")?;
        }
        person.installations.push(id);
        self.installations.insert(
            id,
            Installation {
                device_id,
                token,
                person: row.person_id,
                data: row.data,
                installed_at: row.installed_at,
                last_seen_at: row.last_seen_at,
                uninstalled_at: row.uninstalled_at,
                depersonalized: row.state == InstallationState::Depersonalized,
                last_app_launch_at: row.last_app_launch_at,
                primary_hint: row.primary_hint,
            },
        );
        self.next_installation = self.next_installation.max(id + 1);
        Ok(())
    }

    /// Applies one call. A rejected call changes nothing but the report, which keeps it with
    /// its origin; a call whose de-duplication key `seen` knows is skipped. Keys are recorded
    /// only for calls that pass validation, so a rejected call can be fixed and sent again.
    pub fn apply(&mut self, mut call: Call, seen: &mut impl SeenKeys) -> Result<(), Reject> {
        self.conform(&mut call);
        let checked = check_call(&mut call).and_then(|time| {
            self.check_types(&call)?;
            self.check_identities(&call, time)?;
            Ok(time)
        });
        let time = match checked {
            Ok(time) => time,
            Err(reason) => {
                let reject = Reject {
                    origin: call.origin,
                    reason,
                };
                self.report.rejects.push(reject.clone());
                return Err(reject);
            }
        };
        if seen.seen(dedup_key(&call)) {
            self.report.deduplicated += 1;
            return Ok(());
        }
        self.commit(call, time);
        self.report.accepted += 1;
        self.report.last_time = self.report.last_time.max(Some(time));
        Ok(())
    }

    /// Text sources spell dates and times as strings: a string in `YYYY-MM-DD` form is a date,
    /// one in RFC 3339 form a timestamp, where the catalog declares that type or the name is
    /// new. Where the catalog declares a string, it stays one.
    fn conform(&self, call: &mut Call) {
        let installation = |name: &str| self.installation_types.lookup(name);
        if let Some(device) = &mut call.device {
            conform_values(&mut device.data.custom, installation);
        }
        match &mut call.action {
            Action::Identify { traits } => conform_values(&mut traits.attributes.custom, |n| {
                self.person_types.lookup(n)
            }),
            Action::UpsertPerson { traits, devices } => {
                conform_values(&mut traits.attributes.custom, |n| {
                    self.person_types.lookup(n)
                });
                for d in devices {
                    conform_values(&mut d.device.data.custom, installation);
                }
            }
            Action::Track { event, properties } => {
                let def = match self.event_names.lookup(event) {
                    Lookup::Found(id) => self.events.get(id),
                    _ => None,
                };
                conform_values(properties, |name| {
                    def.map_or(Lookup::Missing, |d| d.property_type(name))
                });
            }
            Action::Alias { .. } | Action::SignOut | Action::UpsertInstallation => {}
        }
    }

    // -- validation (read-only) ---------------------------------------------------------------

    fn check_types(&self, call: &Call) -> Result<(), String> {
        let mut installation = Pending::default();
        let devices = call
            .device
            .iter()
            .chain(call.action.listed_devices().iter().map(|d| &d.device));
        for device in devices {
            for (name, value) in &device.data.custom {
                let declared = self.installation_types.lookup(name);
                check_field(
                    Scope::Installation,
                    declared,
                    &mut installation,
                    name,
                    value,
                )?;
            }
        }
        if let Some(traits) = call.action.traits() {
            let mut person = Pending::default();
            for (name, value) in &traits.attributes.custom {
                let declared = self.person_types.lookup(name);
                check_field(Scope::Person, declared, &mut person, name, value)?;
            }
        }
        if let Action::Track { event, properties } = &call.action {
            self.check_track(call.device.is_some(), event, properties)?;
        }
        Ok(())
    }

    fn check_track(
        &self,
        has_device: bool,
        event: &str,
        properties: &BTreeMap<String, Value>,
    ) -> Result<(), String> {
        if event.trim().is_empty() {
            return Err("empty event name".into());
        }
        let id = match self.event_names.lookup(event) {
            Lookup::Found(id) => Some(id),
            Lookup::Clash(spelling) => {
                return Err(name_clash(
                    &format!("event `{event}`"),
                    &format!("`{spelling}`"),
                ))
            }
            Lookup::Missing => None,
        };
        match id {
            Some(PERSONALIZE | DEPERSONALIZE) => {
                return Err(format!(
                    "`{event}` is recorded by the import from identify and sign-out calls, \
                     it cannot be tracked"
                ))
            }
            Some(INSTALL | UNINSTALL | APP_LAUNCH) if !has_device => {
                return Err(format!("`{event}` needs a device"))
            }
            _ => {}
        }
        let def = id.and_then(|id| self.events.get(id));
        let mut pending = Pending::default();
        for (name, value) in properties {
            let declared = def.map_or(Lookup::Missing, |d| d.property_type(name));
            check_field(Scope::Property(event), declared, &mut pending, name, value)?;
        }
        Ok(())
    }

    /// Under [`ConflictPolicy::Reject`], an email or phone the call gives its person must not be
    /// another person's. (A userId never conflicts: it names the person the call is about.)
    fn check_identities(&self, call: &Call, time: i64) -> Result<(), String> {
        let Some(traits) = call.action.traits() else {
            return Ok(());
        };
        if self.policy == ConflictPolicy::Merge
            || (traits.emails.is_empty() && traits.phones.is_empty())
        {
            return Ok(());
        }
        let subject = self.subject(call, Ctx::new(time, &call.user_id, &call.anonymous_id));
        match self.conflicts(traits, subject).first() {
            None => Ok(()),
            Some(c) => Err(format!(
                "{} `{}` belongs to person {} (`{}`)",
                c.kind,
                c.value,
                c.holder,
                self.persons.get(&c.holder).map_or("?", |p| &*p.public_id)
            )),
        }
    }

    /// The person whose traits the call sets, as [`Replay::commit`] will find or create it:
    /// `None` for one the call creates.
    fn subject(&self, call: &Call, ctx: Ctx) -> Option<i64> {
        let Some(device) = &call.device else {
            return match (ctx.user_id, ctx.anonymous_id) {
                (Some(user_id), _) => self.index.by_user_id.get(user_id).copied(),
                (None, Some(anonymous_id)) => self.index.by_anonymous_id.get(anonymous_id).copied(),
                (None, None) => None,
            };
        };
        let current = self
            .index
            .by_device
            .get(device.id.as_str())
            .and_then(|id| self.installations.get(id))
            .map(|i| i.person)
            .or_else(|| self.anonymous_person_of(ctx.anonymous_id));
        match self.device_step(current, &call.action, ctx) {
            Step::Keep | Step::Adopt(_) => current,
            Step::LinkTo(_, target) => target,
            Step::Depersonalize => self.anonymous_person_of(ctx.anonymous_id),
        }
    }

    /// The emails and phones in `traits` held by someone other than `subject`, in claim order.
    fn conflicts<'t>(&self, traits: &'t Traits, subject: Option<i64>) -> Vec<Claimed<'t>> {
        let held = |kind, index: &HashMap<Arc<str>, i64>, values: &'t [String]| {
            values
                .iter()
                .filter_map(move |v| {
                    let holder = *index.get(v.as_str())?;
                    (Some(holder) != subject).then_some(Claimed {
                        kind,
                        value: v,
                        holder,
                    })
                })
                .collect::<Vec<_>>()
        };
        let mut found = held("email", &self.index.by_email, &traits.emails);
        found.extend(held("phone", &self.index.by_phone, &traits.phones));
        found
    }

    /// What the call does to its device's link. `current` is the device's person (`None`: the
    /// anonymous person a new device gets). Read-only, so validation and commit decide alike.
    fn device_step<'c>(&self, current: Option<i64>, action: &Action, ctx: Ctx<'c>) -> Step<'c> {
        let person = current.and_then(|id| self.persons.get(&id));
        let identified = person.is_some_and(Person::identified);
        if matches!(action, Action::SignOut) {
            return if identified {
                Step::Depersonalize
            } else {
                Step::Keep
            };
        }
        if let Some(user_id) = ctx.user_id {
            let holder = self.index.by_user_id.get(user_id).copied();
            return if holder.is_some() && holder == current {
                Step::Keep
            } else if holder.is_none()
                && person.is_some_and(|p| p.identified() && p.external_user_id.is_none())
            {
                Step::Adopt(user_id)
            } else {
                Step::LinkTo(user_id, holder)
            };
        }
        let other_anonymous_id = ctx
            .anonymous_id
            .is_some_and(|a| self.index.by_anonymous_id.get(a).copied() != current);
        if identified && other_anonymous_id {
            Step::Depersonalize
        } else {
            Step::Keep
        }
    }

    /// The person an anonymousId names, if still anonymous: a new or signed-out device joins it
    /// rather than getting a second anonymous person under the same anonymousId.
    fn anonymous_person_of(&self, anonymous_id: Option<&str>) -> Option<i64> {
        let id = *self.index.by_anonymous_id.get(anonymous_id?)?;
        (!self.persons.get(&id)?.identified()).then_some(id)
    }

    fn is_identified(&self, person: i64) -> bool {
        self.persons.get(&person).is_some_and(Person::identified)
    }

    // -- commit (infallible) ------------------------------------------------------------------

    fn commit(&mut self, call: Call, time: i64) {
        let Call {
            anonymous_id,
            user_id,
            device,
            action,
            ..
        } = call;
        let ctx = Ctx::new(time, &user_id, &anonymous_id);
        let (subject, installation) = match device {
            Some(device) => {
                let (installation, subject) = self.device_call(device, &action, ctx);
                (subject, Some(installation))
            }
            None => match self.person_of(&action, ctx) {
                Some(subject) => (subject, None),
                None => return,
            },
        };
        let subject = self.act(subject, installation, action, ctx);
        self.bind_anonymous_id(ctx.anonymous_id, subject);
    }

    /// Creates, refreshes and links the call's device; returns it and the call's person.
    fn device_call(&mut self, device: Device, action: &Action, ctx: Ctx) -> (i64, i64) {
        let (installation, current) = self.installation_for(&device.id, ctx.anonymous_id, ctx.time);
        if action.is_app_activity() {
            self.touch(installation, ctx.time);
        }
        self.update_device(installation, device);
        let subject = match self.device_step(Some(current), action, ctx) {
            Step::Keep => current,
            Step::Adopt(user_id) => {
                self.set_external_user_id(current, user_id, ctx.time);
                current
            }
            Step::LinkTo(user_id, target) => {
                let target =
                    target.unwrap_or_else(|| self.new_identified_person(user_id, ctx.time));
                self.link_to(installation, target, ctx.time);
                target
            }
            Step::Depersonalize => {
                self.depersonalize(installation, current, ctx.anonymous_id, ctx.time)
            }
        };
        (installation, subject)
    }

    /// The person of a call without a device; `None` for a device-less sign-out, which has
    /// nothing to act on.
    fn person_of(&mut self, action: &Action, ctx: Ctx) -> Option<i64> {
        if matches!(action, Action::SignOut) {
            return None;
        }
        if let Some(user_id) = ctx.user_id {
            return Some(match self.index.by_user_id.get(user_id) {
                Some(&id) => id,
                None => self.new_identified_person(user_id, ctx.time),
            });
        }
        let anonymous_id = ctx.anonymous_id?;
        Some(match self.index.by_anonymous_id.get(anonymous_id) {
            Some(&id) => id,
            // The anonymousId is free, so it keys the person: no device id is needed.
            None => self.new_anonymous_person(Some(anonymous_id), "", ctx.time),
        })
    }

    /// Does what the action says, for `subject`; returns the call's person afterwards.
    fn act(&mut self, subject: i64, installation: Option<i64>, action: Action, ctx: Ctx) -> i64 {
        match action {
            Action::Identify { traits } => self.apply_traits(subject, traits, ctx.time),
            Action::Track { event, properties } => {
                self.track(subject, installation, event, properties, ctx.time);
                subject
            }
            Action::Alias { previous_id } => {
                self.alias(subject, previous_id, ctx.time);
                subject
            }
            Action::UpsertPerson { traits, devices } => {
                let subject = self.apply_traits(subject, traits, ctx.time);
                for device in devices {
                    self.upsert_listed_device(subject, device, ctx.time);
                }
                subject
            }
            Action::SignOut | Action::UpsertInstallation => subject,
        }
    }

    fn installation_for(
        &mut self,
        device_id: &str,
        anonymous_id: Option<&str>,
        time: i64,
    ) -> (i64, i64) {
        if let Some(&id) = self.index.by_device.get(device_id) {
            if let Some(i) = self.installations.get(&id) {
                return (id, i.person);
            }
        }
        let person = self.anonymous_person_for(anonymous_id, device_id, time);
        let id = self.next_installation;
        self.next_installation += 1;
        let device_id: Arc<str> = device_id.into();
        self.index.by_device.insert(device_id.clone(), id);
        self.installations
            .insert(id, Installation::new(device_id, person, time));
        if let Some(p) = self.persons.get_mut(&person) {
            p.installations.push(id);
        }
        (id, person)
    }

    /// The app ran: the device was seen, and is installed whatever an uninstall notice said.
    fn touch(&mut self, installation: i64, time: i64) {
        if let Some(i) = self.installations.get_mut(&installation) {
            i.last_seen_at = i.last_seen_at.max(time);
            i.uninstalled_at = None;
        }
    }

    fn update_device(&mut self, installation: i64, device: Device) {
        learn_types(
            &mut self.installation_types,
            &mut self.report.new_catalog.installation,
            &device.data.custom,
        );
        if let Some(token) = device.token {
            self.set_token(installation, token);
        }
        if let Some(i) = self.installations.get_mut(&installation) {
            i.data.update(device.data);
        }
    }

    /// A push token belongs to one installation: a token reported by a second device (a
    /// reinstall under a new device id) moves to it, and the first loses its push registration.
    fn set_token(&mut self, installation: i64, token: String) {
        let Some(i) = self.installations.get_mut(&installation) else {
            return;
        };
        if i.token.as_deref() == Some(token.as_str()) {
            return;
        }
        let token: Arc<str> = token.into();
        if let Some(old) = i.token.replace(token.clone()) {
            self.index.by_token.remove(&old);
        }
        if let Some(previous) = self.index.by_token.insert(token, installation) {
            if let Some(p) = self.installations.get_mut(&previous) {
                p.token = None;
            }
        }
    }

    fn allocate_person(&mut self) -> i64 {
        let id = self.next_person;
        self.next_person += 1;
        id
    }

    fn new_identified_person(&mut self, user_id: &str, time: i64) -> i64 {
        let id = self.allocate_person();
        let user_id: Arc<str> = user_id.into();
        let mut person = Person::new(user_id.clone(), time);
        person.external_user_id = Some(user_id.clone());
        self.index.by_user_id.insert(user_id, id);
        self.persons.insert(id, person);
        id
    }

    /// A new anonymous person. Keyed by the anonymousId when it is free (its public id is then
    /// derived from it); else by the device and the new key, which no other person shares.
    fn new_anonymous_person(
        &mut self,
        anonymous_id: Option<&str>,
        device_id: &str,
        time: i64,
    ) -> i64 {
        let id = self.allocate_person();
        let free = anonymous_id.filter(|a| !self.index.by_anonymous_id.contains_key(*a));
        let public_id = match free {
            Some(a) => derived_id("anon", &["a", a]),
            None => derived_id("anon", &["d", device_id, &id.to_string()]),
        };
        let mut person = Person::new(public_id.into(), time);
        if let Some(a) = free {
            let a: Arc<str> = a.into();
            self.index.by_anonymous_id.insert(a.clone(), id);
            person.anonymous_ids.push(a);
        }
        self.persons.insert(id, person);
        id
    }

    fn anonymous_person_for(
        &mut self,
        anonymous_id: Option<&str>,
        device_id: &str,
        time: i64,
    ) -> i64 {
        match self.anonymous_person_of(anonymous_id) {
            Some(id) => id,
            None => self.new_anonymous_person(anonymous_id, device_id, time),
        }
    }

    fn set_external_user_id(&mut self, person: i64, user_id: &str, time: i64) {
        let Some(p) = self.persons.get_mut(&person) else {
            return;
        };
        let user_id: Arc<str> = user_id.into();
        self.index.by_user_id.insert(user_id.clone(), person);
        p.public_id = user_id.clone();
        p.external_user_id = Some(user_id);
        p.modified_at = p.modified_at.max(time);
    }

    /// Later calls under an anonymousId nobody has yet resolve to the call's person.
    fn bind_anonymous_id(&mut self, anonymous_id: Option<&str>, person: i64) {
        let Some(a) = anonymous_id else { return };
        if self.index.by_anonymous_id.contains_key(a) {
            return;
        }
        if let Some(p) = self.persons.get_mut(&person) {
            let a: Arc<str> = a.into();
            self.index.by_anonymous_id.insert(a.clone(), person);
            p.anonymous_ids.push(a);
        }
    }

    /// Links a device to an identified `target`: merges its anonymous person into the target
    /// (personalize), or moves it there from another identified person (depersonalize, then
    /// personalize: the history stays with the person it leaves).
    fn link_to(&mut self, installation: i64, target: i64, time: i64) {
        let Some(current) = self.installations.get(&installation).map(|i| i.person) else {
            return;
        };
        if current == target {
            return;
        }
        if self.is_identified(current) {
            self.lifecycle_event(DEPERSONALIZE, current, installation, time);
            self.move_installation(installation, target);
            self.lifecycle_event(PERSONALIZE, target, installation, time);
        } else {
            self.merge(current, target, time, MergeKind::Personalize);
        }
    }

    /// Moves the device to the anonymousId's anonymous person (a new one if there is none);
    /// the Depersonalize event belongs to the person it leaves. Returns the new person.
    fn depersonalize(
        &mut self,
        installation: i64,
        current: i64,
        anonymous_id: Option<&str>,
        time: i64,
    ) -> i64 {
        let device_id = self
            .installations
            .get(&installation)
            .map(|i| i.device_id.clone());
        let device_id = device_id.as_deref().unwrap_or_default();
        let anonymous = self.anonymous_person_for(anonymous_id, device_id, time);
        self.lifecycle_event(DEPERSONALIZE, current, installation, time);
        self.move_installation(installation, anonymous);
        if let Some(i) = self.installations.get_mut(&installation) {
            i.depersonalized = true;
        }
        anonymous
    }

    fn move_installation(&mut self, installation: i64, to: i64) {
        let Some(i) = self.installations.get_mut(&installation) else {
            return;
        };
        let from = std::mem::replace(&mut i.person, to);
        if let Some(p) = self.persons.get_mut(&from) {
            p.installations.retain(|&id| id != installation);
        }
        if let Some(p) = self.persons.get_mut(&to) {
            p.installations.push(installation);
        }
    }

    /// Records a Personalize or Depersonalize of an active installation (an uninstalled one
    /// changes hands silently: there is no app to personalize).
    fn lifecycle_event(&mut self, event: usize, person: i64, installation: i64, time: i64) {
        if !self
            .installations
            .get(&installation)
            .is_some_and(Installation::active)
        {
            return;
        }
        if event == PERSONALIZE {
            self.report.personalized += 1;
        } else {
            self.report.depersonalized += 1;
        }
        self.record(event, time, person, Some(installation), BTreeMap::new());
    }

    /// Merges `loser` into `winner`: devices, identities and attributes move (the winner's
    /// non-null attributes win, lists are unioned); events follow through the union-find parent
    /// at the end. Devices of an anonymous loser become personalized, with their events.
    fn merge(&mut self, loser: i64, winner: i64, time: i64, kind: MergeKind) {
        if loser == winner || !self.persons.contains_key(&winner) {
            return;
        }
        let Some(lost) = self.persons.remove(&loser) else {
            return;
        };
        let Some(won) = self.persons.get_mut(&winner) else {
            return;
        };
        let lost_was_anonymous = !lost.identified();
        let ix = &mut self.index;
        if let Some(user_id) = lost.external_user_id {
            ix.by_user_id.insert(user_id.clone(), winner);
            if won.external_user_id.is_none() {
                won.public_id = user_id.clone();
                won.external_user_id = Some(user_id);
            } else {
                won.merged_user_ids.push(user_id);
            }
        }
        repoint(
            &mut won.merged_user_ids,
            &mut ix.by_user_id,
            lost.merged_user_ids,
            winner,
        );
        repoint(
            &mut won.anonymous_ids,
            &mut ix.by_anonymous_id,
            lost.anonymous_ids,
            winner,
        );
        repoint(&mut won.emails, &mut ix.by_email, lost.emails, winner);
        repoint(&mut won.phones, &mut ix.by_phone, lost.phones, winner);
        won.attributes.fill(lost.attributes);
        won.modified_at = won.modified_at.max(time);
        won.installations.extend(&lost.installations);
        let personalizes = lost_was_anonymous && won.identified();
        for id in &lost.installations {
            if let Some(i) = self.installations.get_mut(id) {
                i.person = winner;
            }
        }
        self.merged.insert(loser, winner);
        match kind {
            MergeKind::Personalize => self.report.merged.personalize += 1,
            MergeKind::Alias => self.report.merged.alias += 1,
            MergeKind::Conflict => self.report.merged.conflict += 1,
        }
        if personalizes {
            for id in lost.installations {
                self.lifecycle_event(PERSONALIZE, winner, id, time);
            }
        }
    }

    /// Applies traits to `subject` after resolving identity conflicts (which validation left
    /// only under the merge policy); returns the person that has them.
    fn apply_traits(&mut self, subject: i64, traits: Traits, time: i64) -> i64 {
        let subject = self.merge_conflicts(subject, &traits, time);
        learn_types(
            &mut self.person_types,
            &mut self.report.new_catalog.person,
            &traits.attributes.custom,
        );
        let Some(person) = self.persons.get_mut(&subject) else {
            return subject;
        };
        let was_identified = person.identified();
        let ix = &mut self.index;
        let mut changed = claim(&mut person.emails, &mut ix.by_email, traits.emails, subject);
        changed |= claim(&mut person.phones, &mut ix.by_phone, traits.phones, subject);
        if let Some(created_at) = traits.created_at.filter(|t| *t != person.created_at) {
            person.created_at = created_at;
            changed = true;
        }
        changed |= person.attributes.update(traits.attributes);
        if changed {
            person.modified_at = person.modified_at.max(time);
        }
        if !was_identified && person.identified() {
            // An email or phone identifies an anonymous person: its devices are personalized.
            for id in person.installations.clone() {
                self.lifecycle_event(PERSONALIZE, subject, id, time);
            }
        }
        subject
    }

    /// Merges the holders of identities the traits claim with `subject`: into it when it is
    /// identified; else `subject` (anonymous) merges into the first holder and the others follow,
    /// as anonymous persons always merge into identified ones.
    fn merge_conflicts(&mut self, subject: i64, traits: &Traits, time: i64) -> i64 {
        let mut holders: Vec<i64> = Vec::new();
        for c in self.conflicts(traits, Some(subject)) {
            if !holders.contains(&c.holder) {
                holders.push(c.holder);
            }
        }
        let Some(&first) = holders.first() else {
            return subject;
        };
        let survivor = if self.is_identified(subject) {
            subject
        } else {
            first
        };
        for person in std::iter::once(subject).chain(holders) {
            self.merge(person, survivor, time, MergeKind::Conflict);
        }
        survivor
    }

    /// Merges the person `previous_id` names (userIds first, then anonymousIds) into `subject`;
    /// an id nobody has yet becomes one of `subject`'s anonymousIds.
    fn alias(&mut self, subject: i64, previous_id: String, time: i64) {
        let previous = self
            .index
            .by_user_id
            .get(previous_id.as_str())
            .or_else(|| self.index.by_anonymous_id.get(previous_id.as_str()))
            .copied();
        match previous {
            Some(previous) => self.merge(previous, subject, time, MergeKind::Alias),
            None => self.bind_anonymous_id(Some(&previous_id), subject),
        }
    }

    fn upsert_listed_device(&mut self, subject: i64, listed: PersonDevice, time: i64) {
        let (installation, _) = self.installation_for(&listed.device.id, None, time);
        self.update_device(installation, listed.device);
        if let (Some(hint), Some(i)) = (listed.primary, self.installations.get_mut(&installation)) {
            i.primary_hint = Some(hint);
        }
        self.link_to(installation, subject, time);
    }

    fn track(
        &mut self,
        subject: i64,
        installation: Option<i64>,
        event: String,
        properties: BTreeMap<String, Value>,
        time: i64,
    ) {
        let id = self.event_id(event);
        let recorded = match (
            id,
            installation.and_then(|i| self.installations.get_mut(&i)),
        ) {
            (INSTALL, Some(i)) => {
                i.installed_at = time;
                true
            }
            (UNINSTALL, Some(i)) => {
                // A second notice of the same uninstall records nothing.
                let first = i.active();
                i.uninstalled_at = i.uninstalled_at.or(Some(time));
                first
            }
            (APP_LAUNCH, Some(i)) => {
                let throttled = i
                    .last_app_launch_at
                    .is_some_and(|previous| time.saturating_sub(previous) <= APP_LAUNCH_GAP);
                if !throttled {
                    i.last_app_launch_at = Some(time);
                }
                self.report.throttled += u64::from(throttled);
                !throttled
            }
            _ => true,
        };
        if recorded {
            self.record(id, time, subject, installation, properties);
        }
    }

    /// The event's position in the event table, declaring (and reporting) it on first sight.
    fn event_id(&mut self, name: String) -> usize {
        if let Lookup::Found(id) = self.event_names.lookup(&name) {
            return id;
        }
        self.report
            .new_catalog
            .events
            .entry(name.clone())
            .or_default();
        self.declare_event(name)
    }

    fn declare_event(&mut self, name: String) -> usize {
        let id = self.events.len();
        self.event_names.insert(name.clone(), id);
        self.events.push(EventDef::new(name));
        id
    }

    fn record(
        &mut self,
        event: usize,
        time: i64,
        person: i64,
        installation: Option<i64>,
        properties: BTreeMap<String, Value>,
    ) {
        if let Some(def) = self.events.get_mut(event) {
            let values = def.values(properties, &mut self.report.new_catalog);
            def.rows.push(EventRow {
                event_time: time,
                person_id: person,
                installation_id: installation,
                values,
            });
        }
    }

    // -- finish -------------------------------------------------------------------------------

    /// The snapshot's rows: primary devices decided, events resolved to their final persons and
    /// sorted.
    pub fn finish(self) -> Profiles {
        let primary = self.primary_installations();
        let roots = resolve_roots(&self.merged);
        let Replay {
            persons,
            installations,
            events,
            loaded_persons_end,
            report,
            ..
        } = self;
        let identified: HashSet<i64> = persons
            .iter()
            .filter(|(_, p)| p.identified())
            .map(|(id, _)| *id)
            .collect();
        let mut installation_rows: Vec<InstallationRow> = installations
            .into_iter()
            .map(|(id, i)| installation_row(id, i, &identified, &primary))
            .collect();
        installation_rows.sort_unstable_by_key(|r| (r.person_id, r.installation_id));
        let mut person_rows: Vec<PersonRow> =
            persons.into_iter().map(|(id, p)| p.into_row(id)).collect();
        person_rows.sort_unstable_by_key(|r| r.person_id);
        let mut tables: Vec<EventTable> = events
            .into_iter()
            .filter(|def| !def.rows.is_empty())
            .map(|def| event_table(def, &roots))
            .collect();
        tables.sort_unstable_by(|a, b| a.event.cmp(&b.event));
        let merged_into = roots
            .into_iter()
            .filter(|(old, _)| *old < loaded_persons_end)
            .collect();
        Profiles {
            persons: person_rows,
            installations: installation_rows,
            events: tables,
            merged_into,
            report,
        }
    }

    /// Each person's primary device among their active installations: the one the data says
    /// (a person row's isPrimary), else the most recently seen, ties to the greater id.
    fn primary_installations(&self) -> HashSet<i64> {
        self.persons
            .values()
            .filter_map(|p| {
                p.installations
                    .iter()
                    .filter_map(|id| Some((*id, self.installations.get(id)?)))
                    .filter(|(_, i)| i.active())
                    .max_by_key(|(id, i)| {
                        (
                            i.primary_hint == Some(true),
                            i.primary_hint != Some(false),
                            i.last_seen_at,
                            *id,
                        )
                    })
                    .map(|(id, _)| id)
            })
            .collect()
    }
}

fn check_key(what: &str, id: i64) -> Result<(), StateError> {
    if (0..=MAX_ID).contains(&id) {
        Ok(())
    } else {
        Err(StateError(format!(
            "{what} id {id} is outside 0..={MAX_ID}"
        )))
    }
}

fn index_unique(
    index: &mut HashMap<Arc<str>, i64>,
    value: Arc<str>,
    owner: i64,
    what: &str,
) -> Result<(), StateError> {
    match index.insert(value.clone(), owner) {
        Some(other) if other != owner => Err(StateError(format!(
            "{what} `{value}` belongs to both {other} and {owner}"
        ))),
        _ => Ok(()),
    }
}

fn index_all(
    index: &mut HashMap<Arc<str>, i64>,
    values: Vec<String>,
    owner: i64,
    what: &str,
) -> Result<Vec<Arc<str>>, StateError> {
    let mut list: Vec<Arc<str>> = Vec::with_capacity(values.len());
    for value in values {
        let value: Arc<str> = value.into();
        index_unique(index, value.clone(), owner, what)?;
        if !list.contains(&value) {
            list.push(value);
        }
    }
    Ok(list)
}

/// Every merged person → the person it finally belongs to (chains of merges followed, each link
/// once). The walk is bounded, so even a corrupt parent map cannot loop.
fn resolve_roots(parents: &HashMap<i64, i64>) -> HashMap<i64, i64> {
    let mut roots: HashMap<i64, i64> = HashMap::with_capacity(parents.len());
    let mut path = Vec::new();
    for &start in parents.keys() {
        let mut at = start;
        let root = loop {
            if let Some(&root) = roots.get(&at) {
                break root;
            }
            match parents.get(&at) {
                Some(&next) if path.len() <= parents.len() => {
                    path.push(at);
                    at = next;
                }
                _ => break at,
            }
        };
        for id in path.drain(..) {
            roots.insert(id, root);
        }
    }
    roots
}

fn installation_row(
    id: i64,
    i: Installation,
    identified: &HashSet<i64>,
    primary: &HashSet<i64>,
) -> InstallationRow {
    let push_registration_id = match &i.token {
        Some(token) => token.to_string(),
        None => tokenless_registration_id(&i.device_id),
    };
    InstallationRow {
        installation_id: id,
        device_id: i.device_id.to_string(),
        push_registration_id,
        token: i.token.as_deref().map(str::to_string),
        person_id: i.person,
        state: i.state(identified.contains(&i.person)),
        push_registration_enabled: i.token.is_some() && i.active(),
        primary_device: primary.contains(&id),
        installed_at: i.installed_at,
        last_seen_at: i.last_seen_at,
        uninstalled_at: i.uninstalled_at,
        last_app_launch_at: i.last_app_launch_at,
        primary_hint: i.primary_hint,
        data: i.data,
    }
}

fn event_table(def: EventDef, roots: &HashMap<i64, i64>) -> EventTable {
    let mut rows = def.rows;
    for row in &mut rows {
        if let Some(&root) = roots.get(&row.person_id) {
            row.person_id = root;
        }
    }
    // Unstable sort: no n/2 buffer for 50M AppLaunch rows, and still deterministic.
    rows.sort_unstable_by_key(|r| (r.person_id, r.event_time, r.installation_id));
    EventTable {
        event: def.name,
        properties: def.columns,
        rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: i64 = 1_000_000;
    /// 2026-01-01T00:00:00Z.
    const T0: i64 = 1_767_225_600 * SEC;

    fn at(seconds: i64) -> i64 {
        T0 + seconds * SEC
    }

    /// A call under construction.
    struct C(Call);

    impl C {
        fn new(seconds: i64, action: Action) -> C {
            C(Call {
                origin: Origin {
                    file: "calls.jsonl".into(),
                    line: 0,
                },
                time: Some(at(seconds)),
                message_id: None,
                anonymous_id: None,
                user_id: None,
                device: None,
                action,
            })
        }

        fn micros(mut self, time: i64) -> C {
            self.0.time = Some(time);
            self
        }

        fn no_time(mut self) -> C {
            self.0.time = None;
            self
        }

        fn device(mut self, id: &str) -> C {
            self.0.device = Some(Device {
                id: id.into(),
                ..Device::default()
            });
            self
        }

        fn data(mut self, f: impl FnOnce(&mut Device)) -> C {
            if let Some(d) = &mut self.0.device {
                f(d);
            }
            self
        }

        fn token(self, token: &str) -> C {
            self.data(|d| d.token = Some(token.into()))
        }

        fn user(mut self, id: &str) -> C {
            self.0.user_id = Some(id.into());
            self
        }

        fn anon(mut self, id: &str) -> C {
            self.0.anonymous_id = Some(id.into());
            self
        }

        fn message(mut self, id: &str) -> C {
            self.0.message_id = Some(id.into());
            self
        }
    }

    fn track(event: &str) -> Action {
        track_with(event, &[])
    }

    fn track_with(event: &str, properties: &[(&str, Value)]) -> Action {
        Action::Track {
            event: event.into(),
            properties: properties
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }

    fn identify() -> Action {
        identify_with(|_| {})
    }

    fn identify_with(f: impl FnOnce(&mut Traits)) -> Action {
        let mut traits = Traits::default();
        f(&mut traits);
        Action::Identify { traits }
    }

    fn email(address: &str) -> Action {
        identify_with(|t| t.emails = vec![address.into()])
    }

    fn custom(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    /// A replay with its de-duplication keys; numbers the calls' lines.
    struct Run {
        replay: Replay,
        seen: HashSet<u64>,
        line: u64,
    }

    impl Run {
        fn new() -> Run {
            Run::with(ConflictPolicy::Reject, Catalog::default())
        }

        fn with(policy: ConflictPolicy, catalog: Catalog) -> Run {
            let replay = Replay::new(ExistingState::default(), policy, catalog).expect("empty");
            Run::from(replay)
        }

        fn from(replay: Replay) -> Run {
            Run {
                replay,
                seen: HashSet::new(),
                line: 0,
            }
        }

        fn apply(&mut self, call: C) -> Result<(), Reject> {
            self.line += 1;
            let mut call = call.0;
            call.origin.line = self.line;
            self.replay.apply(call, &mut self.seen)
        }

        fn ok(&mut self, calls: Vec<C>) {
            for call in calls {
                if let Err(r) = self.apply(call) {
                    panic!("rejected: {r}");
                }
            }
        }

        fn reject(&mut self, call: C) -> String {
            match self.apply(call) {
                Ok(()) => panic!("accepted"),
                Err(r) => r.to_string(),
            }
        }

        fn finish(self) -> Profiles {
            self.replay.finish()
        }
    }

    fn run(calls: Vec<C>) -> Profiles {
        let mut r = Run::new();
        r.ok(calls);
        r.finish()
    }

    /// (person, installation, seconds after T0) of every row of `event`.
    fn events(p: &Profiles, event: &str) -> Vec<(i64, Option<i64>, i64)> {
        p.events
            .iter()
            .filter(|t| t.event == event)
            .flat_map(|t| &t.rows)
            .map(|r| (r.person_id, r.installation_id, (r.event_time - T0) / SEC))
            .collect()
    }

    fn person<'a>(p: &'a Profiles, user_id: &str) -> &'a PersonRow {
        p.persons
            .iter()
            .find(|r| r.external_user_id.as_deref() == Some(user_id))
            .expect("person")
    }

    fn person_id(p: &Profiles, id: i64) -> &PersonRow {
        p.persons
            .iter()
            .find(|r| r.person_id == id)
            .expect("person")
    }

    fn installation<'a>(p: &'a Profiles, device_id: &str) -> &'a InstallationRow {
        p.installations
            .iter()
            .find(|r| r.device_id == device_id)
            .expect("installation")
    }

    // -- rule 1: devices and installations ----------------------------------------------------

    #[test]
    fn a_first_call_creates_an_anonymous_installation() {
        let p = run(vec![
            C::new(10, track("AppLaunch"))
                .device("d1")
                .anon("a1")
                .data(|d| {
                    d.data.platform = Some("ios".into());
                    d.data.os_version = Some("17.1".into());
                }),
            C::new(100, track("Purchase"))
                .device("d1")
                .anon("a1")
                .data(|d| {
                    d.data.device_model = Some("iPhone 15".into());
                }),
        ]);
        assert_eq!(p.persons.len(), 1);
        let owner = &p.persons[0];
        assert!(!owner.identified);
        assert_eq!(owner.public_id, derived_id("anon", &["a", "a1"]));
        assert_eq!(owner.anonymous_ids, ["a1"]);
        let i = installation(&p, "d1");
        assert_eq!(i.person_id, owner.person_id);
        assert_eq!(i.state, InstallationState::Anonymous);
        assert_eq!((i.installed_at, i.last_seen_at), (at(10), at(100)));
        // Later non-null values overwrite, nulls keep what was known.
        assert_eq!(i.data.platform.as_deref(), Some("iOS"));
        assert_eq!(i.data.os_version.as_deref(), Some("17.1"));
        assert_eq!(i.data.device_model.as_deref(), Some("iPhone 15"));
        assert_eq!(events(&p, "AppLaunch"), [(owner.person_id, Some(0), 10)]);
    }

    #[test]
    fn installed_at_is_the_install_call_else_first_seen() {
        let p = run(vec![
            C::new(5, track("AppLaunch")).device("d1"),
            C::new(20, track("Install")).device("d1"),
            C::new(7, track("AppLaunch")).device("d2"),
        ]);
        assert_eq!(installation(&p, "d1").installed_at, at(20));
        assert_eq!(installation(&p, "d2").installed_at, at(7));
        assert_eq!(events(&p, "Install").len(), 1);
    }

    #[test]
    fn push_registration_follows_the_token() {
        let p = run(vec![
            C::new(0, track("AppLaunch")).device("d1"),
            C::new(0, track("AppLaunch")).device("d2").token("tok-2"),
        ]);
        let d1 = installation(&p, "d1");
        assert_eq!(d1.push_registration_id, tokenless_registration_id("d1"));
        assert_eq!(d1.push_registration_id, "d1");
        assert!(!d1.push_registration_enabled);
        let d2 = installation(&p, "d2");
        assert_eq!(d2.push_registration_id, "tok-2");
        assert!(d2.push_registration_enabled);
    }

    #[test]
    fn a_token_moves_to_the_device_that_reports_it() {
        let p = run(vec![
            C::new(0, track("AppLaunch")).device("d1").token("tok"),
            C::new(60, track("Install")).device("d2").token("tok"),
        ]);
        assert!(!installation(&p, "d1").push_registration_enabled);
        assert_eq!(
            installation(&p, "d1").push_registration_id,
            tokenless_registration_id("d1")
        );
        assert_eq!(installation(&p, "d2").push_registration_id, "tok");
    }

    #[test]
    fn uninstall_disables_push_once() {
        let p = run(vec![
            C::new(0, track("Install")).device("d1").token("tok"),
            C::new(50, track("Uninstall")).device("d1"),
            C::new(90, track("Uninstall")).device("d1"),
        ]);
        let i = installation(&p, "d1");
        assert_eq!(i.state, InstallationState::Uninstalled);
        assert_eq!(i.uninstalled_at, Some(at(50)));
        assert!(!i.push_registration_enabled);
        assert!(!i.primary_device);
        // An uninstall notice is not the app running.
        assert_eq!(i.last_seen_at, at(0));
        assert_eq!(events(&p, "Uninstall").len(), 1);
        assert_eq!(p.report.accepted, 3);
    }

    #[test]
    fn a_reinstall_restores_the_state_before_the_uninstall() {
        let p = run(vec![
            C::new(0, track("Install")).device("d1").token("tok"),
            C::new(10, identify()).device("d1").user("u1"),
            C::new(50, track("Uninstall")).device("d1"),
            C::new(900, track("Install")).device("d1"),
            C::new(0, track("Install")).device("d2"),
            C::new(10, Action::SignOut).device("d2").user("u2"),
        ]);
        let i = installation(&p, "d1");
        assert_eq!(i.state, InstallationState::Personalized);
        assert_eq!(i.person_id, person(&p, "u1").person_id);
        assert_eq!((i.installed_at, i.uninstalled_at), (at(900), None));
        assert!(i.push_registration_enabled && i.primary_device);
        assert_eq!(events(&p, "Install").len(), 3);
    }

    #[test]
    fn any_app_call_reactivates_an_uninstalled_device() {
        let p = run(vec![
            C::new(0, track("Install")).device("d1"),
            C::new(50, track("Uninstall")).device("d1"),
            C::new(60, track("AppLaunch")).device("d1"),
        ]);
        let i = installation(&p, "d1");
        assert_eq!(i.state, InstallationState::Anonymous);
        assert_eq!((i.installed_at, i.last_seen_at), (at(0), at(60)));
    }

    #[test]
    fn platforms_are_normalized_or_rejected() {
        let mut r = Run::new();
        r.ok(vec![C::new(0, track("AppLaunch"))
            .device("d1")
            .data(|d| d.data.platform = Some("HarmonyOS".into()))]);
        let reason = r.reject(
            C::new(0, track("AppLaunch"))
                .device("d2")
                .data(|d| d.data.platform = Some("Windows".into())),
        );
        assert_eq!(
            reason,
            "calls.jsonl:2: unknown platform `Windows` (expected Android, iOS or Huawei)"
        );
        let p = r.finish();
        assert_eq!(
            installation(&p, "d1").data.platform.as_deref(),
            Some("Huawei")
        );
        assert_eq!(p.installations.len(), 1);
    }

    // -- rule 2: personalize ------------------------------------------------------------------

    #[test]
    fn personalizing_merges_the_anonymous_history_into_the_identified_person() {
        let p = run(vec![
            C::new(0, track("Install")).device("d1").anon("a1"),
            C::new(40, track("AppLaunch")).device("d1").anon("a1"),
            C::new(
                100,
                identify_with(|t| t.attributes.first_name = Some("Ana".into())),
            )
            .device("d1")
            .anon("a1")
            .user("u1"),
        ]);
        assert_eq!(p.persons.len(), 1, "the anonymous person disappears");
        let u1 = person(&p, "u1");
        assert!(u1.identified);
        assert_eq!(u1.public_id, "u1");
        assert_eq!(u1.attributes.first_name.as_deref(), Some("Ana"));
        assert_eq!(u1.anonymous_ids, ["a1"]);
        let i = installation(&p, "d1");
        assert_eq!(i.state, InstallationState::Personalized);
        assert_eq!(i.person_id, u1.person_id);
        let me = u1.person_id;
        assert_eq!(events(&p, "Install"), [(me, Some(0), 0)]);
        assert_eq!(events(&p, "AppLaunch"), [(me, Some(0), 40)]);
        assert_eq!(events(&p, "Personalize"), [(me, Some(0), 100)]);
        assert_eq!(p.report.merged.personalize, 1);
        assert_eq!(p.report.personalized, 1);
        // Both persons were created by this replay: no earlier snapshot to rewrite.
        assert!(p.merged_into.is_empty());
    }

    #[test]
    fn any_call_with_a_user_id_personalizes_its_device() {
        let p = run(vec![
            C::new(0, track("Install")).device("d1"),
            C::new(10, track("Purchase")).device("d1").user("u1"),
        ]);
        let me = person(&p, "u1").person_id;
        assert_eq!(events(&p, "Purchase"), [(me, Some(0), 10)]);
        assert_eq!(events(&p, "Install"), [(me, Some(0), 0)]);
        assert_eq!(events(&p, "Personalize").len(), 1);
    }

    #[test]
    fn a_second_device_personalizes_into_the_existing_person() {
        let p = run(vec![
            C::new(0, identify()).device("d1").user("u1"),
            C::new(100, identify()).device("d2").anon("a2").user("u1"),
        ]);
        assert_eq!(p.persons.len(), 1);
        let me = person(&p, "u1").person_id;
        assert!(p.installations.iter().all(|i| i.person_id == me));
        assert_eq!(p.report.merged.personalize, 2);
        assert_eq!(events(&p, "Personalize").len(), 2);
    }

    // -- rule 3: depersonalize ----------------------------------------------------------------

    fn personalized_device() -> Vec<C> {
        vec![
            C::new(0, track("Install")).device("d1").anon("a1"),
            C::new(10, identify()).device("d1").anon("a1").user("u1"),
            C::new(100, track("AppLaunch"))
                .device("d1")
                .anon("a1")
                .user("u1"),
        ]
    }

    #[test]
    fn signing_out_depersonalizes_and_history_stays() {
        let mut calls = personalized_device();
        calls.push(
            C::new(200, Action::SignOut)
                .device("d1")
                .anon("a1")
                .user("u1"),
        );
        calls.push(C::new(300, track("AppLaunch")).device("d1").anon("a2"));
        let p = run(calls);
        let u1 = person(&p, "u1").person_id;
        let i = installation(&p, "d1");
        assert_eq!(i.state, InstallationState::Depersonalized);
        let anon = person_id(&p, i.person_id);
        assert!(!anon.identified);
        assert_ne!(anon.person_id, u1);
        assert_eq!(events(&p, "Depersonalize"), [(u1, Some(0), 200)]);
        assert_eq!(events(&p, "Install"), [(u1, Some(0), 0)]);
        let mut launches = events(&p, "AppLaunch");
        launches.sort_by_key(|e| e.2);
        assert_eq!(
            launches,
            [(u1, Some(0), 100), (anon.person_id, Some(0), 300)]
        );
        assert_eq!(p.report.depersonalized, 1);
        assert!(p.installations.iter().all(|i| i.person_id != u1));
    }

    #[test]
    fn a_new_anonymous_id_without_user_id_depersonalizes() {
        let mut calls = personalized_device();
        calls.push(C::new(200, track("ViewProduct")).device("d1").anon("a2"));
        calls.push(C::new(300, track("ViewProduct")).device("d1").anon("a2"));
        let p = run(calls);
        let u1 = person(&p, "u1").person_id;
        let anon = installation(&p, "d1").person_id;
        assert_eq!(
            person_id(&p, anon).public_id,
            derived_id("anon", &["a", "a2"])
        );
        assert_eq!(events(&p, "Depersonalize"), [(u1, Some(0), 200)]);
        // The call that revealed the sign-out is already the new anonymous person's.
        assert_eq!(
            events(&p, "ViewProduct"),
            [(anon, Some(0), 200), (anon, Some(0), 300)]
        );
    }

    #[test]
    fn the_same_anonymous_id_without_user_id_stays_personalized() {
        let mut calls = personalized_device();
        calls.push(C::new(200, track("ViewProduct")).device("d1").anon("a1"));
        calls.push(C::new(300, track("ViewProduct")).device("d1"));
        let p = run(calls);
        let u1 = person(&p, "u1").person_id;
        assert_eq!(
            installation(&p, "d1").state,
            InstallationState::Personalized
        );
        assert_eq!(
            events(&p, "ViewProduct"),
            [(u1, Some(0), 200), (u1, Some(0), 300)]
        );
        assert!(events(&p, "Depersonalize").is_empty());
    }

    #[test]
    fn identifying_as_another_user_moves_the_device() {
        let mut calls = personalized_device();
        calls.push(C::new(200, identify()).device("d1").anon("a1").user("u2"));
        calls.push(C::new(300, track("ViewProduct")).device("d1").user("u2"));
        let p = run(calls);
        let (u1, u2) = (person(&p, "u1").person_id, person(&p, "u2").person_id);
        assert_eq!(installation(&p, "d1").person_id, u2);
        assert_eq!(
            installation(&p, "d1").state,
            InstallationState::Personalized
        );
        assert_eq!(events(&p, "Depersonalize"), [(u1, Some(0), 200)]);
        let personalize = events(&p, "Personalize");
        assert!(personalize.contains(&(u1, Some(0), 10)));
        assert!(personalize.contains(&(u2, Some(0), 200)));
        assert_eq!(events(&p, "Install"), [(u1, Some(0), 0)]);
        assert_eq!(events(&p, "ViewProduct"), [(u2, Some(0), 300)]);
        assert_eq!(p.persons.len(), 2, "no anonymous person in between");
    }

    #[test]
    fn signing_out_an_anonymous_device_changes_nothing() {
        let p = run(vec![
            C::new(0, track("Install")).device("d1").anon("a1"),
            C::new(10, Action::SignOut).device("d1").anon("a1"),
            C::new(20, Action::SignOut).user("u9"),
        ]);
        assert_eq!(installation(&p, "d1").state, InstallationState::Anonymous);
        assert_eq!(p.persons.len(), 1, "a device-less sign-out creates nobody");
        assert_eq!(p.report.accepted, 3);
    }

    // -- rule 4: alias ------------------------------------------------------------------------

    #[test]
    fn alias_merges_an_anonymous_person_with_its_devices() {
        let p = run(vec![
            C::new(0, track("Install")).device("d1").anon("a1"),
            C::new(5, track("ViewProduct")).anon("a1"),
            C::new(
                10,
                Action::Alias {
                    previous_id: "a1".into(),
                },
            )
            .user("u1"),
        ]);
        assert_eq!(p.persons.len(), 1);
        let me = person(&p, "u1").person_id;
        assert_eq!(events(&p, "ViewProduct"), [(me, None, 5)]);
        assert_eq!(events(&p, "Install"), [(me, Some(0), 0)]);
        assert_eq!(events(&p, "Personalize"), [(me, Some(0), 10)]);
        assert_eq!(
            installation(&p, "d1").state,
            InstallationState::Personalized
        );
        assert_eq!(p.report.merged.alias, 1);
    }

    #[test]
    fn alias_merges_two_users_and_both_ids_keep_resolving() {
        let p = run(vec![
            C::new(
                0,
                identify_with(|t| {
                    t.emails = vec!["ana@x.hr".into()];
                    t.attributes.first_name = Some("Ana".into());
                    t.attributes.city = Some("Split".into());
                    t.attributes.tags = vec!["a".into(), "b".into()];
                    t.attributes.custom = custom(&[("loyaltyPoints", Value::Num(5.0))]);
                }),
            )
            .user("u1"),
            C::new(
                10,
                identify_with(|t| {
                    t.emails = vec!["ana@y.hr".into()];
                    t.attributes.first_name = Some("Anna".into());
                    t.attributes.tags = vec!["c".into(), "a".into()];
                }),
            )
            .user("u2"),
            C::new(
                20,
                Action::Alias {
                    previous_id: "u1".into(),
                },
            )
            .user("u2"),
            C::new(30, track("Purchase")).user("u1"),
        ]);
        assert_eq!(p.persons.len(), 1);
        let me = person(&p, "u2");
        assert_eq!(me.merged_user_ids, ["u1"]);
        assert_eq!(me.emails, ["ana@y.hr", "ana@x.hr"]);
        // The survivor's non-null attributes win, the loser's fill the gaps, lists add up.
        assert_eq!(me.attributes.first_name.as_deref(), Some("Anna"));
        assert_eq!(me.attributes.city.as_deref(), Some("Split"));
        assert_eq!(me.attributes.tags, ["c", "a", "b"]);
        assert_eq!(me.attributes.custom["loyaltyPoints"], Value::Num(5.0));
        assert_eq!(events(&p, "Purchase"), [(me.person_id, None, 30)]);
    }

    #[test]
    fn alias_of_an_unknown_id_makes_it_resolve_to_the_user() {
        let p = run(vec![
            C::new(
                0,
                Action::Alias {
                    previous_id: "a7".into(),
                },
            )
            .user("u1"),
            C::new(10, track("ViewProduct")).anon("a7"),
        ]);
        let me = person(&p, "u1");
        assert_eq!(me.anonymous_ids, ["a7"]);
        assert_eq!(events(&p, "ViewProduct"), [(me.person_id, None, 10)]);
        assert_eq!(p.report.merged.alias, 0);
    }

    // -- rule 5: person-level events ----------------------------------------------------------

    #[test]
    fn calls_without_a_device_are_person_level_events() {
        let p = run(vec![
            C::new(0, track("Purchase")).user("u1"),
            C::new(10, track("Purchase")).anon("a1"),
            C::new(20, track("Purchase")).anon("a1"),
        ]);
        assert!(p.installations.is_empty());
        let u1 = person(&p, "u1").person_id;
        let anon = p.persons.iter().find(|r| !r.identified).expect("anonymous");
        assert_eq!(anon.anonymous_ids, ["a1"]);
        assert_eq!(
            events(&p, "Purchase"),
            [
                (u1, None, 0),
                (anon.person_id, None, 10),
                (anon.person_id, None, 20)
            ]
        );
    }

    #[test]
    fn lifecycle_events_need_a_device_and_personalize_cannot_be_tracked() {
        let mut r = Run::new();
        assert!(r
            .reject(C::new(0, track("Install")).user("u1"))
            .ends_with("`Install` needs a device"));
        assert!(r
            .reject(C::new(0, track("AppLaunch")).user("u1"))
            .ends_with("`AppLaunch` needs a device"));
        assert!(r
            .reject(C::new(0, track("Personalize")).device("d1"))
            .contains("recorded by the import"));
        assert!(r
            .reject(C::new(0, track("Purchase")))
            .ends_with("the call names no userId, anonymousId or device"));
        let p = r.finish();
        assert!(p.persons.is_empty() && p.installations.is_empty());
        assert_eq!(p.report.rejected(), 4);
    }

    // -- rule 6: identify without a userId ----------------------------------------------------

    #[test]
    fn identify_without_user_id_sets_traits_on_the_anonymous_person() {
        let p = run(vec![
            C::new(
                0,
                identify_with(|t| {
                    t.attributes.custom = custom(&[("favoriteTeam", Value::Str("Hajduk".into()))])
                }),
            )
            .device("d1")
            .anon("a1"),
            C::new(
                5,
                identify_with(|t| t.attributes.last_name = Some("K".into())),
            )
            .anon("a1"),
        ]);
        assert_eq!(
            p.persons.len(),
            1,
            "the anonymousId names the device's person"
        );
        let anon = &p.persons[0];
        assert!(!anon.identified);
        assert_eq!(anon.attributes.last_name.as_deref(), Some("K"));
        assert_eq!(
            anon.attributes.custom["favoriteTeam"],
            Value::Str("Hajduk".into())
        );
        assert_eq!(installation(&p, "d1").state, InstallationState::Anonymous);
    }

    #[test]
    fn an_email_identifies_an_anonymous_person_and_personalizes_its_devices() {
        let p = run(vec![
            C::new(0, track("Install")).device("d1").anon("a1"),
            C::new(10, email("ana@x.hr")).device("d1").anon("a1"),
            C::new(20, email("ana@x.hr")).anon("a1"),
        ]);
        let me = &p.persons[0];
        assert!(me.identified);
        assert_eq!(me.external_user_id, None);
        assert_eq!(
            installation(&p, "d1").state,
            InstallationState::Personalized
        );
        assert_eq!(events(&p, "Personalize"), [(me.person_id, Some(0), 10)]);
        assert_eq!(p.report.merged.personalize, 0);
    }

    #[test]
    fn a_person_known_by_email_takes_a_free_user_id() {
        let p = run(vec![
            C::new(0, email("ana@x.hr")).device("d1").anon("a1"),
            C::new(10, identify()).device("d1").anon("a1").user("u1"),
        ]);
        assert_eq!(p.persons.len(), 1);
        let me = person(&p, "u1");
        assert_eq!((me.public_id.as_str(), me.emails.len()), ("u1", 1));
        assert_eq!(events(&p, "Personalize").len(), 1);
        assert!(events(&p, "Depersonalize").is_empty());
    }

    // -- rule 7: identity uniqueness ----------------------------------------------------------

    fn two_claims() -> (C, C) {
        (
            C::new(0, email("ana@x.hr")).user("u1"),
            C::new(10, email("ana@x.hr")).device("d2").user("u2"),
        )
    }

    #[test]
    fn a_claimed_email_is_rejected_and_nothing_of_the_call_applies() {
        let (first, second) = two_claims();
        let mut r = Run::new();
        r.ok(vec![first]);
        assert_eq!(
            r.reject(second),
            "calls.jsonl:2: email `ana@x.hr` belongs to person 0 (`u1`)"
        );
        let p = r.finish();
        assert_eq!(p.persons.len(), 1, "u2 was not created");
        assert!(p.installations.is_empty(), "d2 was not created");
        assert_eq!(p.report.rejects[0].origin.line, 2);
    }

    #[test]
    fn a_claimed_email_merges_the_profiles_under_the_merge_policy() {
        let (first, second) = two_claims();
        let mut r = Run::with(ConflictPolicy::Merge, Catalog::default());
        r.ok(vec![first, second]);
        let p = r.finish();
        assert_eq!(p.persons.len(), 1);
        let me = person(&p, "u2");
        assert_eq!(me.emails, ["ana@x.hr"]);
        assert_eq!(me.merged_user_ids, ["u1"]);
        assert_eq!(installation(&p, "d2").person_id, me.person_id);
        assert_eq!(p.report.merged.conflict, 1);
    }

    #[test]
    fn an_anonymous_claimant_merges_into_the_holder() {
        let mut r = Run::with(ConflictPolicy::Merge, Catalog::default());
        r.ok(vec![
            C::new(0, email("ana@x.hr")).user("u1"),
            C::new(5, track("Install")).device("d2").anon("a2"),
            C::new(10, email("ana@x.hr")).device("d2").anon("a2"),
        ]);
        let p = r.finish();
        let me = person(&p, "u1").person_id;
        assert_eq!(p.persons.len(), 1);
        assert_eq!(installation(&p, "d2").person_id, me);
        assert_eq!(events(&p, "Install"), [(me, Some(0), 5)]);
        assert_eq!(events(&p, "Personalize"), [(me, Some(0), 10)]);
        assert_eq!(p.report.merged.conflict, 1);
    }

    #[test]
    fn claiming_ones_own_identity_again_is_no_conflict() {
        let p = run(vec![
            C::new(0, email("ana@x.hr")).user("u1"),
            C::new(10, email("ana@x.hr")).user("u1"),
        ]);
        assert_eq!(person(&p, "u1").emails, ["ana@x.hr"]);
        assert_eq!(person(&p, "u1").modified_at, at(0), "nothing changed");
    }

    // -- rule 8: the 30-second AppLaunch rule -------------------------------------------------

    #[test]
    fn app_launches_within_30_seconds_of_the_last_recorded_one_are_throttled() {
        assert_eq!(APP_LAUNCH_GAP, 30 * SEC);
        let launch = |micros: i64| {
            C::new(0, track("AppLaunch"))
                .device("d1")
                .micros(T0 + micros)
        };
        let p = run(vec![
            launch(0),
            launch(29_999_999),
            launch(30 * SEC),
            launch(30 * SEC + 1),
            launch(45 * SEC),
            launch(60 * SEC + 1),
            launch(60 * SEC + 2),
        ]);
        let times: Vec<i64> = p.events[0].rows.iter().map(|r| r.event_time - T0).collect();
        // Exactly 30 s is not "more than 30 s" (generate::activity); 45 s is 15 s after the last
        // recorded launch; 60 s + 1 µs is exactly 30 s after it.
        assert_eq!(times, [0, 30 * SEC + 1, 60 * SEC + 2]);
        assert_eq!(p.report.throttled, 4);
        assert_eq!(p.report.accepted, 7);
        assert_eq!(installation(&p, "d1").last_seen_at, T0 + 60 * SEC + 2);
    }

    #[test]
    fn the_30_second_rule_is_per_installation() {
        let p = run(vec![
            C::new(0, track("AppLaunch")).device("d1"),
            C::new(1, track("AppLaunch")).device("d2"),
        ]);
        assert_eq!(events(&p, "AppLaunch").len(), 2);
    }

    // -- rule 9: primary device ---------------------------------------------------------------

    #[test]
    fn the_primary_device_is_the_most_recently_seen_active_one() {
        let p = run(vec![
            C::new(0, identify()).device("d1").user("u1"),
            C::new(10, identify()).device("d2").user("u1"),
            C::new(20, identify()).device("d3").user("u1"),
            C::new(30, track("AppLaunch")).device("d1").user("u1"),
            C::new(40, track("Uninstall")).device("d3").user("u1"),
        ]);
        let primary: Vec<&str> = p
            .installations
            .iter()
            .filter(|i| i.primary_device)
            .map(|i| i.device_id.as_str())
            .collect();
        assert_eq!(primary, ["d1"]);
    }

    #[test]
    fn primary_device_ties_go_to_the_greater_installation_id() {
        let p = run(vec![
            C::new(0, identify()).device("d1").user("u1"),
            C::new(0, identify()).device("d2").user("u1"),
        ]);
        assert!(installation(&p, "d2").primary_device);
        assert!(!installation(&p, "d1").primary_device);
    }

    #[test]
    fn a_person_row_says_which_device_is_primary() {
        let listed = |id: &str, primary| PersonDevice {
            device: Device {
                id: id.into(),
                ..Device::default()
            },
            primary,
        };
        let p = run(vec![
            C::new(
                0,
                Action::UpsertPerson {
                    traits: Traits::default(),
                    devices: vec![listed("d1", Some(true)), listed("d2", None)],
                },
            )
            .user("u1"),
            C::new(50, track("AppLaunch")).device("d2").user("u1"),
            C::new(
                0,
                Action::UpsertPerson {
                    traits: Traits::default(),
                    devices: vec![listed("d3", Some(false))],
                },
            )
            .user("u3"),
        ]);
        assert!(installation(&p, "d1").primary_device);
        assert!(!installation(&p, "d2").primary_device);
        // "Not primary" still leaves a person's only active device primary.
        assert!(installation(&p, "d3").primary_device);
        assert_eq!(
            installation(&p, "d1").state,
            InstallationState::Personalized
        );
        assert_eq!(installation(&p, "d1").person_id, person(&p, "u1").person_id);
    }

    #[test]
    fn a_person_without_active_devices_has_no_primary() {
        let p = run(vec![
            C::new(0, identify()).device("d1").user("u1"),
            C::new(10, track("Uninstall")).device("d1").user("u1"),
        ]);
        assert!(p.installations.iter().all(|i| !i.primary_device));
    }

    // -- rule 10: de-duplication --------------------------------------------------------------

    #[test]
    fn a_seen_message_id_is_skipped() {
        let mut r = Run::new();
        r.ok(vec![
            C::new(0, track("Purchase")).user("u1").message("m1"),
            C::new(5, track("ViewProduct")).user("u1").message("m1"),
        ]);
        let p = r.finish();
        assert_eq!((p.report.accepted, p.report.deduplicated), (1, 1));
        assert!(events(&p, "ViewProduct").is_empty());
    }

    #[test]
    fn calls_without_message_id_dedupe_by_content() {
        let call = || C::new(0, track_with("Purchase", &[("amount", Value::Num(9.5))])).user("u1");
        let mut other_file = call();
        other_file.0.origin.file = "other.csv".into();
        let mut r = Run::new();
        r.ok(vec![
            call(),
            other_file,
            C::new(0, track_with("Purchase", &[("amount", Value::Num(9.0))])).user("u1"),
        ]);
        let p = r.finish();
        assert_eq!((p.report.accepted, p.report.deduplicated), (2, 1));
    }

    #[test]
    fn the_content_hash_is_stable() {
        let mut h = Fnv::new();
        h.bytes(b"a");
        assert_eq!(h.0, 0xaf63_dc4c_8601_ec8c, "64-bit FNV-1a");
        let call = C::new(0, track_with("Purchase", &[("amount", Value::Num(9.5))]))
            .user("u1")
            .device("d1")
            .0;
        // Pinned: the writer keeps these keys across imports, so they must never change.
        assert_eq!(content_hash(&call), 0x43db_4b2f_ac30_1cf0);
        assert_ne!(dedup_key(&call), dedup_key(&C(call.clone()).message("m").0));
        let mut negative_zero = call.clone();
        negative_zero.action = track_with("Purchase", &[("amount", Value::Num(-0.0))]);
        let mut zero = call;
        zero.action = track_with("Purchase", &[("amount", Value::Num(0.0))]);
        assert_eq!(content_hash(&zero), content_hash(&negative_zero));
    }

    #[test]
    fn a_rejected_call_is_not_recorded_as_seen() {
        let mut r = Run::new();
        r.reject(
            C::new(0, track("Purchase"))
                .message("m1")
                .no_time()
                .user("u1"),
        );
        r.ok(vec![C::new(0, track("Purchase")).message("m1").user("u1")]);
        let p = r.finish();
        assert_eq!((p.report.accepted, p.report.deduplicated), (1, 0));
    }

    // -- rule 11: types -----------------------------------------------------------------------

    #[test]
    fn property_types_are_fixed_on_first_sight() {
        let purchase = |amount| track_with("Purchase", &[("amount", amount)]);
        let mut r = Run::new();
        r.ok(vec![
            C::new(0, purchase(Value::Num(5.0))).user("u1"),
            C::new(1, purchase(Value::Null)).user("u1"),
        ]);
        assert_eq!(
            r.reject(C::new(2, purchase(Value::Str("5".into()))).user("u1")),
            "calls.jsonl:3: property `Purchase.amount` is number, this call has string"
        );
        let p = r.finish();
        let expected: BTreeMap<String, ValueType> =
            [("amount".to_string(), ValueType::Number)].into();
        assert_eq!(p.report.new_catalog.events["Purchase"], expected);
        let table = &p.events[0];
        assert_eq!(
            table.properties,
            [("amount".to_string(), ValueType::Number)]
        );
        assert_eq!(table.rows.len(), 2);
        assert_eq!(*table.rows[0].value(0), Value::Num(5.0));
        assert_eq!(*table.rows[1].value(0), Value::Null);
    }

    #[test]
    fn an_existing_catalog_fixes_types_and_is_not_reported_as_new() {
        let mut catalog = Catalog::default();
        catalog.events.insert(
            "Purchase".into(),
            [("amount".to_string(), ValueType::Number)].into(),
        );
        catalog
            .person
            .insert("loyaltyPoints".into(), ValueType::Number);
        let mut r = Run::with(ConflictPolicy::Reject, catalog);
        let reason = r.reject(
            C::new(
                0,
                track_with("Purchase", &[("amount", Value::Str("x".into()))]),
            )
            .user("u1"),
        );
        assert!(reason.ends_with("property `Purchase.amount` is number, this call has string"));
        let points = |v| identify_with(|t| t.attributes.custom = custom(&[("loyaltyPoints", v)]));
        let reason = r.reject(C::new(0, points(Value::Bool(true))).user("u1"));
        assert!(
            reason.ends_with("person attribute `loyaltyPoints` is number, this call has boolean")
        );
        r.ok(vec![
            C::new(0, track_with("Purchase", &[("amount", Value::Num(1.0))])).user("u1"),
            C::new(0, points(Value::Num(3.0))).user("u1"),
        ]);
        assert_eq!(r.finish().report.new_catalog, Catalog::default());
    }

    #[test]
    fn installation_attribute_types_are_fixed_even_within_one_call() {
        let device = |id: &str, theme: Value| PersonDevice {
            device: Device {
                id: id.into(),
                data: DeviceData {
                    custom: custom(&[("theme", theme)]),
                    ..DeviceData::default()
                },
                ..Device::default()
            },
            primary: None,
        };
        let mut r = Run::new();
        let reason = r.reject(
            C::new(
                0,
                Action::UpsertPerson {
                    traits: Traits::default(),
                    devices: vec![
                        device("d1", Value::Str("dark".into())),
                        device("d2", Value::Num(1.0)),
                    ],
                },
            )
            .user("u1"),
        );
        assert!(reason.ends_with("installation attribute `theme` is string, this call has number"));
        r.ok(vec![C::new(0, track("AppLaunch")).device("d1").data(|d| {
            d.data.custom = custom(&[("theme", Value::Str("dark".into()))])
        })]);
        let p = r.finish();
        assert_eq!(
            p.report.new_catalog.installation["theme"],
            ValueType::String
        );
        assert_eq!(
            installation(&p, "d1").data.custom["theme"],
            Value::Str("dark".into())
        );
    }

    #[test]
    fn names_a_segment_could_not_tell_apart_are_rejected() {
        let mut r = Run::new();
        r.ok(vec![C::new(
            0,
            track_with("Purchase", &[("amount", Value::Num(1.0))]),
        )
        .user("u1")]);
        assert!(r
            .reject(C::new(1, track("purchase")).user("u1"))
            .ends_with("event `purchase` clashes with `Purchase` (names match ignoring case, spaces, `_` and `-`)"));
        assert!(r
            .reject(C::new(1, track("App Launch")).device("d1"))
            .contains("clashes with `AppLaunch`"));
        assert!(r
            .reject(C::new(1, track_with("Purchase", &[("Amount", Value::Num(1.0))])).user("u1"))
            .contains("property `Purchase.Amount` clashes with property `Purchase.amount`"));
    }

    #[test]
    fn values_the_store_cannot_hold_are_rejected() {
        let mut r = Run::new();
        assert!(r
            .reject(
                C::new(
                    0,
                    track_with("Purchase", &[("amount", Value::Num(f64::NAN))])
                )
                .user("u1")
            )
            .ends_with("property `Purchase.amount` is NaN, not a finite number"));
        assert!(r
            .reject(C::new(0, track_with("Purchase", &[("at", Value::Time(-1))])).user("u1"))
            .contains("property `Purchase.at` time 1969-12-31T23:59:59.999999Z is before 1970"));
        assert!(r
            .reject(C::new(0, email(" ")).user("u1"))
            .ends_with("empty email"));
        assert!(r
            .reject(C::new(0, track("Purchase")).user(""))
            .ends_with("empty userId"));
    }

    // -- rule 12: times -----------------------------------------------------------------------

    #[test]
    fn times_outside_1970_to_9999_and_missing_ones_are_rejected() {
        let max = NaiveDate::from_ymd_opt(9999, 12, 31)
            .and_then(|d| d.and_hms_micro_opt(23, 59, 58, 999_999))
            .map(|t| t.and_utc().timestamp_micros());
        assert_eq!(max, Some(MAX_TIME));
        let call = || C::new(0, track("Purchase")).user("u1");
        let mut r = Run::new();
        assert!(r.reject(call().no_time()).ends_with("missing timestamp"));
        assert!(r.reject(call().micros(-1)).ends_with("is before 1970"));
        assert!(r
            .reject(call().micros(MAX_TIME + 1))
            .contains("is after 9999-12-31T23:59:58"));
        assert!(r.reject(call().micros(i64::MIN)).contains("before 1970"));
        r.ok(vec![call().micros(0), call().micros(MAX_TIME)]);
        let p = r.finish();
        assert_eq!(p.report.rejected(), 4);
        assert_eq!(p.report.last_time, Some(MAX_TIME));
    }

    // -- rule 13 and atomicity ----------------------------------------------------------------

    #[test]
    fn a_rejected_call_leaves_no_trace() {
        let mut r = Run::new();
        r.ok(vec![C::new(
            0,
            track_with("Purchase", &[("amount", Value::Num(1.0))]),
        )
        .user("u1")]);
        let bad = C::new(
            1,
            track_with("Purchase", &[("amount", Value::Str("1".into()))]),
        )
        .device("d9")
        .user("u9")
        .anon("a9")
        .token("tok-9")
        .data(|d| d.data.custom = custom(&[("theme", Value::Str("dark".into()))]));
        r.reject(bad);
        // `theme` was not learned from the rejected call: a number is still free to claim it.
        r.ok(vec![C::new(2, track("AppLaunch")).device("d1").data(|d| {
            d.data.custom = custom(&[("theme", Value::Num(1.0))])
        })]);
        let p = r.finish();
        assert_eq!(
            p.persons.len(),
            2,
            "u1 and d1's anonymous person; no u9, no a9"
        );
        assert!(p
            .persons
            .iter()
            .all(|r| r.external_user_id.as_deref() != Some("u9")));
        assert!(p.installations.iter().all(|i| i.device_id != "d9"));
        assert_eq!(events(&p, "Purchase").len(), 1);
        assert_eq!((p.report.accepted, p.report.rejected()), (2, 1));
        assert_eq!(
            p.report.new_catalog.installation["theme"],
            ValueType::Number
        );
    }

    #[test]
    fn installation_rows_need_a_device_and_link_to_their_user() {
        let mut r = Run::new();
        assert!(r
            .reject(C::new(0, Action::UpsertInstallation).user("u1"))
            .ends_with("an installation row needs a device"));
        assert!(r
            .reject(C::new(
                0,
                Action::UpsertPerson {
                    traits: Traits::default(),
                    devices: vec![]
                }
            ))
            .ends_with("a person row needs a userId"));
        r.ok(vec![
            C::new(0, Action::UpsertInstallation)
                .device("d1")
                .token("t1"),
            C::new(10, Action::UpsertInstallation)
                .device("d1")
                .user("u1"),
        ]);
        let p = r.finish();
        let i = installation(&p, "d1");
        assert_eq!(i.person_id, person(&p, "u1").person_id);
        assert_eq!(
            (i.state, i.push_registration_id.as_str()),
            (InstallationState::Personalized, "t1")
        );
        // A table row is not the app running.
        assert_eq!(i.last_seen_at, at(0));
    }

    // -- events -------------------------------------------------------------------------------

    #[test]
    fn events_carry_final_person_ids_through_chains_of_merges() {
        let p = run(vec![
            C::new(0, track("Install")).device("d1").anon("a1"),
            C::new(10, identify()).device("d1").anon("a1").user("u1"),
            C::new(20, track("Purchase")).user("u1"),
            C::new(
                30,
                Action::Alias {
                    previous_id: "u1".into(),
                },
            )
            .user("u2"),
            C::new(40, track("Purchase")).user("u2"),
            C::new(5, track("Purchase")).user("u0"),
        ]);
        let u2 = person(&p, "u2").person_id;
        let u0 = person(&p, "u0").person_id;
        assert_eq!(events(&p, "Install"), [(u2, Some(0), 0)]);
        // Sorted by person, then time.
        let mut expected = vec![(u2, None, 20), (u2, None, 40), (u0, None, 5)];
        expected.sort();
        assert_eq!(events(&p, "Purchase"), expected);
        let names: Vec<&str> = p.events.iter().map(|t| t.event.as_str()).collect();
        assert_eq!(names, ["Install", "Personalize", "Purchase"]);
        assert_eq!(
            p.report.merged,
            Merges {
                personalize: 1,
                alias: 1,
                conflict: 0
            }
        );
    }

    #[test]
    fn event_rows_are_compact_and_values_go_by_position() {
        assert_eq!(std::mem::size_of::<EventRow>(), 40);
        let p = run(vec![
            C::new(
                0,
                track_with(
                    "Purchase",
                    &[
                        ("amount", Value::Num(5.0)),
                        ("currency", Value::Str("EUR".into())),
                    ],
                ),
            )
            .user("u1"),
            C::new(
                1,
                track_with("Purchase", &[("category", Value::Str("shoes".into()))]),
            )
            .user("u1"),
            C::new(2, track("Purchase")).user("u1"),
        ]);
        let table = &p.events[0];
        let names: Vec<&str> = table.properties.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["amount", "currency", "category"]);
        assert_eq!(table.rows[0].values().len(), 2);
        assert_eq!(*table.rows[1].value(2), Value::Str("shoes".into()));
        assert_eq!(*table.rows[1].value(0), Value::Null);
        assert!(table.rows[2].values().is_empty());
    }

    // -- incremental imports ------------------------------------------------------------------

    fn reload(p: Profiles, policy: ConflictPolicy) -> Run {
        let existing = ExistingState {
            persons: p.persons,
            installations: p.installations,
        };
        let catalog = Catalog {
            events: p.report.new_catalog.events,
            ..Catalog::default()
        };
        Run::from(Replay::new(existing, policy, catalog).expect("loads"))
    }

    #[test]
    fn an_incremental_import_continues_an_existing_snapshot() {
        let first = run(vec![
            C::new(0, track("Install"))
                .device("d1")
                .anon("a1")
                .token("t1"),
            C::new(10, identify()).device("d1").anon("a1").user("u1"),
            C::new(20, track("Install")).device("d2").anon("a2"),
            C::new(40, track("AppLaunch")).device("d2").anon("a2"),
        ]);
        let anon = installation(&first, "d2").person_id;
        let u1 = person(&first, "u1").person_id;
        let max_person = first.persons.iter().map(|r| r.person_id).max().unwrap_or(0);
        let mut r = reload(first, ConflictPolicy::Reject);
        r.ok(vec![
            // 20 s after the last recorded launch of the earlier snapshot: throttled.
            C::new(60, track("AppLaunch")).device("d2").anon("a2"),
            C::new(70, track("Purchase")).anon("a2"),
            C::new(80, identify()).device("d2").anon("a2").user("u2"),
            C::new(90, track("Purchase")).user("u1"),
            C::new(95, track("AppLaunch")).device("d3"),
        ]);
        let p = r.finish();
        assert_eq!(p.report.throttled, 1);
        let u2 = person(&p, "u2").person_id;
        assert!(u2 > max_person, "new ids come after the existing ones");
        assert_eq!(installation(&p, "d3").installation_id, 2);
        // The existing anonymous person merged away: the writer rewrites its earlier events.
        assert_eq!(p.merged_into, [(anon, u2)].into());
        assert_eq!(events(&p, "Purchase"), [(u1, None, 90), (u2, None, 70)]);
        assert_eq!(installation(&p, "d1").person_id, u1);
        assert_eq!(installation(&p, "d1").push_registration_id, "t1");
        assert_eq!(
            installation(&p, "d2").state,
            InstallationState::Personalized
        );
    }

    #[test]
    fn identities_and_depersonalized_state_survive_a_reload() {
        let mut calls = personalized_device();
        calls.push(
            C::new(200, Action::SignOut)
                .device("d1")
                .anon("a1")
                .user("u1"),
        );
        calls.push(C::new(210, email("ana@x.hr")).user("u1"));
        let mut r = reload(run(calls), ConflictPolicy::Reject);
        // a1 was merged into u1: still not a sign-out trigger, still u1's.
        r.ok(vec![C::new(300, track("ViewProduct")).anon("a1")]);
        assert!(r
            .reject(C::new(310, email("ana@x.hr")).user("u5"))
            .contains("belongs to person"));
        let p = r.finish();
        let u1 = person(&p, "u1").person_id;
        assert_eq!(events(&p, "ViewProduct"), [(u1, None, 300)]);
        assert_eq!(
            installation(&p, "d1").state,
            InstallationState::Depersonalized
        );
    }

    #[test]
    fn an_inconsistent_state_does_not_load() {
        let row = |id: i64, email: &str| PersonRow {
            person_id: id,
            public_id: format!("p{id}"),
            emails: vec![email.into()],
            ..PersonRow::default()
        };
        let load = |persons, installations| {
            Replay::new(
                ExistingState {
                    persons,
                    installations,
                },
                ConflictPolicy::Reject,
                Catalog::default(),
            )
            .err()
            .map(|e| e.to_string())
        };
        assert_eq!(
            load(vec![row(1, "a@x"), row(2, "a@x")], vec![]).as_deref(),
            Some("email `a@x` belongs to both 1 and 2")
        );
        assert_eq!(
            load(vec![row(1, "a@x"), row(1, "b@x")], vec![]).as_deref(),
            Some("person 1 appears twice")
        );
        assert!(load(vec![row(-1, "a@x")], vec![]).is_some_and(|e| e.contains("outside")));
        let orphan = InstallationRow {
            installation_id: 0,
            device_id: "d".into(),
            person_id: 7,
            ..InstallationRow::default()
        };
        assert!(load(vec![row(1, "a@x")], vec![orphan.clone()])
            .is_some_and(|e| e.contains("does not exist")));
        let inconsistent = InstallationRow {
            person_id: 1,
            state: InstallationState::Uninstalled,
            ..orphan
        };
        assert!(load(vec![row(1, "a@x")], vec![inconsistent])
            .is_some_and(|e| e.contains("uninstalled_at")));
    }

    // -- invariants under arbitrary call streams ----------------------------------------------

    /// xorshift64*: deterministic, dependency-free randomness for the stream test.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len() as u64) as usize]
        }
    }

    fn random_call(rng: &mut Rng, seconds: i64) -> C {
        let action = match rng.below(9) {
            0 => track("Install"),
            1 | 2 => track("AppLaunch"),
            3 => track("Uninstall"),
            4 => track_with("Purchase", &[("amount", Value::Num(rng.below(50) as f64))]),
            5 => identify_with(|t| {
                if rng.below(3) == 0 {
                    t.emails = vec![rng.pick(&["e1", "e2", "e3"]).into()];
                }
                t.attributes.tags = vec![rng.pick(&["x", "y"]).into()];
            }),
            6 => Action::SignOut,
            7 => Action::Alias {
                previous_id: rng.pick(&["u1", "u2", "a1", "a2", "a9"]).into(),
            },
            _ => Action::UpsertPerson {
                traits: Traits::default(),
                devices: vec![PersonDevice {
                    device: Device {
                        id: rng.pick(&["d1", "d2", "d3", "d4"]).into(),
                        ..Device::default()
                    },
                    primary: [None, Some(true), Some(false)][rng.below(3) as usize],
                }],
            },
        };
        let mut call = C::new(seconds, action);
        if rng.below(4) != 0 {
            call = call.device(rng.pick(&["d1", "d2", "d3", "d4"]));
            if rng.below(3) == 0 {
                call = call.token(rng.pick(&["t1", "t2"]));
            }
        }
        if rng.below(2) == 0 {
            call = call.user(rng.pick(&["u1", "u2", "u3"]));
        }
        if rng.below(2) == 0 {
            call = call.anon(rng.pick(&["a1", "a2", "a3"]));
        }
        call
    }

    fn random_stream(seed: u64, from: i64, calls: i64) -> Vec<C> {
        let mut rng = Rng(seed);
        (0..calls)
            .map(|n| random_call(&mut rng, from + n * 7))
            .collect()
    }

    fn replay_stream(run: &mut Run, calls: Vec<C>) {
        for call in calls {
            // Rejects (conflicts, device-less lifecycle events) are part of the stream.
            let _ = run.apply(call);
        }
    }

    fn assert_invariants(p: &Profiles) {
        let persons: HashMap<i64, &PersonRow> =
            p.persons.iter().map(|r| (r.person_id, r)).collect();
        let installations: HashSet<i64> =
            p.installations.iter().map(|i| i.installation_id).collect();
        let mut identities = HashSet::new();
        for r in &p.persons {
            let ids = r.external_user_id.iter().chain(&r.merged_user_ids);
            for id in ids
                .map(|i| ("user", i))
                .chain(r.emails.iter().map(|e| ("email", e)))
            {
                assert!(identities.insert(id), "{id:?} held twice");
            }
            assert_eq!(
                r.identified,
                r.external_user_id.is_some() || !r.emails.is_empty()
            );
        }
        for i in &p.installations {
            let owner = persons
                .get(&i.person_id)
                .expect("installation's person exists");
            match i.state {
                InstallationState::Uninstalled => {
                    assert!(i.uninstalled_at.is_some() && !i.primary_device)
                }
                InstallationState::Personalized => assert!(owner.identified),
                _ => assert!(!owner.identified),
            }
        }
        for person in persons.keys() {
            let active: Vec<&InstallationRow> = p
                .installations
                .iter()
                .filter(|i| i.person_id == *person && i.uninstalled_at.is_none())
                .collect();
            let primaries = active.iter().filter(|i| i.primary_device).count();
            assert_eq!(
                primaries,
                usize::from(!active.is_empty()),
                "person {person}"
            );
        }
        for table in &p.events {
            for pair in table.rows.windows(2) {
                assert!(
                    (pair[0].person_id, pair[0].event_time)
                        <= (pair[1].person_id, pair[1].event_time)
                );
            }
            for row in &table.rows {
                assert!(
                    persons.contains_key(&row.person_id),
                    "{} of a merged person",
                    table.event
                );
                assert!(row
                    .installation_id
                    .is_none_or(|i| installations.contains(&i)));
            }
        }
        for launches in p.events.iter().filter(|t| t.event == "AppLaunch") {
            let mut by_device: BTreeMap<Option<i64>, Vec<i64>> = BTreeMap::new();
            for row in &launches.rows {
                by_device
                    .entry(row.installation_id)
                    .or_default()
                    .push(row.event_time);
            }
            for times in by_device.values_mut() {
                times.sort_unstable();
                assert!(times.windows(2).all(|w| w[1] - w[0] > APP_LAUNCH_GAP));
            }
        }
    }

    #[test]
    fn random_call_streams_keep_the_invariants_and_are_deterministic() {
        for seed in 1..=40 {
            for policy in [ConflictPolicy::Reject, ConflictPolicy::Merge] {
                let once = || {
                    let mut r = Run::with(policy, Catalog::default());
                    replay_stream(&mut r, random_stream(seed, 0, 300));
                    r.finish()
                };
                let p = once();
                assert_invariants(&p);
                assert_eq!(
                    p,
                    once(),
                    "seed {seed}: the same calls give the same output"
                );
                let mut next = reload(p, policy);
                replay_stream(&mut next, random_stream(seed + 1000, 3000, 300));
                assert_invariants(&next.finish());
            }
        }
    }
}
