//! Segment-spec calls (Segment, RudderStack and compatible CDP exports), one JSON object a line,
//! as [`Call`]s; and the JSON reading the Infobip sources share ([`object`], [`value`],
//! [`flatten`], [`detect`]; times by `import::time_text`).
//!
//! | Segment field | becomes |
//! | --- | --- |
//! | `type` identify / track / screen / alias | `Identify` / `Track` / `Track` of `Screen Viewed` / `Alias`; any other type is rejected |
//! | `event` (track) | `Application Installed` → `Install`, `Application Opened` → `AppLaunch`, `Application Uninstalled` → `Uninstall`, `Signed Out` → `SignOut`; any other name as written |
//! | `name` (screen) | the `name` property of `Screen Viewed`, beside the call's properties |
//! | `previousId` (alias) | the alias's `previous_id` |
//! | `messageId`, `anonymousId`, `userId` | the call's ids (a number as its text) |
//! | `timestamp`, else `originalTimestamp` | the call's time |
//! | `traits.email`, `.phone` | identities (a string, or a list of them) |
//! | `traits.firstName`, `.lastName`, `.gender`, `.birthday`, `.createdAt`, `.address.city`, `.address.country`, `.preferredLanguage` (else `.language`), `.tags` | standard person attributes |
//! | any other trait | a custom person attribute of that name |
//! | `properties` | the event's properties |
//! | `context.device.id` | the installation (without it the call is person-level) |
//! | `context.device.token` | its push registration |
//! | `context.device.manufacturer`, `.model` | `deviceManufacturer`, `deviceModel` |
//! | `context.os.name` (else `context.device.type`), `context.os.version` | `platform`, `osVersion` |
//! | `context.app.version` (else `.build`) | `applicationVersion` |
//! | `context.locale` (`en-US`) | `osLanguage`, its language part (`en`) |
//! | `context.installation.*` (an extension, below) | installation system data and custom attributes |
//!
//! Decisions where the spec is silent:
//!
//! * **Strict types.** A field of the wrong JSON type is a reject naming it (`` `traits.email`
//!   is an object, not a string ``), never a guess; only numbers are taken as text where an id
//!   or a name is expected (a numeric `userId` is common). `type` and the lifecycle event names
//!   are matched exactly, as the spec spells them.
//! * **What is not read.** Other traits are custom attributes, but other top-level and
//!   `context` fields (`sentAt`, `receivedAt`, `context.traits`, `context.library`,
//!   `integrations`, ...) are ignored: `context.traits` repeats earlier identify traits and would
//!   re-set them at a later time. The lifecycle events keep their properties
//!   (`from_background`, `version`, ...).
//! * **Missing and empty.** A missing time gives `time = None` and an empty id stays empty, so
//!   that the replay rejects them with the same reason for every source.
//! * **Times** are ISO 8601 in the extended format, `YYYY-MM-DD[T ]HH:MM[:SS[.fraction]]` with
//!   `Z`, `±HH:MM`, `±HHMM` or `±HH`, or none meaning UTC; the fraction may have any length and
//!   is truncated to microseconds. A date alone is not a time. `birthday` takes a date or a time,
//!   whose date is taken as written (not moved to UTC). The replay checks the range (1970–9999).
//! * **Values** ([`value`]): null, string, finite number and boolean as they are, strings with
//!   no date inference (a catalog type says what a string holds, not its look). An array of
//!   scalars is a list (of their text) in traits and installation attributes, but its JSON text
//!   in event properties, which cannot hold lists. Objects are flattened to dotted names
//!   (`address.street`) down to [`MAX_NESTING`] levels, deeper is a reject. A key given twice in
//!   an object: the last wins for a standard field, as in most JSON readers; a flattened name
//!   given twice (`"a.b"` beside `"a": {"b"}`) is a reject. JSON nested deeper than
//!   serde_json's limit (128) is a reject, not a stack overflow.
//!
//! **Extension** `context.installation`: the Segment spec has no field for an installation's
//! system data beyond the device and OS, so a generated world could not round-trip. This object,
//! when present, carries `sdkVersion`, `osLanguage` (strings), `registrationsEnabled`,
//! `notificationsEnabled`, `geofencingEnabled`, `deviceSecure` (booleans), and any other key as
//! an installation custom attribute. `osLanguage` there wins over `context.locale`. Like all of
//! `context`, it is read only when the call has a device.
//!
//! A line is parsed into [`Json`], a tree that borrows the line's strings, rather than
//! `serde_json::Value`: no allocation per key or unescaped string, about twice the speed on
//! Segment calls, which the import reads by the hundred million.

use crate::import::profile::{Action, Attributes, Call, Device, DeviceData, Origin, Traits, Value};
use crate::import::source::Kind;
pub use crate::import::time_text::{parse_date, parse_time};
use chrono::NaiveDate;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

/// How deep objects inside a trait, property or custom attribute are flattened (`a.b.c` is
/// three levels); deeper is a reject. Real payloads rarely pass three.
pub const MAX_NESTING: usize = 8;

/// How much of an offending value a reject reason quotes.
const QUOTE_CHARS: usize = 40;

/// One Segment-spec call.
pub fn parse(origin: &Origin, line: &[u8]) -> Result<Call, String> {
    let call = object(line)?;
    let kind = match call.get("type") {
        None | Some(Json::Null) => return Err("missing `type`".into()),
        Some(Json::Str(kind)) => kind.as_ref(),
        Some(other) => return Err(format!("`type` is {}, not a string", describe(other))),
    };
    let action = match kind {
        "identify" => Action::Identify {
            traits: traits(call.get("traits"))?,
        },
        "track" => track(&call)?,
        "screen" => screen(&call)?,
        "alias" => Action::Alias {
            previous_id: text(call.get("previousId"), "previousId")?
                .ok_or("missing `previousId`")?,
        },
        other => {
            return Err(format!(
                "unknown type `{}` (imported: identify, track, screen, alias)",
                quote(other)
            ))
        }
    };
    let time = match call.get("timestamp") {
        Some(t) if !matches!(t, Json::Null) => time(Some(t), "timestamp")?,
        _ => time(call.get("originalTimestamp"), "originalTimestamp")?,
    };
    Ok(Call {
        origin: origin.clone(),
        time,
        message_id: text(call.get("messageId"), "messageId")?,
        anonymous_id: text(call.get("anonymousId"), "anonymousId")?,
        user_id: text(call.get("userId"), "userId")?,
        device: device(call.get("context"))?,
        action,
    })
}

/// Which JSON-lines kind `first_line` is, when it says so unambiguously: a Segment `type`, an
/// Infobip event's `definitionId`, an Infobip person's `externalId` or `contactInformation`.
/// `None` for anything else (not a JSON object, none of these, or more than one).
pub fn detect(first_line: &[u8]) -> Option<Kind> {
    let line = object(first_line).ok()?;
    let segment = matches!(
        line.get("type"),
        Some(Json::Str(t)) if matches!(
            t.as_ref(),
            "identify" | "track" | "screen" | "alias" | "page" | "group"
        )
    );
    let events = line.get("definitionId").is_some();
    let people = line.get("externalId").is_some() || line.get("contactInformation").is_some();
    match (segment, events, people) {
        (true, false, false) => Some(Kind::Segment),
        (false, true, false) => Some(Kind::InfobipEvents),
        (false, false, true) => Some(Kind::InfobipPeople),
        _ => None,
    }
}

fn track(call: &Object) -> Result<Action, String> {
    let event = text(call.get("event"), "event")?.ok_or("missing `event`")?;
    let event = match event.as_str() {
        "Signed Out" => return Ok(Action::SignOut),
        "Application Installed" => "Install".to_string(),
        "Application Opened" => "AppLaunch".to_string(),
        "Application Uninstalled" => "Uninstall".to_string(),
        _ => event,
    };
    Ok(Action::Track {
        event,
        properties: properties(call.get("properties"), "properties")?,
    })
}

fn screen(call: &Object) -> Result<Action, String> {
    let mut properties = properties(call.get("properties"), "properties")?;
    // The top-level name is the spec's; `properties.name`, which some libraries send instead,
    // stays when it is absent.
    if let Some(name) = text(call.get("name"), "name")? {
        properties.insert("name".into(), Value::Str(name));
    }
    Ok(Action::Track {
        event: "Screen Viewed".into(),
        properties,
    })
}

fn traits(json: Option<&Json>) -> Result<Traits, String> {
    let mut traits = Traits::default();
    let Some(map) = obj(json, "traits")? else {
        return Ok(traits);
    };
    let a = &mut traits.attributes;
    let mut language = None;
    for (key, json) in map.iter() {
        let v = Some(json);
        match key {
            "email" => traits.emails = texts(v, "traits.email")?,
            "phone" => traits.phones = texts(v, "traits.phone")?,
            "firstName" => a.first_name = text(v, "traits.firstName")?,
            "lastName" => a.last_name = text(v, "traits.lastName")?,
            "gender" => a.gender = text(v, "traits.gender")?,
            "birthday" => a.birth_date = date(v, "traits.birthday")?,
            "createdAt" => traits.created_at = time(v, "traits.createdAt")?,
            "preferredLanguage" => a.preferred_language = text(v, "traits.preferredLanguage")?,
            "language" => language = text(v, "traits.language")?,
            "tags" => a.tags = texts(v, "traits.tags")?,
            "address" => address(a, json)?,
            _ => flatten(&mut a.custom, "trait", key, json, Arrays::List)?,
        }
    }
    if a.preferred_language.is_none() {
        a.preferred_language = language;
    }
    Ok(traits)
}

/// `address.city` and `address.country` are standard attributes; the rest of the address is
/// custom (`address.street`), as is an address that is not an object.
fn address(a: &mut Attributes, json: &Json) -> Result<(), String> {
    let Json::Object(map) = json else {
        return flatten(&mut a.custom, "trait", "address", json, Arrays::List);
    };
    for (key, v) in map.iter() {
        match key {
            "city" => a.city = text(Some(v), "traits.address.city")?,
            "country" => a.country = text(Some(v), "traits.address.country")?,
            _ => flatten(
                &mut a.custom,
                "trait",
                &format!("address.{key}"),
                v,
                Arrays::List,
            )?,
        }
    }
    Ok(())
}

fn device(context: Option<&Json>) -> Result<Option<Device>, String> {
    let Some(context) = obj(context, "context")? else {
        return Ok(None);
    };
    let Some(dev) = obj(context.get("device"), "context.device")? else {
        return Ok(None);
    };
    let Some(id) = text(dev.get("id"), "context.device.id")? else {
        return Ok(None);
    };
    let os = obj(context.get("os"), "context.os")?;
    let app = obj(context.get("app"), "context.app")?;
    let field = |map: Option<&Object>, key: &str, path: &str| {
        map.map_or(Ok(None), |m| text(m.get(key), path))
    };
    let mut data = DeviceData {
        platform: field(os, "name", "context.os.name")?,
        os_version: field(os, "version", "context.os.version")?,
        device_manufacturer: text(dev.get("manufacturer"), "context.device.manufacturer")?,
        device_model: text(dev.get("model"), "context.device.model")?,
        application_version: match field(app, "version", "context.app.version")? {
            Some(version) => Some(version),
            None => field(app, "build", "context.app.build")?,
        },
        os_language: text(context.get("locale"), "context.locale")?.and_then(|l| language_of(&l)),
        ..DeviceData::default()
    };
    if data.platform.is_none() {
        data.platform = text(dev.get("type"), "context.device.type")?;
    }
    if let Some(installation) = obj(context.get("installation"), "context.installation")? {
        installation_extension(&mut data, installation)?;
    }
    Ok(Some(Device {
        id,
        token: text(dev.get("token"), "context.device.token")?,
        data,
    }))
}

fn installation_extension(data: &mut DeviceData, map: &Object) -> Result<(), String> {
    for (key, json) in map.iter() {
        let path = || format!("context.installation.{key}");
        let v = Some(json);
        match key {
            "sdkVersion" => data.sdk_version = text(v, &path())?,
            "osLanguage" => {
                if let Some(l) = text(v, &path())? {
                    data.os_language = Some(l);
                }
            }
            "registrationsEnabled" => data.registrations_enabled = flag(v, &path())?,
            "notificationsEnabled" => data.notifications_enabled = flag(v, &path())?,
            "geofencingEnabled" => data.geofencing_enabled = flag(v, &path())?,
            "deviceSecure" => data.device_secure = flag(v, &path())?,
            _ => flatten(
                &mut data.custom,
                "installation attribute",
                key,
                json,
                Arrays::List,
            )?,
        }
    }
    Ok(())
}

/// `en-US` / `en_US` → `en`.
fn language_of(locale: &str) -> Option<String> {
    let language = locale.split(['-', '_']).next().unwrap_or("").trim();
    (!language.is_empty()).then(|| language.to_ascii_lowercase())
}

// ---------------------------------------------------------------------------------------------
// The JSON of a line
// ---------------------------------------------------------------------------------------------

/// A JSON value borrowing the strings of the line it was read from (an escaped string is
/// copied, having no slice to borrow).
#[derive(Debug, Clone, PartialEq)]
pub enum Json<'a> {
    Null,
    Bool(bool),
    /// Always finite: the parser refuses numbers beyond f64 ("number out of range").
    Num(serde_json::Number),
    Str(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Object<'a>),
}

/// An object's members in the order written; small enough that a scan beats a map.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Object<'a>(Vec<(Cow<'a, str>, Json<'a>)>);

impl<'a> Object<'a> {
    /// The member named `key`, the last if it is given twice (as serde_json reads it).
    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Json<'a>)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v))
    }
}

impl<'de> Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(b))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Json<'de>, E> {
        Ok(Json::Num(n.into()))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Json<'de>, E> {
        Ok(Json::Num(n.into()))
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Json<'de>, E> {
        serde_json::Number::from_f64(n)
            .map(Json::Num)
            .ok_or_else(|| E::custom(format!("{n} is not a finite number")))
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Borrowed(s)))
    }

    fn visit_str<E>(self, s: &str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(s.to_owned())))
    }

    fn visit_string<E>(self, s: String) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(s)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some((Key(key), value)) = map.next_entry()? {
            members.push((key, value));
        }
        Ok(Json::Object(Object(members)))
    }
}

/// An object key, borrowed when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match d.deserialize_str(JsonVisitor)? {
            Json::Str(s) => Ok(Key(s)),
            _ => Err(de::Error::custom("an object key must be a string")),
        }
    }
}

/// For writing an array property as its JSON text.
impl serde::Serialize for Json<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self {
            Json::Null => s.serialize_unit(),
            Json::Bool(b) => s.serialize_bool(*b),
            Json::Num(n) => n.serialize(s),
            Json::Str(v) => s.serialize_str(v),
            Json::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Json::Object(members) => {
                let mut map = s.serialize_map(Some(members.0.len()))?;
                for (k, v) in members.iter() {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

/// Parses one line as a JSON object; the reject reason names the column of a syntax error.
pub fn object(line: &[u8]) -> Result<Object<'_>, String> {
    // Checking UTF-8 first (again, after the line reader) and then parsing a `str` is faster
    // than serde_json's checks string by string.
    let line = std::str::from_utf8(line)
        .map_err(|e| format!("invalid UTF-8 at byte offset {}", e.valid_up_to()))?;
    match serde_json::from_str::<Json>(line) {
        Ok(Json::Object(map)) => Ok(map),
        Ok(other) => Err(format!(
            "a record must be a JSON object, this line is {}",
            describe(&other)
        )),
        Err(e) => Err(json_error(&e)),
    }
}

/// `bad JSON at column 17: expected `,` or `}``, without serde_json's "at line 1 column 17"
/// (a line is one line). Its recursion limit gets a plain explanation.
fn json_error(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let location = format!(" at line {} column {}", e.line(), e.column());
    let message = full.strip_suffix(&location).unwrap_or(&full);
    let message = if message.starts_with("recursion limit exceeded") {
        "nested more than 128 levels deep"
    } else {
        message
    };
    format!("bad JSON at column {}: {message}", e.column())
}

/// "an object", "a number", ... for messages.
pub fn describe(json: &Json) -> &'static str {
    match json {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Num(_) => "a number",
        Json::Str(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// At most [`QUOTE_CHARS`] characters of `s`, so a hostile value cannot make a reason huge.
pub fn quote(s: &str) -> String {
    match s.char_indices().nth(QUOTE_CHARS) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_string(),
    }
}

/// An optional object field; `path` names it in the reject reason.
pub fn obj<'j, 'a>(
    json: Option<&'j Json<'a>>,
    path: &str,
) -> Result<Option<&'j Object<'a>>, String> {
    match json {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Object(map)) => Ok(Some(map)),
        Some(other) => Err(format!("`{path}` is {}, not an object", describe(other))),
    }
}

/// An optional text field: a string, or a number as its text (ids and versions often are).
pub fn text(json: Option<&Json>, path: &str) -> Result<Option<String>, String> {
    match json {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Str(s)) => Ok(Some(s.to_string())),
        Some(Json::Num(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(format!("`{path}` is {}, not a string", describe(other))),
    }
}

/// A text field that may also be a list of texts (emails, phones, tags); nulls in the list
/// are left out.
pub fn texts(json: Option<&Json>, path: &str) -> Result<Vec<String>, String> {
    match json {
        Some(Json::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let t = text(Some(item), path)
                    .map_err(|_| format!("`{path}` holds {}, not a string", describe(item)))?;
                out.extend(t);
            }
            Ok(out)
        }
        other => Ok(text(other, path)?.into_iter().collect()),
    }
}

/// An optional boolean field.
pub fn flag(json: Option<&Json>, path: &str) -> Result<Option<bool>, String> {
    match json {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(format!("`{path}` is {}, not a boolean", describe(other))),
    }
}

/// An optional ISO 8601 time field, in µs UTC.
pub fn time(json: Option<&Json>, path: &str) -> Result<Option<i64>, String> {
    match json {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Str(s)) => parse_time(s)
            .map(Some)
            .ok_or_else(|| format!("{path} `{}` is not an ISO 8601 time", quote(s))),
        Some(other) => Err(format!(
            "`{path}` is {}, not an ISO 8601 time string",
            describe(other)
        )),
    }
}

/// An optional date field: `YYYY-MM-DD`, or an ISO 8601 time whose date is taken as written.
pub fn date(json: Option<&Json>, path: &str) -> Result<Option<NaiveDate>, String> {
    match json {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Str(s)) => parse_date(s)
            .map(Some)
            .ok_or_else(|| format!("{path} `{}` is not a date (YYYY-MM-DD)", quote(s))),
        Some(other) => Err(format!(
            "`{path}` is {}, not a date string",
            describe(other)
        )),
    }
}

/// What an array becomes: a list (person and installation attributes) or its JSON text (event
/// properties, which cannot hold lists).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrays {
    List,
    Text,
}

/// A JSON value that is not an object as a [`Value`]; `what` and `name` name it in the reject
/// reason (``property `amount` ``).
pub fn value(json: &Json, arrays: Arrays, what: &str, name: &str) -> Result<Value, String> {
    Ok(match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Str(s) => Value::Str(s.to_string()),
        Json::Num(n) => match n.as_f64().filter(|f| f.is_finite()) {
            Some(f) => Value::Num(f),
            // Unreachable from a parsed line (see `Json::Num`), kept so that no value of the
            // store is ever NaN or infinite.
            None => {
                return Err(format!(
                    "{what} `{}` is {}, not a finite number",
                    quote(name),
                    quote(&n.to_string())
                ))
            }
        },
        Json::Array(items) => match arrays {
            Arrays::Text => Value::Str(
                serde_json::to_string(json)
                    .map_err(|e| format!("{what} `{}`: {e}", quote(name)))?,
            ),
            Arrays::List => {
                let mut list = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Json::Null => {}
                        Json::Str(s) => list.push(s.to_string()),
                        Json::Num(n) => list.push(n.to_string()),
                        Json::Bool(b) => list.push(b.to_string()),
                        Json::Array(_) | Json::Object(_) => {
                            return Err(format!(
                                "{what} `{}` is a list holding {}; a list may hold strings, \
                                 numbers and booleans",
                                quote(name),
                                describe(item)
                            ))
                        }
                    }
                }
                Value::List(list)
            }
        },
        Json::Object(_) => {
            return Err(format!("{what} `{}` is an object", quote(name)));
        }
    })
}

/// Event properties: an object flattened, arrays as their JSON text.
pub fn properties(json: Option<&Json>, field: &str) -> Result<BTreeMap<String, Value>, String> {
    let mut out = BTreeMap::new();
    if let Some(map) = obj(json, field)? {
        flatten_object(&mut out, "property", "", map, Arrays::Text, 1)?;
    }
    Ok(out)
}

/// Adds `json` to `out` under `name`: an object flattened to dotted names (`name.key`), any
/// other value by [`value`].
pub fn flatten(
    out: &mut BTreeMap<String, Value>,
    what: &str,
    name: &str,
    json: &Json,
    arrays: Arrays,
) -> Result<(), String> {
    flatten_at(out, what, name, json, arrays, 1)
}

fn flatten_at(
    out: &mut BTreeMap<String, Value>,
    what: &str,
    name: &str,
    json: &Json,
    arrays: Arrays,
    depth: usize,
) -> Result<(), String> {
    if let Json::Object(map) = json {
        if depth >= MAX_NESTING {
            return Err(format!(
                "{what} `{}` is nested more than {MAX_NESTING} levels deep",
                quote(name)
            ));
        }
        return flatten_object(out, what, name, map, arrays, depth + 1);
    }
    let v = value(json, arrays, what, name)?;
    if out.insert(name.to_string(), v).is_some() {
        return Err(format!("{what} `{}` is given twice", quote(name)));
    }
    Ok(())
}

/// The members of `map`, under `prefix.` (or no prefix), at nesting `depth`.
fn flatten_object(
    out: &mut BTreeMap<String, Value>,
    what: &str,
    prefix: &str,
    map: &Object,
    arrays: Arrays,
    depth: usize,
) -> Result<(), String> {
    for (key, v) in map.iter() {
        let name = if prefix.is_empty() {
            key.to_string()
        } else {
            format!("{prefix}.{key}")
        };
        flatten_at(out, what, &name, v, arrays, depth)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin {
            file: "calls.jsonl".into(),
            line: 7,
        }
    }

    fn call(line: &str) -> Call {
        parse(&origin(), line.as_bytes()).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    fn reject(line: &str) -> String {
        match parse(&origin(), line.as_bytes()) {
            Ok(call) => panic!("{line} was accepted: {call:?}"),
            Err(reason) => reason,
        }
    }

    /// µs UTC of a time written the way chrono's tests would.
    fn us(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_micros()
    }

    fn props(call: &Call) -> &BTreeMap<String, Value> {
        match &call.action {
            Action::Track { properties, .. } => properties,
            other => panic!("not a track: {other:?}"),
        }
    }

    fn traits_of(call: &Call) -> &Traits {
        match &call.action {
            Action::Identify { traits } => traits,
            other => panic!("not an identify: {other:?}"),
        }
    }

    #[test]
    fn identify_maps_every_standard_trait() {
        let c = call(
            r#"{"type":"identify","messageId":"m1","anonymousId":"a1","userId":"u1",
               "timestamp":"2024-03-01T10:00:00.5Z",
               "traits":{"email":"ana@example.com","phone":"+385911234567",
                 "firstName":"Ana","lastName":"Horvat","birthday":"1990-05-01",
                 "gender":"female","address":{"city":"Zagreb","country":"HR","street":"Ilica 1"},
                 "createdAt":"2023-01-02T03:04:05+01:00","preferredLanguage":"hr",
                 "language":"en","tags":["vip","beta"],
                 "plan":"pro","score":4.5,"optIn":true,"interests":["a",1,false,null],
                 "prefs":{"theme":{"dark":true}},"nothing":null}}"#,
        );
        assert_eq!(c.origin, origin());
        assert_eq!(c.time, Some(us("2024-03-01T10:00:00.5Z")));
        assert_eq!(c.message_id.as_deref(), Some("m1"));
        assert_eq!(c.anonymous_id.as_deref(), Some("a1"));
        assert_eq!(c.user_id.as_deref(), Some("u1"));
        assert_eq!(c.device, None);
        let t = traits_of(&c);
        assert_eq!(t.emails, ["ana@example.com"]);
        assert_eq!(t.phones, ["+385911234567"]);
        assert_eq!(t.created_at, Some(us("2023-01-02T02:04:05Z")));
        let a = &t.attributes;
        assert_eq!(a.first_name.as_deref(), Some("Ana"));
        assert_eq!(a.last_name.as_deref(), Some("Horvat"));
        assert_eq!(a.gender.as_deref(), Some("female"));
        assert_eq!(a.birth_date, NaiveDate::from_ymd_opt(1990, 5, 1));
        assert_eq!(a.city.as_deref(), Some("Zagreb"));
        assert_eq!(a.country.as_deref(), Some("HR"));
        assert_eq!(a.preferred_language.as_deref(), Some("hr"));
        assert_eq!(a.tags, ["vip", "beta"]);
        let custom: Vec<(&str, &Value)> = a.custom.iter().map(|(k, v)| (k.as_str(), v)).collect();
        assert_eq!(
            custom,
            [
                ("address.street", &Value::Str("Ilica 1".into())),
                (
                    "interests",
                    &Value::List(vec!["a".into(), "1".into(), "false".into()])
                ),
                ("nothing", &Value::Null),
                ("optIn", &Value::Bool(true)),
                ("plan", &Value::Str("pro".into())),
                ("prefs.theme.dark", &Value::Bool(true)),
                ("score", &Value::Num(4.5)),
            ]
        );
    }

    #[test]
    fn identify_variants() {
        // Lists of identities, `language` when there is no preferredLanguage, a birthday given
        // as a time (its date as written), a number as a phone, a userId as a number.
        let c = call(
            r#"{"type":"identify","userId":12345,"timestamp":"2024-03-01T10:00:00Z",
               "traits":{"email":["a@x.com","b@x.com"],"phone":385911234567,
               "language":"de","birthday":"1990-05-01T23:30:00-05:00","tags":"solo",
               "address":"Ilica 1, Zagreb"}}"#,
        );
        assert_eq!(c.user_id.as_deref(), Some("12345"));
        let t = traits_of(&c);
        assert_eq!(t.emails, ["a@x.com", "b@x.com"]);
        assert_eq!(t.phones, ["385911234567"]);
        assert_eq!(t.attributes.preferred_language.as_deref(), Some("de"));
        assert_eq!(t.attributes.birth_date, NaiveDate::from_ymd_opt(1990, 5, 1));
        assert_eq!(t.attributes.tags, ["solo"]);
        assert_eq!(
            t.attributes.custom.get("address"),
            Some(&Value::Str("Ilica 1, Zagreb".into()))
        );
        // No traits at all, and no userId: traits for the anonymous person.
        let c = call(r#"{"type":"identify","anonymousId":"a","timestamp":"2024-03-01T10:00:00Z"}"#);
        assert_eq!(traits_of(&c), &Traits::default());
        assert_eq!(c.user_id, None);
    }

    #[test]
    fn empty_ids_are_kept_for_the_replay_to_reject() {
        let c = call(
            r#"{"type":"track","event":"","userId":"","messageId":"","timestamp":"2024-03-01T10:00:00Z"}"#,
        );
        assert_eq!(c.user_id.as_deref(), Some(""));
        assert_eq!(c.message_id.as_deref(), Some(""));
        assert!(matches!(&c.action, Action::Track { event, .. } if event.is_empty()));
    }

    #[test]
    fn track_maps_lifecycle_events_and_keeps_custom_names() {
        let t = r#""timestamp":"2024-03-01T10:00:00Z","userId":"u""#;
        for (name, canonical) in [
            ("Application Installed", "Install"),
            ("Application Opened", "AppLaunch"),
            ("Application Uninstalled", "Uninstall"),
            ("Order Completed", "Order Completed"),
            ("application opened", "application opened"),
        ] {
            let c = call(&format!(r#"{{"type":"track","event":"{name}",{t}}}"#));
            assert!(
                matches!(&c.action, Action::Track { event, .. } if event == canonical),
                "{name}: {:?}",
                c.action
            );
        }
        let c = call(&format!(r#"{{"type":"track","event":"Signed Out",{t}}}"#));
        assert_eq!(c.action, Action::SignOut);
        assert_eq!(
            reject(&format!(r#"{{"type":"track",{t}}}"#)),
            "missing `event`"
        );
    }

    #[test]
    fn track_properties_are_typed_flattened_and_arrays_are_text() {
        let c = call(
            r#"{"type":"track","event":"Purchase","userId":"u","timestamp":"2024-03-01T10:00:00Z",
               "properties":{"amount":19.99,"currency":"EUR","gift":false,"at":"2024-03-01",
               "items":[{"sku":"a"},2],"shipping":{"city":"Split","fast":true},"none":null}}"#,
        );
        let p: Vec<(&str, &Value)> = props(&c).iter().map(|(k, v)| (k.as_str(), v)).collect();
        assert_eq!(
            p,
            [
                // No date inference: the replay's catalog decides what a string holds.
                ("amount", &Value::Num(19.99)),
                ("at", &Value::Str("2024-03-01".into())),
                ("currency", &Value::Str("EUR".into())),
                ("gift", &Value::Bool(false)),
                ("items", &Value::Str(r#"[{"sku":"a"},2]"#.into())),
                ("none", &Value::Null),
                ("shipping.city", &Value::Str("Split".into())),
                ("shipping.fast", &Value::Bool(true)),
            ]
        );
        assert_eq!(
            reject(r#"{"type":"track","event":"E","properties":[1]}"#),
            "`properties` is an array, not an object"
        );
    }

    #[test]
    fn screen_is_screen_viewed_with_its_name() {
        let c = call(
            r#"{"type":"screen","name":"Home","userId":"u","timestamp":"2024-03-01T10:00:00Z",
               "properties":{"name":"ignored","variant":"b"}}"#,
        );
        assert!(matches!(&c.action, Action::Track { event, .. } if event == "Screen Viewed"));
        assert_eq!(props(&c).get("name"), Some(&Value::Str("Home".into())));
        assert_eq!(props(&c).get("variant"), Some(&Value::Str("b".into())));
        let c = call(r#"{"type":"screen","properties":{"name":"Cart"},"userId":"u"}"#);
        assert_eq!(props(&c).get("name"), Some(&Value::Str("Cart".into())));
    }

    #[test]
    fn alias_names_the_previous_id() {
        let c = call(
            r#"{"type":"alias","previousId":"anon-1","userId":"u1","timestamp":"2024-03-01T10:00:00Z"}"#,
        );
        assert_eq!(
            c.action,
            Action::Alias {
                previous_id: "anon-1".into()
            }
        );
        assert_eq!(
            reject(r#"{"type":"alias","userId":"u1"}"#),
            "missing `previousId`"
        );
    }

    #[test]
    fn context_makes_the_device() {
        let c = call(
            r#"{"type":"track","event":"Application Opened","anonymousId":"a",
               "timestamp":"2024-03-01T10:00:00Z","context":{
                 "device":{"id":"dev-1","token":"tok-1","manufacturer":"Samsung",
                   "model":"SM-G991B","type":"android","advertisingId":"x"},
                 "os":{"name":"Android","version":"14"},
                 "app":{"version":"3.2.1","build":"321"},
                 "locale":"en-US","library":{"name":"analytics-android"},
                 "installation":{"sdkVersion":"12.1.0","registrationsEnabled":true,
                   "notificationsEnabled":false,"geofencingEnabled":true,
                   "deviceSecure":false,"osLanguage":"hr","theme":"dark",
                   "channels":["push","inapp"],"quota":{"daily":3}}}}"#,
        );
        let d = c.device.expect("a device");
        assert_eq!(d.id, "dev-1");
        assert_eq!(d.token.as_deref(), Some("tok-1"));
        let mut custom = BTreeMap::new();
        custom.insert("theme".to_string(), Value::Str("dark".into()));
        custom.insert(
            "channels".to_string(),
            Value::List(vec!["push".into(), "inapp".into()]),
        );
        custom.insert("quota.daily".to_string(), Value::Num(3.0));
        assert_eq!(
            d.data,
            DeviceData {
                platform: Some("Android".into()),
                sdk_version: Some("12.1.0".into()),
                os_version: Some("14".into()),
                device_manufacturer: Some("Samsung".into()),
                device_model: Some("SM-G991B".into()),
                application_version: Some("3.2.1".into()),
                os_language: Some("hr".into()),
                registrations_enabled: Some(true),
                notifications_enabled: Some(false),
                geofencing_enabled: Some(true),
                device_secure: Some(false),
                custom,
            }
        );
    }

    #[test]
    fn context_fallbacks() {
        // device.type when there is no os.name, app.build without app.version, the locale's
        // language, a number as an OS version.
        let c = call(
            r#"{"type":"track","event":"E","anonymousId":"a","context":{
                 "device":{"id":42,"type":"ios"},"os":{"version":17},"app":{"build":"99"},
                 "locale":"pt_BR"}}"#,
        );
        let d = c.device.expect("a device");
        assert_eq!(d.id, "42");
        assert_eq!(d.token, None);
        assert_eq!(d.data.platform.as_deref(), Some("ios"));
        assert_eq!(d.data.os_version.as_deref(), Some("17"));
        assert_eq!(d.data.application_version.as_deref(), Some("99"));
        assert_eq!(d.data.os_language.as_deref(), Some("pt"));
        // No device id: a person-level call, whatever else the context says.
        let c = call(
            r#"{"type":"track","event":"Purchase","userId":"u","context":{
                 "device":{"token":"t","model":"x"},"os":{"name":"iOS"},"installation":{"a":1}}}"#,
        );
        assert_eq!(c.device, None);
        let c = call(r#"{"type":"track","event":"E","userId":"u","context":{"ip":"1.2.3.4"}}"#);
        assert_eq!(c.device, None);
    }

    #[test]
    fn wrong_types_are_rejected_naming_the_field() {
        let base = r#""type":"identify","userId":"u","timestamp":"2024-03-01T10:00:00Z""#;
        for (extra, reason) in [
            (
                r#""traits":{"email":{"a":1}}"#,
                "`traits.email` is an object, not a string",
            ),
            (
                r#""traits":{"tags":[["x"]]}"#,
                "`traits.tags` holds an array, not a string",
            ),
            (
                r#""traits":{"firstName":true}"#,
                "`traits.firstName` is a boolean, not a string",
            ),
            (r#""traits":"x""#, "`traits` is a string, not an object"),
            (
                r#""traits":{"birthday":"May 1st"}"#,
                "traits.birthday `May 1st` is not a date (YYYY-MM-DD)",
            ),
            (
                r#""traits":{"birthday":"1990-02-30"}"#,
                "traits.birthday `1990-02-30` is not a date (YYYY-MM-DD)",
            ),
            (
                r#""traits":{"createdAt":1700000000}"#,
                "`traits.createdAt` is a number, not an ISO 8601 time string",
            ),
            (
                r#""traits":{"address":{"city":["Zagreb"]}}"#,
                "`traits.address.city` is an array, not a string",
            ),
            (
                r#""traits":{"pets":[{"name":"Rex"}]}"#,
                "trait `pets` is a list holding an object; a list may hold strings, numbers \
                 and booleans",
            ),
            (r#""userId":["u"]"#, "`userId` is an array, not a string"),
            (
                r#""messageId":{}"#,
                "`messageId` is an object, not a string",
            ),
            (r#""context":[]"#, "`context` is an array, not an object"),
            (
                r#""context":{"device":"d"}"#,
                "`context.device` is a string, not an object",
            ),
            (
                r#""context":{"device":{"id":"d","token":false}}"#,
                "`context.device.token` is a boolean, not a string",
            ),
            (
                r#""context":{"device":{"id":"d"},"installation":{"deviceSecure":"yes"}}"#,
                "`context.installation.deviceSecure` is a string, not a boolean",
            ),
            (
                r#""context":{"device":{"id":"d"},"installation":[]}"#,
                "`context.installation` is an array, not an object",
            ),
        ] {
            assert_eq!(reject(&format!("{{{base},{extra}}}")), reason, "{extra}");
        }
    }

    #[test]
    fn timestamps() {
        let track = |fields: &str| {
            call(&format!(
                r#"{{"type":"track","event":"E","userId":"u",{fields}}}"#
            ))
        };
        assert_eq!(
            track(
                r#""timestamp":"2024-03-01T10:00:00Z","originalTimestamp":"2020-01-01T00:00:00Z""#
            )
            .time,
            Some(us("2024-03-01T10:00:00Z"))
        );
        assert_eq!(
            track(r#""timestamp":null,"originalTimestamp":"2020-01-01T00:00:00Z""#).time,
            Some(us("2020-01-01T00:00:00Z"))
        );
        assert_eq!(track(r#""sentAt":"2020-01-01T00:00:00Z""#).time, None);
        assert_eq!(
            reject(r#"{"type":"track","event":"E","timestamp":"2024-13-01"}"#),
            "timestamp `2024-13-01` is not an ISO 8601 time"
        );
        assert_eq!(
            reject(r#"{"type":"track","event":"E","originalTimestamp":"yesterday"}"#),
            "originalTimestamp `yesterday` is not an ISO 8601 time"
        );
        assert_eq!(
            reject(r#"{"type":"track","event":"E","timestamp":1709287200000}"#),
            "`timestamp` is a number, not an ISO 8601 time string"
        );
        let long = "9".repeat(1000);
        let reason = reject(&format!(
            r#"{{"type":"track","event":"E","timestamp":"{long}"}}"#
        ));
        assert!(reason.len() < 100, "{reason}");
    }

    #[test]
    fn parse_time_accepts_iso_8601_forms() {
        let t = us("2024-03-01T10:00:00Z");
        for s in [
            "2024-03-01T10:00:00Z",
            "2024-03-01t10:00:00z",
            "2024-03-01 10:00:00Z",
            "2024-03-01T10:00:00",
            "2024-03-01T10:00",
            "2024-03-01T10:00:00.000Z",
            "2024-03-01T10:00:00,0Z",
            "2024-03-01T11:00:00+01:00",
            "2024-03-01T11:30:00+0130",
            "2024-03-01T05:00:00-05",
            "2024-03-01T05:00:00.0000000000-05:00",
        ] {
            assert_eq!(parse_time(s), Some(t), "{s}");
        }
        // Fractions of any length, truncated to microseconds.
        assert_eq!(parse_time("2024-03-01T10:00:00.1Z"), Some(t + 100_000));
        assert_eq!(
            parse_time("2024-03-01T10:00:00.123456789Z"),
            Some(t + 123_456)
        );
        assert_eq!(parse_time("2024-03-01T10:00:00.000001999Z"), Some(t + 1));
        // A leap second is the next second.
        assert_eq!(
            parse_time("2016-12-31T23:59:60Z"),
            Some(us("2017-01-01T00:00:00Z"))
        );
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(0));
        // Out of the store's range, but times: the replay rejects them with its reason.
        assert_eq!(parse_time("1969-12-31T23:59:59Z"), Some(-1_000_000));
        assert_eq!(
            parse_time("9999-12-31T23:59:59.999999Z"),
            Some(253_402_300_799_999_999)
        );
        assert!(parse_time("0000-01-01T00:00:00Z").is_some_and(|t| t < 0));
        for bad in [
            "",
            "2024-03-01",
            "2024-3-1T10:00:00Z",
            "2024-03-01T10Z",
            "2024-03-01T24:00:00Z",
            "2024-03-01T10:60:00Z",
            "2024-03-01T10:00:61Z",
            "2024-03-01T10:00:00.Z",
            "2024-03-01T10:00:00ZZ",
            "2024-03-01T10:00:00+24:00",
            "2024-03-01T10:00:00+01:60",
            "2024-03-01T10:00:00 +01:00",
            "2024-02-30T10:00:00Z",
            "+12024-03-01T10:00:00Z",
            "20240301T100000Z",
            "2024-03-01T10:00:00Z\u{0}",
            "２０２４-03-01T10:00:00Z",
        ] {
            assert_eq!(parse_time(bad), None, "{bad:?}");
        }
        assert_eq!(
            parse_date("2024-02-29"),
            NaiveDate::from_ymd_opt(2024, 2, 29)
        );
        assert_eq!(parse_date("2023-02-29"), None);
        assert_eq!(parse_date("2024-02-29T"), None);
        assert_eq!(parse_date("2024-02-29x"), None);
    }

    #[test]
    fn bad_lines_are_rejected_with_a_reason() {
        assert_eq!(
            reject(r#"{"type":"track","event":"E" "userId":"u"}"#),
            "bad JSON at column 29: expected `,` or `}`"
        );
        assert_eq!(
            reject(r#"{"type":"track""#),
            "bad JSON at column 15: EOF while parsing an object"
        );
        assert_eq!(
            reject(r#"[{"type":"track"}]"#),
            "a record must be a JSON object, this line is an array"
        );
        assert_eq!(reject(r#"{"event":"E","userId":"u"}"#), "missing `type`");
        assert_eq!(reject(r#"{"type":null}"#), "missing `type`");
        assert_eq!(reject(r#"{"type":7}"#), "`type` is a number, not a string");
        for kind in ["group", "page", "Track", "identity"] {
            assert_eq!(
                reject(&format!(r#"{{"type":"{kind}","userId":"u"}}"#)),
                format!("unknown type `{kind}` (imported: identify, track, screen, alias)")
            );
        }
    }

    #[test]
    fn numbers_must_be_finite() {
        // JSON cannot write NaN or Infinity; a number too large for f64 is rejected by the
        // parser, which is the only way to reach a non-finite one.
        let reason = reject(r#"{"type":"track","event":"E","properties":{"x":1e999}}"#);
        assert!(
            reason.starts_with("bad JSON at column ") && reason.ends_with("number out of range"),
            "{reason}"
        );
        assert!(
            reject(r#"{"type":"track","event":"E","properties":{"x":NaN}}"#)
                .starts_with("bad JSON")
        );
        // The check of `value` itself, for numbers that have no finite f64.
        let num = |n: serde_json::Number| value(&Json::Num(n), Arrays::Text, "property", "x");
        assert_eq!(
            num(serde_json::Number::from(u64::MAX)),
            Ok(Value::Num(u64::MAX as f64))
        );
        assert_eq!(
            num(serde_json::Number::from_f64(1.5).unwrap()),
            Ok(Value::Num(1.5))
        );
    }

    #[test]
    fn nesting_is_bounded() {
        let nest = |levels: usize| {
            let mut v = "1".to_string();
            for i in (0..levels).rev() {
                v = format!(r#"{{"k{i}":{v}}}"#);
            }
            format!(r#"{{"type":"track","event":"E","userId":"u","properties":{v}}}"#)
        };
        // MAX_NESTING levels make an eight-part name.
        let c = call(&nest(MAX_NESTING));
        assert_eq!(
            props(&c).keys().collect::<Vec<_>>(),
            ["k0.k1.k2.k3.k4.k5.k6.k7"]
        );
        assert_eq!(
            reject(&nest(MAX_NESTING + 1)),
            "property `k0.k1.k2.k3.k4.k5.k6.k7` is nested more than 8 levels deep"
        );
        // Past serde_json's recursion limit: a reject, not a stack overflow.
        let deep = format!(
            r#"{{"type":"track","event":"E","properties":{{"x":{}1{}}}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let reason = reject(&deep);
        assert!(
            reason.ends_with("nested more than 128 levels deep"),
            "{reason}"
        );
        assert!(reject(&nest(200)).ends_with("nested more than 128 levels deep"));
    }

    #[test]
    fn a_name_given_twice_is_rejected() {
        assert_eq!(
            reject(r#"{"type":"track","event":"E","properties":{"a.b":1,"a":{"b":2}}}"#),
            "property `a.b` is given twice"
        );
        assert_eq!(
            reject(
                r#"{"type":"identify","traits":{"address.street":"x","address":{"street":"y"}}}"#
            ),
            "trait `address.street` is given twice"
        );
    }

    #[test]
    fn quote_cuts_on_a_character_boundary() {
        assert_eq!(quote("short"), "short");
        let long = "é".repeat(50);
        assert_eq!(quote(&long), format!("{}…", "é".repeat(40)));
    }

    #[test]
    fn detect_tells_the_json_kinds_apart() {
        for (line, kind) in [
            (r#"{"type":"track","event":"E"}"#, Some(Kind::Segment)),
            (r#"{"type":"identify"}"#, Some(Kind::Segment)),
            (r#"{"type":"page","name":"Home"}"#, Some(Kind::Segment)),
            (r#"{"type":"group","groupId":"g"}"#, Some(Kind::Segment)),
            (
                r#"{"definitionId":"Purchase","identifier":"u"}"#,
                Some(Kind::InfobipEvents),
            ),
            (
                r#"{"externalId":"u","firstName":"Ana"}"#,
                Some(Kind::InfobipPeople),
            ),
            (
                r#"{"contactInformation":{"email":[]}}"#,
                Some(Kind::InfobipPeople),
            ),
            // People API persons have a `type` of their own, which is not a Segment type.
            (
                r#"{"type":"CUSTOMER","externalId":"u"}"#,
                Some(Kind::InfobipPeople),
            ),
            (r#"{"type":"track","externalId":"u"}"#, None),
            (r#"{"definitionId":"E","externalId":"u"}"#, None),
            (r#"{"type":"other"}"#, None),
            (r#"{"userId":"u"}"#, None),
            (r#"[1,2]"#, None),
            (r#"user_id,event"#, None),
            (r#"{"type":"track""#, None),
        ] {
            assert_eq!(detect(line.as_bytes()), kind, "{line}");
        }
    }

    #[test]
    fn no_input_panics() {
        // A handful of shapes at every field, in every position: reasons, never a panic.
        let shapes = [
            "null",
            "1",
            "-0.0",
            "true",
            "\"\"",
            "\"x\"",
            "[]",
            "[null]",
            "{}",
            "{\"a\":[]}",
        ];
        let fields = [
            "type",
            "event",
            "userId",
            "timestamp",
            "traits",
            "properties",
            "context",
            "name",
            "previousId",
        ];
        for kind in ["identify", "track", "screen", "alias"] {
            for field in fields {
                for shape in shapes {
                    let line = format!(r#"{{"type":"{kind}","event":"E","{field}":{shape}}}"#);
                    let _ = parse(&origin(), line.as_bytes());
                    let line = format!(
                        r#"{{"type":"{kind}","traits":{{"{field}":{shape}}},"context":{{"device":{{"id":"d","{field}":{shape}}},"installation":{{"{field}":{shape}}},"os":{shape},"app":{shape}}}}}"#
                    );
                    let _ = parse(&origin(), line.as_bytes());
                }
            }
        }
        for bytes in [
            &b""[..],
            b"\xff\xfe",
            b"{",
            b"}",
            b"\"",
            b"{\"type\":\"track\",\"event\":\"\xff\"}",
        ] {
            assert!(parse(&origin(), bytes).is_err());
        }
    }
}
